import { describe, expect, test } from 'vitest';
import { builtinProviderSchemas } from '../../src/daemon/provider-schemas.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { parseResource } from '../../src/load/document.js';
import { SchemaRegistry } from '../../src/load/schemas.js';
import { parseYaml } from '../../src/load/yaml.js';
import type { Provider } from '../../src/provider.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { blobProvider } from './blob-provider.js';

const registry = new SchemaRegistry([fakeProvider(new FakeWorld()), blobProvider()]);

/** The diagnostics of a one-document file, as `line:col: message`. */
function check(text: string): string[] {
  const yaml = parseYaml(text, 'x.yaml');
  expect(yaml.diagnostics).toEqual([]);
  return parseResource(yaml.documents[0]!, 'x.yaml', registry).diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`);
}

const pair = (spec: string): string[] => check(`apiVersion: plumb/v1\nkind: blob.Pair\nmetadata: { name: p, target: b }\nspec: ${spec}\n`);
const fakeTarget = (spec: string): string[] => check(`apiVersion: plumb/v1\nkind: Target\nmetadata: { name: t }\nspec: ${spec}\n`);

describe('schema problems are one plain sentence at the right place', () => {
  test('exactly one of two fields, without an x-hint: says which are set', () => {
    expect(pair('{ left: a, right: b }')).toEqual(['4:1: "spec" needs exactly one of "left" and "right", but "left" and "right" are set']);
    expect(pair('{}')).toEqual(['4:1: "spec" needs exactly one of "left" and "right", but neither is set']);
  });

  test('fields that may not be set together, without an x-hint', () => {
    expect(pair('{ left: a, both: b }')).toEqual(['4:1: "spec" may not set "left" and "both" together; keep one of them']);
  });

  test('list items are named by index; long values are cut', () => {
    expect(pair('{ left: a, items: [ok, BAD] }')).toEqual(['4:30: "items[1]" "BAD" is not valid: it must match ^[a-z]+$']);
    const long = 'X'.repeat(200);
    expect(pair(`{ left: a, long: ${long} }`)).toEqual([`4:24: "long" "${'X'.repeat(59)}..." (200 characters) is not valid: it must match ^[a-z]{1,8}$`]);
  });

  test('types are named as YAML users know them', () => {
    expect(pair('{ left: [a] }')).toEqual(['4:15: "left" must be a string, not a list']);
    expect(pair('{ left: a, items: { x: 1 } }')).toEqual(['4:25: "items" must be a list, not a mapping']);
    expect(check('apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: i, target: t }\nspec: [value]\n')).toEqual(['4:7: "spec" must be a mapping of fake.Item fields, not a list']);
    expect(check('apiVersion: plumb/v1\nkind: fake.Item\nmetadata: x\nspec: { value: v }\n')).toEqual(['3:11: "metadata" must be a mapping, not string "x"']);
  });

  test('a value for a secret-reference field is never echoed, whatever is wrong with it', () => {
    const inline = fakeTarget('{ provider: fake, address: a, token: "hunter2-the-password" }');
    expect(inline).toEqual(['4:44: "token" must be a secret reference (file:/absolute/path or env:NAME), never the secret itself; its value is not shown']);
    const number = fakeTarget('{ provider: fake, address: a, token: 987654321 }');
    expect(number).toEqual(['4:44: "token" must be a string, not an inline value (not shown: it may be a secret)']);
    expect([...inline, ...number].join('\n')).not.toMatch(/hunter2|987654321/);
    expect(fakeTarget('{ provider: fake, address: a, token: "env:FAKE_TOKEN" }')).toEqual([]);
  });

  test('unknown fields, kinds and providers suggest the closest name', () => {
    expect(pair('{ left: a, rigth: b }')).toEqual(['4:18: unknown field "rigth" (did you mean "right"?); allowed here: left, right, both, items, long']);
    expect(fakeTarget('{ provider: blobb, address: a }')).toEqual(['4:19: unknown provider "blobb" (did you mean "blob"?); known providers: blob, fake']);
    expect(check('apiVersion: plumb/v1\nkind: fake.Itme\nmetadata: { name: i, target: t }\nspec: {}\n')).toEqual([
      '2:7: unknown kind "fake.Itme" (did you mean "fake.Item"?); known kinds: Target, blob.File, blob.Pair, fake.Item, fake.Service, fake.Setting',
    ]);
  });

  test('a Target is checked against the core schema, then its provider\'s', () => {
    expect(fakeTarget('{ provider: fake }')).toEqual(['4:1: missing required field "address"']);
    expect(fakeTarget('{ provider: fake, address: a, port: 22 }')).toEqual(['4:37: unknown field "port"; allowed here: provider, address, token']);
    expect(check('apiVersion: plumb/v1\nkind: Target\nmetadata: { name: t, target: u }\nspec: { provider: fake, address: a }\n')).toEqual([
      '3:22: a Target has no metadata.target (it is the target)',
    ]);
  });
});

describe('the registry refuses programming errors', () => {
  const base = fakeProvider(new FakeWorld());
  test.each([
    ['a provider registered twice', [base, base], /registered twice/],
    ['an empty provider name', [{ ...base, name: '' }], /empty name/],
    ['a kind not named after its provider', [{ ...base, name: 'other' }], /must be named other\.<Kind>/],
    ['a kind registered twice', [{ ...base, kinds: [...base.kinds, ...base.kinds] }], /kind "fake.Item" is registered twice/],
  ] as Array<[string, Provider[], RegExp]>)('%s', (_, providers, message) => {
    expect(() => new SchemaRegistry(providers)).toThrow(message);
  });

  test('every built-in schema compiles (they are compiled on first use, so a load would find out late)', () => {
    expect(() => new SchemaRegistry(builtinProviders()).compileAll()).not.toThrow();
  });

  test('the schema-only entry points (parse workers, validate) hold the same kinds as the providers', () => {
    const schemas = builtinProviderSchemas();
    const providers = builtinProviders();
    expect(schemas.map((p) => [p.name, p.targetSchema])).toEqual(providers.map((p) => [p.name, p.targetSchema]));
    schemas.forEach((p, i) => expect(p.kinds).toEqual(providers[i]!.kinds)); // the very handlers, in the same order
    schemas.forEach((p, i) => p.kinds.forEach((k, j) => expect(k).toBe(providers[i]!.kinds[j])));
  });
});

describe('schemas compile when first needed', () => {
  test('a broken schema throws naming its kind at its first document (and in compileAll), not at start', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const brokenSchema = `${mkdtempSync('/tmp/plumb-schema-')}/broken.schema.json`;
    writeFileSync(brokenSchema, JSON.stringify({ type: 'object', properties: { x: { type: 'no-such-type' } } }));
    const blob = blobProvider();
    const broken: Provider = { ...blob, kinds: [{ ...blob.kinds[1]!, schema: brokenSchema }] };
    const lazy = new SchemaRegistry([broken]); // compiles nothing yet
    expect(() => lazy.validateSpec('blob.Pair', {})).toThrow('schema for blob.Pair does not compile');
    expect(() => lazy.compileAll()).toThrow('schema for blob.Pair does not compile');
  });
});
