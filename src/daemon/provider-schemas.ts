import type { ProviderSchema } from '../provider.js';
import { sshSchema } from '../../providers/ssh/schema.js';
import { redfishSchema } from '../../providers/redfish/schema.js';
import { netconfSchema } from '../../providers/netconf/schema.js';

/**
 * The built-in providers' schemas and kinds (builtinProviders() minus the
 * transports): enough for a SchemaRegistry, without loading ssh2. What parse
 * workers and `plumb validate` import.
 */
export function builtinProviderSchemas(): ProviderSchema[] {
  return [sshSchema as unknown as ProviderSchema, redfishSchema as unknown as ProviderSchema, netconfSchema as unknown as ProviderSchema];
}
