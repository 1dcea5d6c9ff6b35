import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { builtinProviders } from '../src/daemon/providers.js';
import { kindReference } from '../src/load/kind-docs.js';
import { SchemaRegistry } from '../src/load/schemas.js';
import { packageRoot } from '../src/util/package-root.js';

test('docs/reference/kinds.md is generated from the current schemas (run `npm run docs:kinds`)', () => {
  const root = packageRoot();
  const metadata = JSON.parse(readFileSync(join(root, 'schemas/metadata.schema.json'), 'utf8')) as Record<string, unknown>;
  const generated = kindReference(new SchemaRegistry(builtinProviders()), metadata);
  expect(readFileSync(join(root, 'docs/reference/kinds.md'), 'utf8')).toBe(generated);
});

test('every schema property has a description (the reference is generated from them)', () => {
  const registry = new SchemaRegistry(builtinProviders());
  const missing: string[] = [];
  for (const [kind, info] of registry.kinds) {
    for (const [name, prop] of Object.entries((info.schema.properties ?? {}) as Record<string, { description?: string }>)) {
      if (!prop.description) missing.push(`${kind}.${name}`);
    }
  }
  expect(missing).toEqual([]);
});
