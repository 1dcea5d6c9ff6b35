import { inspect } from 'node:util';
import { registerSecretValue } from './redact.js';

const REDACTED = '[REDACTED]';

/**
 * A resolved secret value. It prints, logs and serialises as `[REDACTED]`; only
 * `reveal()` gives the bytes, and only the code that hands them to a transport
 * (an ssh2 connect, an HTTP Authorization header) should call it.
 */
export class Secret {
  readonly #value: Buffer;
  /** The reference it came from (`file:/etc/plumb/keys/deploy`): safe to show. */
  readonly ref: string;

  constructor(ref: string, value: Buffer) {
    this.ref = ref;
    this.#value = value;
    registerSecretValue(value);
  }

  reveal(): Buffer {
    return this.#value;
  }

  revealString(): string {
    return this.#value.toString('utf8');
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${this.ref})`;
  }
}
