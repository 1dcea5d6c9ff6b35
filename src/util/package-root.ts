import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The directory holding Plumb's package.json, whether running from src/ (tests) or dist/ (installed). */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'schemas'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the Plumb package root (package.json beside schemas/)');
    dir = parent;
  }
  cached = dir;
  return dir;
}

export function schemasDir(): string {
  return join(packageRoot(), 'schemas');
}
