import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { netconfProvider } from '../../../providers/netconf/index.js';
import { compile } from '../../../providers/netconf/model.js';

const dir = join(import.meta.dirname, '../../../schemas');
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
// The loader's options (src/load/schemas.ts): strict, all errors.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, keywords: ['x-hint'] });
const files = [netconfProvider.targetSchema, ...netconfProvider.kinds.map((k) => k.schema)];
const validate = Object.fromEntries(files.map((f) => [f, ajv.compile(load(f))]));
const valid = (file: string, spec: unknown): boolean => validate[file]!(spec) === true;

const FP = 'SHA256:NLgTlF4nTtX575a4WZvWekm8/8bf/j7UXJNpzOiuKIA';
const target = { provider: 'netconf', address: '10.0.10.2', user: 'plumb', privateKey: 'file:/etc/plumb/keys/netconf', hostKey: FP };

describe('netconf schemas', () => {
  it.each(files)('%s follows the conventions: $id, title, description on every property, a valid example', (file) => {
    const schema = load(file) as { $id: string; title: string; description: string; type: string; additionalProperties: boolean; properties: Record<string, { description?: string }>; examples: unknown[] };
    expect(schema.$id).toMatch(/^plumb\/netconf\./);
    expect(schema.title).toBeTruthy();
    expect(schema.description.length).toBeGreaterThan(40);
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    for (const [name, prop] of Object.entries(schema.properties)) expect(prop.description, `${file}: ${name}`).toBeTruthy();
    expect(schema.examples).toHaveLength(1);
    expect(valid(file, schema.examples[0]), JSON.stringify(validate[file]!.errors)).toBe(true);
  });

  it('target: no trust-on-first-use, exactly one credential, secrets only by reference', () => {
    const t = 'netconf.target.schema.json';
    expect(valid(t, target)).toBe(true);
    expect(valid(t, { ...target, privateKey: undefined, password: 'env:SW_PASSWORD', hostKey: undefined, knownHosts: '/etc/plumb/known_hosts', confirmTimeout: '30s', rpcTimeout: '10s', framing: 'base:1.1' })).toBe(true);
    const bad: Array<Record<string, unknown>> = [
      { ...target, hostKey: undefined },
      { ...target, knownHosts: '/etc/plumb/known_hosts' },
      { ...target, privateKey: undefined },
      { ...target, password: 'env:PW' },
      { ...target, privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----' },
      { ...target, privateKey: undefined, password: 'hunter2' },
      { ...target, framing: 'chunked' },
      { ...target, confirmTimeout: '120' },
      { ...target, provider: 'ssh' },
      { ...target, port: 0 },
      { ...target, extra: true },
    ];
    for (const spec of bad) expect(valid(t, JSON.parse(JSON.stringify(spec))), JSON.stringify(spec)).toBe(false);
  });

  it('config: mode, datastore, keys shape; the example compiles', () => {
    const c = 'netconf.config.schema.json';
    const example = (load(c).examples as unknown[])[0] as Parameters<typeof compile>[0];
    expect(() => compile(example)).not.toThrow();
    expect(valid(c, { config: { a: { '@xmlns': 'urn:a' } } })).toBe(true);
    expect(valid(c, { config: {} })).toBe(false);
    expect(valid(c, { mode: 'patch', config: { a: {} } })).toBe(false);
    expect(valid(c, { datastore: 'startup', config: { a: {} } })).toBe(false);
    expect(valid(c, { keys: { 'a/b': [] }, config: { a: {} } })).toBe(false);
    expect(valid(c, { keys: { 'a//b': ['k'] }, config: { a: {} } })).toBe(false);
    expect(valid(c, { config: { 'x:y': {} } })).toBe(false);
  });
});
