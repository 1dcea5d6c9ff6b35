import { createHash, hash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level: the same value always hashes the same.
 * Written out directly (no sorted copy of the value): it runs once per resource per
 * load. The text is exactly `JSON.stringify` of the key-sorted copy, because
 * spec hashes stored in SQLite were made from that; test/util/canonical.test.ts
 * holds the two in step.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? (undefined as unknown as string); // JSON.stringify(undefined) is undefined too
}

/** The canonical text of `value`, or undefined where JSON.stringify would leave it out (undefined, functions, symbols). */
function write(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    case 'bigint':
      return JSON.stringify(value); // throws, as JSON.stringify does
    default:
      return undefined;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + (write(value[i]) ?? 'null');
    return out + ']';
  }
  const keys = Object.keys(value);
  // Index-like keys ("0", "12") are ordered numerically by every JS object, so the sorted copy did not keep
  // them sorted as strings; an own toJSON would have been called on it. Both are left to the copy.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function' || keys.some(startsWithDigit)) return JSON.stringify(sortKeys(value));
  sortInPlace(keys);
  let out = '{';
  let first = true;
  for (const key of keys) {
    const text = write((value as Record<string, unknown>)[key]);
    if (text === undefined) continue;
    out += (first ? '' : ',') + quote(key) + ':' + text;
    first = false;
  }
  return out + '}';
}

/** Keys as `sort()` orders them (UTF-16 code units); small objects by insertion, without sort's scratch copy. */
function sortInPlace(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
}

/** Printable ASCII without `"` or `\`: JSON.stringify would only add the quotes. */
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function quote(text: string): string {
  return PLAIN_STRING.test(text) ? '"' + text + '"' : JSON.stringify(text);
}

function startsWithDigit(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 48 && c <= 57;
}

/** The key-sorted copy: the definition of the canonical form (and the slow path for index-like keys). */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties: a `__proto__` key stays a key (assignment would set the prototype).
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Short, stable hash of a JSON value (the first 128 bits of its SHA-256, as hex). */
export function hashJson(value: unknown): string {
  return hashText(canonicalJson(value));
}

/**
 * hashJson of an object given as its keys, sorted, each with its value: the same
 * hash without building the object (the loader hashes every resource this way).
 */
export function hashJsonEntries(entries: ReadonlyArray<readonly [key: string, value: unknown]>): string {
  let out = '{';
  for (let i = 0; i < entries.length; i++) {
    const [key, value] = entries[i]!;
    if (i > 0 && !(entries[i - 1]![0] < key)) throw new Error('hashJsonEntries: keys must be sorted and unique');
    const text = write(value);
    if (text !== undefined) out += (out === '{' ? '' : ',') + quote(key) + ':' + text;
  }
  return hashText(out + '}');
}

function hashText(text: string): string {
  // From the digest bytes rather than a slice of the hex: a slice would keep the whole 64-character string alive.
  return hash('sha256', text, 'buffer').toString('hex', 0, 16);
}
