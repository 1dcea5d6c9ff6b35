import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { redfishProvider } from '../../../providers/redfish/index.js';

const dir = join(import.meta.dirname, '../../../schemas');
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
// The loader's options (src/load/schemas.ts): strict, all errors.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, keywords: ['x-hint'] });
const files = [redfishProvider.targetSchema, ...redfishProvider.kinds.map((k) => k.schema)];
const validate = Object.fromEntries(files.map((f) => [f, ajv.compile(load(f))]));
const valid = (file: string, spec: unknown): boolean => validate[file]!(spec) === true;

const FP = '3B:1F:0C:9A:77:52:E4:11:86:2D:FA:07:C3:45:9E:B0:6A:18:D2:4F:E9:70:31:8C:55:AB:C6:02:9D:E8:41:7F';
const target = { provider: 'redfish', address: 'https://10.0.10.21', user: 'plumb', password: 'file:/etc/plumb/secrets/bmc', certFingerprint: FP };

describe('redfish schemas', () => {
  it.each(files)('%s follows the conventions: $id, title, description on every property, a valid example', (file) => {
    const schema = load(file) as { $id: string; title: string; description: string; type: string; additionalProperties: boolean; properties: Record<string, { description?: string; properties?: Record<string, { description?: string }> }>; examples: unknown[] };
    expect(schema.$id).toMatch(/^plumb\/redfish\./);
    expect(schema.title).toBeTruthy();
    expect(schema.description.length).toBeGreaterThan(40);
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    for (const [name, prop] of Object.entries(schema.properties)) {
      expect(prop.description, `${file}: ${name}`).toBeTruthy();
      for (const [sub, p] of Object.entries(prop.properties ?? {})) expect(p.description, `${file}: ${name}.${sub}`).toBeTruthy();
    }
    expect(schema.examples).toHaveLength(1);
    expect(valid(file, schema.examples[0]), JSON.stringify(validate[file]!.errors)).toBe(true);
  });

  it('target: exactly one TLS trust with https; http only with insecureHttp; secrets by reference', () => {
    const t = 'redfish.target.schema.json';
    expect(valid(t, target)).toBe(true);
    expect(valid(t, { ...target, certFingerprint: undefined, caFile: '/etc/plumb/bmc-ca.pem' })).toBe(true);
    expect(valid(t, { ...target, certFingerprint: FP.toLowerCase(), auth: 'basic', systemId: 'System.Embedded.1', managerId: 'iDRAC.Embedded.1', timeouts: { connect: '5s', request: '20s', pollInterval: '2s', resetStale: '15m' } })).toBe(true);
    expect(valid(t, { ...target, address: 'http://127.0.0.1:8000', certFingerprint: undefined, insecureHttp: true })).toBe(true);
    expect(valid(t, { ...target, address: 'https://bmc1.example:8443/' })).toBe(true);
    const bad: Array<Record<string, unknown>> = [
      { ...target, certFingerprint: undefined },
      { ...target, caFile: '/etc/ca.pem' },
      { ...target, certFingerprint: 'SHA256:abc' },
      { ...target, certFingerprint: FP.replace(/:/g, '') },
      { ...target, certFingerprint: undefined, caFile: 'relative.pem' },
      { ...target, password: 'hunter2' },
      { ...target, password: undefined },
      { ...target, user: undefined },
      { ...target, address: 'http://127.0.0.1:8000', certFingerprint: undefined },
      { ...target, address: 'http://127.0.0.1:8000', insecureHttp: true },
      { ...target, insecureHttp: true },
      { ...target, address: 'https://10.0.0.1/redfish/v1' },
      { ...target, address: '10.0.0.1' },
      { ...target, auth: 'digest' },
      { ...target, timeouts: { request: '30' } },
      { ...target, timeouts: { other: '1s' } },
      { ...target, port: 443 },
    ];
    for (const spec of bad) expect(valid(t, JSON.parse(JSON.stringify(spec))), JSON.stringify(spec)).toBe(false);
  });

  it('system', () => {
    const s = 'redfish.system.schema.json';
    expect(valid(s, {})).toBe(true);
    expect(valid(s, { boot: { enabled: 'Disabled' } })).toBe(true);
    expect(valid(s, { bios: { ProcTurboMode: 'Enabled', NumaNodesPerSocket: 2, ErrPrompt: true }, reboot: 'Never' })).toBe(true);
    expect(valid(s, { powerState: 'Off', powerOff: 'GracefulShutdown', gracePeriod: '90s' })).toBe(true);
    for (const spec of [
      { boot: { enabled: 'Once' } },
      { boot: { source: 'Floppy', enabled: 'Once' } },
      { boot: { source: 'Pxe' } },
      { powerState: 'on' },
      { powerState: 'Off', gracePeriod: '5 minutes' },
      { bios: { ProcTurboMode: { nested: true } } },
      { bios: { 'bad name': 'x' } },
      { reboot: 'Always' },
      { indicatorLed: 'Red' },
      { colour: 'red' },
    ]) {
      expect(valid(s, spec), JSON.stringify(spec)).toBe(false);
    }
  });

  it('manager, account, virtual media, firmware', () => {
    expect(valid('redfish.manager.schema.json', { timeZone: '+05:30' })).toBe(true);
    expect(valid('redfish.manager.schema.json', {})).toBe(false);
    expect(valid('redfish.manager.schema.json', { timeZone: 'Europe/Berlin' })).toBe(false);
    expect(valid('redfish.manager.schema.json', { protocols: { SSH: {} } })).toBe(false);
    expect(valid('redfish.manager.schema.json', { protocols: { SSH: { port: 0 } } })).toBe(false);
    expect(valid('redfish.manager.schema.json', { ntp: { servers: ['ntp.example.net', 'bad host'] } })).toBe(false);
    const a = 'redfish.account.schema.json';
    expect(valid(a, { username: 'ops', role: 'ReadOnly', password: 'env:OPS_PW' })).toBe(true);
    expect(valid(a, { username: 'ops', role: 'ReadOnly', password: 'plaintext' })).toBe(false);
    expect(valid(a, { username: 'ops', role: 'ReadOnly' })).toBe(false);
    expect(valid(a, { username: 'has space', role: 'ReadOnly', password: 'env:X' })).toBe(false);
    expect(valid('redfish.virtualmedia.schema.json', { image: 'http://x/a.iso', slot: 'CD' })).toBe(true);
    expect(valid('redfish.virtualmedia.schema.json', { image: '/local/a.iso' })).toBe(false);
    expect(valid('redfish.firmware.schema.json', { component: 'BMC', version: '1.2', image: 'https://x/BMC-1.2.bin' })).toBe(true);
    expect(valid('redfish.firmware.schema.json', { component: 'BMC', version: '1.2' })).toBe(false);
    expect(valid('redfish.firmware.schema.json', { component: 'BMC', version: '1.2', image: 'https://x/a', transferProtocol: 'https' })).toBe(false);
  });
});
