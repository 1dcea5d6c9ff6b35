import type { Provider } from '../provider.js';
import { sshProvider } from '../../providers/ssh/index.js';

/** The providers compiled into this build. */
export function builtinProviders(): Provider[] {
  return [sshProvider as unknown as Provider];
}
