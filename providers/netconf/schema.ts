/** The netconf provider's Target schema and kinds, without its SSH transport (no ssh2): what parsing and `plumb validate` load. */
import type { ProviderSchema } from '../../src/provider.js';
import { configKind } from './kinds/config.js';
import type { NetconfSession } from './session.js';

/** netconfProvider is built on it: one list of kinds. */
export const netconfSchema: ProviderSchema<NetconfSession> = {
  name: 'netconf',
  targetSchema: 'netconf.target.schema.json',
  kinds: [configKind],
};
