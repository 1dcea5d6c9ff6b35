import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { sshProvider } from '../../../providers/ssh/index.js';

const dir = join(import.meta.dirname, '../../../schemas');
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
// The loader's options (src/load/schemas.ts): strict, all errors.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, keywords: ['x-hint'] });
const files = [sshProvider.targetSchema, ...sshProvider.kinds.map((k) => k.schema)];
const validate = Object.fromEntries(files.map((f) => [f, ajv.compile(load(f))]));
const valid = (file: string, spec: unknown): boolean => validate[file]!(spec) === true;

const FP = 'SHA256:NLgTlF4nTtX575a4WZvWekm8/8bf/j7UXJNpzOiuKIA';
const target = { provider: 'ssh', address: '127.0.0.1', port: 2222, user: 'deploy', privateKey: 'file:/etc/plumb/keys/deploy', hostKey: FP };

describe('ssh schemas', () => {
  it.each(files)('%s follows the conventions: $id, title, description on every property, a valid example', (file) => {
    const schema = load(file) as { $id: string; title: string; description: string; type: string; additionalProperties: boolean; properties: Record<string, { description?: string }>; examples: unknown[] };
    expect(schema.$id).toMatch(/^plumb\/ssh\./);
    expect(schema.title).toBeTruthy();
    expect(schema.description.length).toBeGreaterThan(40);
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    for (const [name, prop] of Object.entries(schema.properties)) expect(prop.description, `${file}: ${name}`).toBeTruthy();
    expect(schema.examples).toHaveLength(1);
    expect(valid(file, schema.examples[0]), JSON.stringify(validate[file]!.errors)).toBe(true);
  });

  it('target: the documented example validates as written (with a real fingerprint)', () => {
    expect(valid('ssh.target.schema.json', target)).toBe(true);
    expect(valid('ssh.target.schema.json', { ...target, hostKey: undefined, knownHosts: '/etc/plumb/known_hosts' })).toBe(true);
    expect(valid('ssh.target.schema.json', { ...target, privateKey: undefined, password: 'env:WEB1_PASSWORD' })).toBe(true);
    expect(valid('ssh.target.schema.json', { ...target, passphrase: 'env:KEY_PASS', connectTimeout: '10s', keepaliveInterval: '30s' })).toBe(true);
  });

  it('target: no trust-on-first-use, exactly one credential, secrets only by reference', () => {
    const bad: Array<Record<string, unknown>> = [
      { ...target, hostKey: undefined },
      { ...target, knownHosts: '/etc/plumb/known_hosts' },
      { ...target, privateKey: undefined },
      { ...target, password: 'env:PW' },
      { ...target, privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----' },
      { ...target, privateKey: 'file:relative/path' },
      { ...target, privateKey: undefined, password: 'hunter2' },
      { ...target, privateKey: undefined, password: 'env:PW', passphrase: 'env:X' },
      { ...target, hostKey: 'SHA256:tooshort' },
      { ...target, hostKey: 'MD5:aa:bb:cc' },
      { ...target, hostKey: undefined, knownHosts: 'relative/known_hosts' },
      { ...target, user: undefined },
      { ...target, provider: 'redfish' },
      { ...target, port: 0 },
      { ...target, connectTimeout: '10' },
      { ...target, extra: true },
    ];
    for (const spec of bad) expect(valid('ssh.target.schema.json', JSON.parse(JSON.stringify(spec))), JSON.stringify(spec)).toBe(false);
  });

  it('file: content XOR source when present; absent needs neither; modes and owners', () => {
    const f = 'ssh.file.schema.json';
    expect(valid(f, { path: '/etc/motd', content: 'x' })).toBe(true);
    expect(valid(f, { path: '/etc/motd', source: 'files/motd' })).toBe(true);
    expect(valid(f, { path: '/etc/motd', content: 'x', source: 'files/motd' })).toBe(false);
    expect(valid(f, { path: '/etc/motd' })).toBe(false);
    expect(valid(f, { path: '/etc/motd', state: 'absent' })).toBe(true);
    expect(valid(f, { path: 'etc/motd', content: 'x' })).toBe(false);
    expect(valid(f, { path: '/etc/', content: 'x' })).toBe(false);
    for (const mode of ['644', '0644', '4755', '0640']) expect(valid(f, { path: '/a', content: '', mode })).toBe(true);
    for (const mode of ['888', 644, '0o644', 'rw-r--r--', '07777x']) expect(valid(f, { path: '/a', content: '', mode })).toBe(false);
    for (const owner of ['root', 'www-data', 1000, '1000']) expect(valid(f, { path: '/a', content: '', owner })).toBe(true);
    for (const owner of ['bad name', -1, '']) expect(valid(f, { path: '/a', content: '', owner })).toBe(false);
  });

  it('directory and command', () => {
    expect(valid('ssh.directory.schema.json', { path: '/srv/app', mode: '0750', owner: 'deploy', state: 'absent' })).toBe(true);
    expect(valid('ssh.directory.schema.json', { path: '/srv/app', content: 'x' })).toBe(false);
    const c = 'ssh.command.schema.json';
    expect(valid(c, { run: 'make install', creates: '/usr/local/bin/app', unless: 'true', onlyIf: 'true', env: { A_B: 'c' }, cwd: '/src' })).toBe(true);
    expect(valid(c, { run: '' })).toBe(false);
    expect(valid(c, { run: 'x', creates: 'relative' })).toBe(false);
    expect(valid(c, { run: 'x', env: { 'BAD-NAME': 'v' } })).toBe(false);
    expect(valid(c, { run: 'x', env: { A: 1 } })).toBe(false);
    expect(valid(c, { run: 'x', cwd: 'tmp' })).toBe(false);
  });
});

describe('ssh schemas in the loader', () => {
  it('register with the loader schema registry without errors', async () => {
    const { SchemaRegistry } = await import('../../../src/load/schemas.js');
    const registry = new SchemaRegistry([sshProvider], dir);
    expect([...registry.kinds.keys()]).toEqual(expect.arrayContaining(['ssh.File', 'ssh.Directory', 'ssh.Command']));
    expect(registry.kinds.get('ssh.File')?.fileRefs).toEqual(['/source', '/templateFile']);
    expect(registry.kinds.get('ssh.File')?.template).toEqual({ inline: 'template', file: 'templateFile', into: 'content' });
  });

  it('line: one line of text; NUL, newline and other control characters refused (a tab is fine)', () => {
    const l = 'ssh.line.schema.json';
    expect(valid(l, { path: '/etc/sysctl.conf', line: 'vm.swappiness = 10' })).toBe(true);
    expect(valid(l, { path: '/etc/fstab', line: 'UUID=x\t/\text4\tdefaults\t0 1', match: '^UUID=x\\s', state: 'absent' })).toBe(true);
    expect(valid(l, { path: '/etc/f', line: `it's $(rm -rf /) \`x\` "q"` })).toBe(true); // quotes and $() are text here: no shell sees them
    for (const line of ['a\nb', 'a\u0000b', 'a\rb', 'a\u001bb', 'a\u007fb', '']) expect(valid(l, { path: '/etc/f', line }), JSON.stringify(line)).toBe(false);
    for (const match of ['a\nb', 'a\tb', '']) expect(valid(l, { path: '/etc/f', line: 'a', match }), JSON.stringify(match)).toBe(false);
    expect(valid(l, { path: 'etc/f', line: 'a' })).toBe(false);
    expect(valid(l, { path: '/etc/f' })).toBe(false);
    expect(valid(l, { path: '/etc/f', line: 'a', state: 'latest' })).toBe(false);
  });

  it('package: name xor names; version with one name and state present; hostile names refused', () => {
    const p = 'ssh.package.schema.json';
    for (const spec of [{ name: 'openssh-server' }, { name: 'libc6:amd64', state: 'latest' }, { names: ['nginx', 'g++', 'python3.11'], state: 'absent' }, { name: 'bash', version: '1:5.2.15-2+b2' }, { name: 'bash', version: '5.1.8-9.el9', state: 'present' }]) {
      expect(valid(p, spec), JSON.stringify(spec)).toBe(true);
    }
    const bad: unknown[] = [
      {},
      { name: 'a', names: ['b'] },
      { names: [] },
      { names: ['a', 'a'] },
      { name: 'a', version: '1', state: 'latest' },
      { names: ['a'], version: '1' },
      { name: 'a', state: 'installed' },
      ...["-rf", "a b", "a'b", 'a;b', '$(id)', '`id`', 'a\nb', 'a\u0000b', '', 'a/b'].map((name) => ({ name })),
      ...['-1', '1 2', "1'", '1;x', '$(id)', '1\n2'].map((version) => ({ name: 'a', version })),
    ];
    for (const spec of bad) expect(valid(p, spec), JSON.stringify(spec)).toBe(false);
  });

  it('user and group: names, ids, paths and keys; hostile values and control characters refused', () => {
    const u = 'ssh.user.schema.json';
    const g = 'ssh.group.schema.json';
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host';
    expect(valid(u, { name: 'deploy', uid: 2001, group: 'deploy', groups: ['adm', 'docker'], shell: '/bin/bash', home: '/home/deploy', authorizedKeys: [key], removeHome: true, state: 'absent' })).toBe(true);
    expect(valid(u, { name: 'deploy', group: 2001 })).toBe(true);
    expect(valid(g, { name: 'deploy', gid: 2001 })).toBe(true);
    const hostileNames = ["a'b", '$(id)', '`id`', 'a b', 'a\nb', 'a\u0000b', '-r', '', 'a:b', 'a/b', 'x'.repeat(33)];
    for (const name of hostileNames) {
      expect(valid(u, { name }), JSON.stringify(name)).toBe(false);
      expect(valid(g, { name }), JSON.stringify(name)).toBe(false);
      expect(valid(u, { name: 'ok', groups: [name] }), JSON.stringify(name)).toBe(false);
      expect(valid(u, { name: 'ok', group: name }), JSON.stringify(name)).toBe(false);
    }
    for (const shell of ['bash', '/bin/ba\nsh', '/bin/sh:x', '/bin/\u0000']) expect(valid(u, { name: 'ok', shell }), shell).toBe(false);
    for (const k of ['-----BEGIN OPENSSH PRIVATE KEY-----', 'AAAAC3NzaC1lZDI1NTE5', `${key}\nssh-rsa AAAA`, `${key}\u0000`, 'ssh-foo AAAAB3', `command="rm -rf /" ${key}`]) {
      expect(valid(u, { name: 'ok', authorizedKeys: [k] }), k).toBe(false);
    }
    for (const id of [-1, 1.5, '1000', 4294967295]) expect(valid(u, { name: 'ok', uid: id }), String(id)).toBe(false);
    expect(valid(u, { name: 'ok', authorizedKeys: [key, key] })).toBe(false);
  });
});
