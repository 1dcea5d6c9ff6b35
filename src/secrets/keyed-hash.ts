import { createHmac, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const KEY_FILE = 'hash.key';

/**
 * The installation's key for keyed hashes of secrets that can't be read back
 * (BMC account passwords): 32 random bytes in the state directory, mode 0600,
 * made once. Without it nobody can test a guess against a hash in SQLite.
 */
export function loadHashKey(stateDir: string, options: { create: boolean }): Buffer | undefined {
  const path = join(stateDir, KEY_FILE);
  if (existsSync(path)) return readFileSync(path);
  if (!options.create) return undefined;
  const key = randomBytes(32);
  try {
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, key);
    closeSync(fd);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(path); // another process won the race
    throw err;
  }
}

/** HMAC-SHA256 under `key`, labelled so a stored value says what it is. */
export function keyedHasher(key: Buffer): (value: Buffer | string) => string {
  return (value) => `hmac-sha256:${createHmac('sha256', key).update(value).digest('hex')}`;
}
