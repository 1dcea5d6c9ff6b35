import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { builtinProviders } from '../../src/daemon/providers.js';
import { loadDelta, loadFull, type LoadOptions } from '../../src/load/loader.js';
import { SchemaRegistry } from '../../src/load/schemas.js';
import type { Diagnostic } from '../../src/load/types.js';
import { GitObjects } from '../../src/source/git.js';
import { TempRepo } from '../helpers/git-repo.js';

/** One owner per object: overlapping claims are refused at load, naming both documents. */
const registry = new SchemaRegistry(builtinProviders());

const sshTarget = (name: string): string =>
  `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: ssh, address: 127.0.0.1, user: root, privateKey: "file:/k", hostKey: "SHA256:${'A'.repeat(43)}" }\n`;
const ncTarget = (name: string): string =>
  `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: netconf, address: 127.0.0.1, user: admin, password: "env:NC_PASSWORD", hostKey: "SHA256:${'B'.repeat(43)}" }\n`;
const bmcTarget = (name: string): string =>
  `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: redfish, address: "https://127.0.0.1", user: admin, password: "env:BMC_PASSWORD", certFingerprint: "${'AB:'.repeat(31)}AB" }\n`;
const file = (name: string, on: string, path: string): string =>
  `apiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: ${name}, target: ${on} }\nspec: { path: ${JSON.stringify(path)}, content: "x\\n" }\n`;
const dir = (name: string, on: string, path: string): string => `apiVersion: plumb/v1\nkind: ssh.Directory\nmetadata: { name: ${name}, target: ${on} }\nspec: { path: ${JSON.stringify(path)} }\n`;
const docs = (...parts: string[]): string => parts.join('---\n');
const IF = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
const SYS = 'urn:ietf:params:xml:ns:yang:ietf-system';
const nc = (name: string, on: string, body: string): string => `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${name}, target: ${on} }\nspec:\n${body}`;

const brief = (diagnostics: Diagnostic[]): string[] => diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);

describe('claims', () => {
  let repo: TempRepo;
  let objects: GitObjects;
  const options = (): LoadOptions => ({ objects, registry, scope: '' });
  const load = async (): Promise<string[]> => brief((await loadFull(repo.commit('c'), options())).diagnostics);

  beforeEach(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
  });
  afterEach(() => {
    objects.close();
    repo.cleanup();
  });

  test('five spellings of one path are one file: four overlaps, each naming both documents', async () => {
    repo.write('targets.yaml', sshTarget('web1'));
    repo.write('files.yaml', docs(file('a', 'web1', '/etc/x/y'), file('b', 'web1', '/etc/x//y'), file('c', 'web1', '/etc/x/./y'), file('d', 'web1', '/etc/x/../x/y'), file('e', 'web1', '/etc//x/y')));
    const errors = await load();
    expect(errors).toHaveLength(4);
    for (const [i, name] of ['b', 'c', 'd', 'e'].entries()) {
      expect(errors[i]).toContain(`files.yaml:${5 * (i + 1) + 4}:`);
      expect(errors[i]).toContain(`ssh.File/${name} and ssh.File/a at files.yaml:1:1 both claim path /etc/x/y on target web1`);
    }
  });

  test('the normal form is what plan and apply see', async () => {
    repo.write('targets.yaml', sshTarget('web1'));
    repo.write('files.yaml', file('a', 'web1', '/etc/x/../x//y'));
    const loaded = await loadFull(repo.commit('c'), options());
    expect(brief(loaded.diagnostics)).toEqual([]);
    expect((loaded.set.resources.get('ssh.File/a')!.spec as { path: string }).path).toBe('/etc/x/y');
  });

  test('a file and a directory at one path overlap; a file inside a directory does not', async () => {
    repo.write('targets.yaml', sshTarget('web1'));
    repo.write('fs.yaml', docs(dir('d', 'web1', '/srv/app'), file('f', 'web1', '/srv/app'), file('inside', 'web1', '/srv/app/config')));
    expect(await load()).toEqual([expect.stringMatching(/^fs\.yaml:\d+:\d+: ssh\.File\/f and ssh\.Directory\/d at fs\.yaml:1:1 both claim path \/srv\/app on target web1/)]);
  });

  test('the same path on two targets is two objects', async () => {
    repo.write('targets.yaml', docs(sshTarget('web1'), sshTarget('web2')));
    repo.write('files.yaml', docs(file('a', 'web1', '/etc/motd'), file('b', 'web2', '/etc/motd')));
    expect(await load()).toEqual([]);
  });

  test('a NUL or other control character in a path is refused at validation, shown escaped', async () => {
    repo.write('targets.yaml', sshTarget('web1'));
    repo.write('files.yaml', docs(file('nul', 'web1', '/etc/a\u0000b'), file('newline', 'web1', '/etc/a\nb'), dir('tab', 'web1', '/srv/a\tb')));
    const errors = await load();
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/files\.yaml:4:\d+: "path" "\/etc\/a\\u0000b" is not valid: an absolute path/);
    // eslint-disable-next-line no-control-regex
    expect(errors.join('\n')).not.toMatch(/[\u0000\n\t]b/);
  });

  test('NETCONF: a replace-mode subtree overlaps a merge-mode leaf inside it; different leaves of one entry do not', async () => {
    repo.write('targets.yaml', ncTarget('sw1'));
    const entry = (leaf: string) => `  keys: { "interfaces/interface": [name] }\n  config:\n    interfaces:\n      "@xmlns": "${IF}"\n      interface: [{ name: eth0, ${leaf} }]\n`;
    repo.write('a.yaml', docs(nc('desc', 'sw1', entry('description: uplink')), nc('enabled', 'sw1', entry('enabled: true'))));
    expect(await load()).toEqual([]);
    repo.write('b.yaml', nc('all', 'sw1', `  mode: replace\n  config:\n    interfaces: { "@xmlns": "${IF}" }\n`));
    const errors = await load();
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain('netconf.Config/all claims config /interfaces (replace: the whole subtree) on target sw1, which overlaps config /interfaces/interface[name=eth0]/description of netconf.Config/desc at a.yaml:1:1');
    expect(errors[1]).toContain('which overlaps config /interfaces/interface[name=eth0]/enabled of netconf.Config/enabled at a.yaml:11:1');
  });

  test('NETCONF: two resources setting one leaf, or one leaf-list value, overlap even in different prefixes', async () => {
    repo.write('targets.yaml', ncTarget('sw1'));
    repo.write('a.yaml', nc('one', 'sw1', `  config:\n    system:\n      "@xmlns": "${SYS}"\n      hostname: sw1\n      dns-resolver: { search: [example.net, example.org] }\n`));
    repo.write('b.yaml', nc('two', 'sw1', `  config:\n    system:\n      "@xmlns": "${SYS}"\n      dns-resolver: { search: [example.org] }\n`));
    const errors = await load();
    expect(errors).toEqual([expect.stringContaining('netconf.Config/two and netconf.Config/one at a.yaml:1:1 both claim config /system/dns-resolver/search=example.org on target sw1')]);
  });

  test('NETCONF: a list without keys is a load error at its field, not an apply-time failure', async () => {
    repo.write('targets.yaml', ncTarget('sw1'));
    repo.write('a.yaml', nc('bad', 'sw1', `  config:\n    interfaces:\n      "@xmlns": "${IF}"\n      interface: [{ name: eth0 }]\n`));
    expect(await load()).toEqual([expect.stringMatching(/^a\.yaml:8:\d+: "interfaces\/interface" is a list \(an array of maps\): declare its key leaves/)]);
  });

  test('Redfish: one account name, one BIOS attribute, one owner', async () => {
    repo.write('targets.yaml', bmcTarget('bmc1'));
    const account = (name: string) => `apiVersion: plumb/v1\nkind: redfish.Account\nmetadata: { name: ${name}, target: bmc1 }\nspec: { username: ops, role: Operator, password: "env:OPS_PASSWORD" }\n`;
    const system = (name: string, bios: string) => `apiVersion: plumb/v1\nkind: redfish.System\nmetadata: { name: ${name}, target: bmc1 }\nspec: { bios: { ${bios} } }\n`;
    repo.write('a.yaml', docs(account('ops1'), account('ops2'), system('s1', 'ProcTurboMode: Enabled'), system('s2', 'ProcTurboMode: Disabled, BootMode: Uefi'), system('s3', 'SriovGlobalEnable: Enabled')));
    const errors = await load();
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain('redfish.Account/ops2 and redfish.Account/ops1 at a.yaml:1:1 both claim account ops on target bmc1');
    expect(errors[1]).toContain('redfish.System/s2 and redfish.System/s1 at a.yaml:11:1 both claim BIOS attribute ProcTurboMode on target bmc1');
  });

  test('a delta load checks what it adds against what stays, and lets a claim move between resources in one commit', async () => {
    repo.write('targets.yaml', sshTarget('web1'));
    repo.write('a.yaml', file('a', 'web1', '/etc/app.conf'));
    const base = await loadFull(repo.commit('base'), options());
    expect(brief(base.diagnostics)).toEqual([]);

    repo.write('b.yaml', file('b', 'web1', '/etc//app.conf'));
    const clash = await loadDelta(base.set, repo.commit('clash'), options());
    expect(brief(clash.diagnostics)).toEqual([expect.stringContaining('ssh.File/b and ssh.File/a at a.yaml:1:1 both claim path /etc/app.conf on target web1')]);

    // The path changes hands: a gives it up in the same commit that b takes it.
    repo.write('a.yaml', file('a', 'web1', '/etc/other.conf'));
    const handover = await loadDelta(base.set, repo.commit('handover'), options());
    expect(brief(handover.diagnostics)).toEqual([]);
    const set = handover.apply();
    // And the index follows: a third resource on a's old path now collides with b, not a.
    repo.write('c.yaml', file('c', 'web1', '/etc/app.conf'));
    const again = await loadDelta(set, repo.commit('again'), options());
    expect(brief(again.diagnostics)).toEqual([expect.stringContaining('ssh.File/c and ssh.File/b at b.yaml:1:1 both claim path /etc/app.conf')]);
  });
});
