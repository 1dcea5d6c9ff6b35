import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { packageRoot } from '../src/util/package-root.js';

type Schema = { properties?: Record<string, Schema>; default?: unknown };

test('docs/configuration.md documents every setting of config.schema.json with its default', () => {
  const root = packageRoot();
  const schema = JSON.parse(readFileSync(join(root, 'schemas/config.schema.json'), 'utf8')) as Schema;
  const doc = readFileSync(join(root, 'docs/configuration.md'), 'utf8');
  const leaves: Array<[string, unknown]> = [];
  const walk = (s: Schema, prefix: string): void => {
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      if (prop.properties) walk(prop, `${prefix}${name}.`);
      else leaves.push([`${prefix}${name}`, prop.default]);
    }
  };
  walk(schema, '');
  expect(leaves.length).toBeGreaterThan(15);
  for (const [name, def] of leaves) {
    const row = new RegExp(`^\\| \`${name.replace(/\./g, '\\.')}\` \\| ([^|]+) \\|`, 'm').exec(doc);
    expect(row, `${name} is not documented`).not.toBeNull();
    const shown = def === '' ? '""' : typeof def === 'string' ? def : JSON.stringify(def);
    if (def !== undefined) expect(row![1]!.trim(), name).toBe(`\`${shown}\``);
  }
});
