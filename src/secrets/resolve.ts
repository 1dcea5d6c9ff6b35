import { readFile } from 'node:fs/promises';
import { SecretError } from '../errors.js';
import type { Secrets } from '../provider.js';
import { Secret } from './secret.js';

/** `file:/abs/path` or `env:NAME`. `vault:` is reserved for a later resolver. */
export const SECRET_REF_PATTERN = /^(file:\/.+|env:[A-Za-z_][A-Za-z0-9_]*)$/;

export interface SecretResolverOptions {
  /** The environment to read `env:` references from (the daemon passes process.env at the edge). */
  env: Record<string, string | undefined>;
}

/**
 * Resolves references when a session is opened, never earlier, and never caches
 * values beyond the call: a rotated key file is picked up by the next session.
 */
export class SecretResolver implements Secrets {
  readonly #env: Record<string, string | undefined>;

  constructor(options: SecretResolverOptions) {
    this.#env = options.env;
  }

  async resolve(ref: string): Promise<Secret> {
    if (!SECRET_REF_PATTERN.test(ref)) {
      throw new SecretError(`secret reference "${ref.slice(0, 40)}" is not file:/absolute/path or env:NAME`);
    }
    if (ref.startsWith('env:')) {
      const name = ref.slice(4);
      const value = this.#env[name];
      if (value === undefined || value === '') {
        throw new SecretError(`secret reference ${ref}: environment variable ${name} is not set`);
      }
      return new Secret(ref, Buffer.from(value, 'utf8'));
    }
    const path = ref.slice(5);
    try {
      return new Secret(ref, withoutFinalNewline(await readFile(path)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new SecretError(`secret reference ${ref}: cannot read the file (${code})`);
    }
  }
}

/** `echo secret > file` adds a newline nobody means as part of the secret; exactly one is dropped. */
function withoutFinalNewline(bytes: Buffer): Buffer {
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0a) {
    const end = bytes.length >= 2 && bytes[bytes.length - 2] === 0x0d ? bytes.length - 2 : bytes.length - 1;
    return bytes.subarray(0, end);
  }
  return bytes;
}
