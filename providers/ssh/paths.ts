/** Paths on a host: the one normal form that specs, claims and the wire all use. */
import { posix } from 'node:path';
import { SpecError } from '../../src/errors.js';
import type { Claim } from '../../src/provider.js';

/**
 * Lexically normal: `//`, `.` and `..` resolved as text (like `realpath -s`), no
 * trailing slash. `/etc/x/../x/y` and `/etc/x//y` are both `/etc/x/y`, so two
 * resources cannot own one file under two spellings.
 */
export function normalPath(path: string, pointer = '/path'): string {
  const normal = posix.normalize(path).replace(/(.)\/+$/, '$1');
  if (normal === '/') throw new SpecError(`${JSON.stringify(path)} is the root directory once ".." and "." are resolved; name a file or directory below /`, { pointer });
  return normal;
}

/** The claim on a path: a file owns its content whole (lines of it cannot have another owner); a directory owns the node. */
export function pathClaim(path: string, whole: boolean): Claim {
  return { key: ['path', path], whole, label: `path ${path}`, pointer: '/path' };
}
