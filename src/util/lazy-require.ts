import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package loaded the first time it is used, not at start: a CLI run
 * that talks to no BMC (or no switch) need not pay for undici (or saxes), a
 * fifth of `plumb apply`'s start-up. Typed by the caller: `import type * as Undici
 * from 'undici'`, then `lazyRequire<typeof Undici>('undici')`.
 */
export function lazyRequire<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
