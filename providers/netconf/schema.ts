/** The netconf provider's Target schema and kinds, without its SSH transport (no ssh2): what parsing and `plumb validate` load. */
import type { ProviderSchema } from '../../src/provider.js';
import { configKind } from './kinds/config.js';
import type { NetconfSession } from './session.js';

/** The same as netconfProvider's (test/load/schemas.test.ts keeps the two in step). */
export const netconfSchema: ProviderSchema<NetconfSession> = {
  name: 'netconf',
  targetSchema: 'netconf.target.schema.json',
  kinds: [configKind],
};
