/** The redfish provider: bare-metal servers through their BMC's Redfish API, one session per target. */
import type { Provider } from '../../src/provider.js';
import { accountKind } from './kinds/account.js';
import { firmwareKind } from './kinds/firmware.js';
import { managerKind } from './kinds/manager.js';
import { systemKind } from './kinds/system.js';
import { virtualMediaKind } from './kinds/virtual-media.js';
import { RedfishSession } from './session.js';

export { RedfishSession } from './session.js';
export type { RedfishTargetSpec } from './session.js';
export type { SystemSpec, SystemActual, BootSpec } from './kinds/system.js';
export type { ManagerSpec, ManagerActual } from './kinds/manager.js';
export type { AccountSpec, AccountActual } from './kinds/account.js';
export type { VirtualMediaSpec, VirtualMediaActual } from './kinds/virtual-media.js';
export type { FirmwareSpec, FirmwareActual } from './kinds/firmware.js';

export const redfishProvider: Provider<RedfishSession> = {
  name: 'redfish',
  targetSchema: 'redfish.target.schema.json',
  kinds: [systemKind, managerKind, accountKind, virtualMediaKind, firmwareKind],
  open: (target, ctx) => RedfishSession.open(target, ctx),
};
