/** Host kinds' claims through the real loader: overlaps are validation errors naming both documents. */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { builtinProviders } from '../../../src/daemon/providers.js';
import { loadFull, type LoadOptions } from '../../../src/load/loader.js';
import { SchemaRegistry } from '../../../src/load/schemas.js';
import type { Diagnostic } from '../../../src/load/types.js';
import { GitObjects } from '../../../src/source/git.js';
import { TempRepo } from '../../helpers/git-repo.js';

const registry = new SchemaRegistry(builtinProviders());
const sshTarget = (name: string): string =>
  `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: ssh, address: 127.0.0.1, user: root, privateKey: "file:/k", hostKey: "SHA256:${'A'.repeat(43)}" }\n`;
const doc = (kind: string, name: string, on: string, spec: Record<string, unknown>): string =>
  `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: ${on} }\nspec: ${JSON.stringify(spec)}\n`;
const docs = (...parts: string[]): string => parts.join('---\n');
const brief = (diagnostics: Diagnostic[]): string[] => diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);

describe('ssh host kinds: claims', () => {
  let repo: TempRepo;
  let objects: GitObjects;
  const options = (): LoadOptions => ({ objects, registry, scope: '' });
  const load = async (): Promise<string[]> => brief((await loadFull(repo.commit('c'), options())).diagnostics);

  beforeEach(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
    repo.write('targets.yaml', docs(sshTarget('web1'), sshTarget('web2')));
  });
  afterEach(() => {
    objects.close();
    repo.cleanup();
  });

  test('ssh.Line and ssh.File on one path overlap, whichever comes first, naming both documents', async () => {
    const line = doc('ssh.Line', 'root-login', 'web1', { path: '/etc/ssh/sshd_config', line: 'PermitRootLogin no', match: '^#?PermitRootLogin\\s' });
    const file = doc('ssh.File', 'sshd', 'web1', { path: '/etc/ssh//sshd_config', content: 'x\n' });
    repo.write('a.yaml', docs(line, file));
    expect(await load()).toEqual([expect.stringMatching(/^a\.yaml:\d+:\d+: ssh\.File\/sshd .*ssh\.Line\/root-login at a\.yaml:1:1/)]);
    repo.write('a.yaml', docs(file, line));
    expect(await load()).toEqual([expect.stringMatching(/^a\.yaml:\d+:\d+: ssh\.Line\/root-login .*ssh\.File\/sshd at a\.yaml:1:1/)]);
  });

  test('two Lines of one file do not overlap; the same line, or the same match, twice does', async () => {
    const a = doc('ssh.Line', 'a', 'web1', { path: '/etc/sysctl.conf', line: 'vm.swappiness = 10' });
    const b = doc('ssh.Line', 'b', 'web1', { path: '/etc/sysctl.conf', line: 'net.ipv4.ip_forward = 1' });
    repo.write('a.yaml', docs(a, b));
    expect(await load()).toEqual([]);
    repo.write('b.yaml', docs(doc('ssh.Line', 'c', 'web1', { path: '/etc/sysctl.conf', line: 'vm.swappiness = 10' }), doc('ssh.Line', 'd', 'web2', { path: '/etc/sysctl.conf', line: 'vm.swappiness = 10' })));
    expect(await load()).toEqual([expect.stringContaining('ssh.Line/c and ssh.Line/a at a.yaml:1:1 both claim line "vm.swappiness = 10" in /etc/sysctl.conf on target web1')]);
  });

  test('a Line with a control character, or an invalid regular expression, is refused at validation', async () => {
    repo.write('a.yaml', docs(doc('ssh.Line', 'nl', 'web1', { path: '/etc/f', line: 'a\nb' }), doc('ssh.Line', 're', 'web1', { path: '/etc/f', line: 'a', match: '(' })));
    const errors = await load();
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain('"line"');
    expect(errors[1]).toContain('not a valid regular expression');
  });

  test('one package, two resources on one host: an overlap at the name; on two hosts: none', async () => {
    repo.write('a.yaml', docs(doc('ssh.Package', 'base', 'web1', { names: ['curl', 'nginx'] }), doc('ssh.Package', 'web', 'web1', { name: 'nginx', state: 'latest' }), doc('ssh.Package', 'web2', 'web2', { name: 'nginx' })));
    expect(await load()).toEqual([expect.stringMatching(/^a\.yaml:\d+:\d+: ssh\.Package\/web and ssh\.Package\/base at a\.yaml:1:1 both claim package nginx on target web1/)]);
  });

  test('one user name, one uid, one group name, one gid; an ssh.File on a managed authorized_keys overlaps the User', async () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host';
    repo.write('a.yaml', docs(
      doc('ssh.User', 'deploy', 'web1', { name: 'deploy', uid: 2001, home: '/home/deploy', authorizedKeys: [key] }),
      doc('ssh.User', 'deploy2', 'web1', { name: 'deploy' }),
      doc('ssh.User', 'ops', 'web1', { name: 'ops', uid: 2001 }),
      doc('ssh.Group', 'g1', 'web1', { name: 'deploy', gid: 2001 }),
      doc('ssh.Group', 'g2', 'web1', { name: 'other', gid: 2001 }),
      doc('ssh.File', 'keys', 'web1', { path: '/home/deploy/.ssh/authorized_keys', content: 'x\n' }),
    ));
    const errors = await load();
    expect(errors).toEqual([
      expect.stringContaining('ssh.User/deploy2 and ssh.User/deploy at a.yaml:1:1 both claim user deploy on target web1'),
      expect.stringContaining('ssh.User/ops and ssh.User/deploy at a.yaml:1:1 both claim uid 2001 on target web1'),
      expect.stringContaining('ssh.Group/g2 and ssh.Group/g1 at a.yaml:16:1 both claim gid 2001 on target web1'),
      expect.stringMatching(/ssh\.File\/keys and ssh\.User\/deploy at a\.yaml:1:1 both claim path \/home\/deploy\/\.ssh\/authorized_keys/),
    ]);
  });
});
