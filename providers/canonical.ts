/**
 * The canonical JSON behind hashes the providers store (ssh.Command's
 * ranSpecHash, redfish.System's bootOnceApplied) and compare (Redfish long
 * operations). Not src/util/canonical.ts: that one orders integer-like keys
 * numerically (JSON.stringify of an object does), and BIOS attribute names
 * like "9" and "10" are valid; a stored hash must never change.
 */
import { sha256Hex } from '../src/util/canonical.js';

/** JSON with object keys sorted by code unit at every level; undefined is null, or left out as a value in an object. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** sha256 (hex) of the canonical JSON, for "has this spec changed". */
export function specHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
