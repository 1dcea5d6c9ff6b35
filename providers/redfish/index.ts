/** The redfish provider: bare-metal servers through their BMC's Redfish API, one session per target. */
import type { Provider } from '../../src/provider.js';
import { redfishSchema } from './schema.js';
import { RedfishSession } from './session.js';

export { RedfishSession } from './session.js';
export type { RedfishTargetSpec } from './session.js';
export type { SystemSpec, SystemActual, BootSpec } from './kinds/system.js';
export type { ManagerSpec, ManagerActual } from './kinds/manager.js';
export type { AccountSpec, AccountActual } from './kinds/account.js';
export type { VirtualMediaSpec, VirtualMediaActual } from './kinds/virtual-media.js';
export type { FirmwareSpec, FirmwareActual } from './kinds/firmware.js';

export const redfishProvider: Provider<RedfishSession> = {
  ...redfishSchema,
  open: (target, ctx) => RedfishSession.open(target, ctx),
};
