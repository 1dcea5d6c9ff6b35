import type { Provider } from '../provider.js';
import { sshProvider } from '../../providers/ssh/index.js';
import { redfishProvider } from '../../providers/redfish/index.js';
import { netconfProvider } from '../../providers/netconf/index.js';

/** The providers compiled into this build. */
export function builtinProviders(): Provider[] {
  return [sshProvider as unknown as Provider, redfishProvider as unknown as Provider, netconfProvider as unknown as Provider];
}
