/** The redfish provider's Target schema and kinds, without opening sessions: what parsing and `plumb validate` load. */
import type { ProviderSchema } from '../../src/provider.js';
import { accountKind } from './kinds/account.js';
import { firmwareKind } from './kinds/firmware.js';
import { managerKind } from './kinds/manager.js';
import { systemKind } from './kinds/system.js';
import { virtualMediaKind } from './kinds/virtual-media.js';
import type { RedfishSession } from './session.js';

/** redfishProvider is built on it: one list of kinds. */
export const redfishSchema: ProviderSchema<RedfishSession> = {
  name: 'redfish',
  targetSchema: 'redfish.target.schema.json',
  kinds: [systemKind, managerKind, accountKind, virtualMediaKind, firmwareKind],
};
