import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import type { SimHost } from '../../fixtures/simulators/ssh/index.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { sshFile, startSshLab, type SshLab } from '../helpers/ssh-lab.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIS6Jm3RTrmA1zbIevywU767GP8P1NdewTCJeZU4FB0H alice@laptop';

const doc = (kind: string, name: string, spec: Record<string, unknown>, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: web1${meta} }\nspec: ${JSON.stringify(spec)}\n`;

/**
 * ssh.Package, ssh.User and ssh.Group through the whole engine onto a simulated
 * Debian host (root login): the simulator counts every mutating command, so a
 * converged pass must cost none and a host's package writes one apt-get run.
 */
describe('host kinds on the SSH simulator', () => {
  let lab: SshLab;
  let repo: TempRepo;
  let engine: Engine;
  let host: SimHost;

  beforeEach(async () => {
    lab = await startSshLab(['web1']);
    host = lab.sim.host('web1');
    repo = new TempRepo();
    repo.write('targets.yaml', lab.target('web1').replace('user: deploy', 'user: root'));
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-hostkinds-sim-'), run: { backoff: '10ms', maxBackoff: '20ms', connectTimeout: '2s', opTimeout: '10s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
    await lab.stop();
  });

  const statuses = (report: Awaited<ReturnType<Engine['pass']>>): Record<string, string> => Object.fromEntries(report.run!.results.map((r) => [r.id, r.status]));

  test('two ssh.Package resources of one host make one mutating apt-get call; the next pass makes none', async () => {
    repo.write('pkgs.yaml', [doc('ssh.Package', 'jq', { name: 'jq' }), doc('ssh.Package', 'tools', { names: ['curl', 'htop'] })].join('---\n'));
    repo.commit('packages');
    host.resetCounters();
    const first = await engine.pass();
    expect(statuses(first)).toEqual({ 'ssh.Package/jq': 'changed', 'ssh.Package/tools': 'changed' });
    expect(host.packages.installed()).toMatchObject({ jq: '1.6-2.1', libjq1: '1.6-2.1', libonig5: '6.9.8-1', curl: '7.88.1-10+deb12u5', libcurl4: '7.88.1-10+deb12u5', htop: '3.2.2-2' });
    expect(host.counters.mutatingByCommand).toEqual({ 'apt-get': 1 });
    expect(host.mutationLog[0]!.argv.slice(-4)).toEqual(['install', 'jq', 'curl', 'htop']);
    // The dry run (-s) before it is a read.
    expect(host.execLog.filter((e) => /apt-get -s /.test(e.command))).toHaveLength(1);

    host.resetCounters();
    const sweep = await engine.pass({ sweep: true });
    expect(statuses(sweep)).toEqual({ 'ssh.Package/jq': 'converged', 'ssh.Package/tools': 'converged' });
    expect(host.counters.mutatingCommands).toBe(0);
    expect(host.counters.writes).toBe(0);
  });

  test('a package whose removal would take a dependent along is refused unsent: no mutating command', async () => {
    repo.write('pkgs.yaml', doc('ssh.Package', 'jq', { name: 'jq' }));
    repo.commit('jq');
    await engine.pass();
    repo.write('pkgs.yaml', [doc('ssh.Package', 'jq', { name: 'jq' }), doc('ssh.Package', 'no-onig', { name: 'libonig5', state: 'absent' })].join('---\n'));
    repo.commit('remove libonig5');
    host.resetCounters();
    const report = await engine.pass();
    expect(statuses(report)['ssh.Package/no-onig']).toBe('failed');
    expect(report.run!.results.find((r) => r.id === 'ssh.Package/no-onig')!.error).toMatchObject({ message: expect.stringMatching(/would also remove jq, libjq1/) });
    expect(host.counters.mutatingCommands).toBe(0);
    expect(host.packages.installedVersion('libonig5')).toBe('6.9.8-1');
  });

  test('ssh.Group and ssh.User are created; a second pass runs no mutating command', async () => {
    repo.write(
      'accounts.yaml',
      [
        doc('ssh.Group', 'ops', { name: 'ops', gid: 3000 }),
        doc('ssh.User', 'alice', { name: 'alice', uid: 3001, group: 'ops', groups: ['adm', 'www-data'], shell: '/bin/bash', home: '/home/alice', authorizedKeys: [KEY] }, ', dependsOn: [ssh.Group/ops]'),
      ].join('---\n'),
    );
    repo.commit('accounts');
    const first = await engine.pass();
    expect(first.run!.results.map((r) => [r.id, r.status, r.error])).toEqual([['ssh.Group/ops', 'changed', undefined], ['ssh.User/alice', 'changed', undefined]]);
    expect(host.counters.mutatingByCommand).toMatchObject({ groupadd: 1, useradd: 1 });
    const passwd = (await host.fs.readFile('/etc/passwd')).toString('utf8');
    expect(passwd).toContain('alice:x:3001:3000::/home/alice:/bin/bash\n');
    expect(await host.stat('/home/alice/.ssh')).toMatchObject({ type: 'dir', uid: 3001, gid: 3000 });
    expect((await host.stat('/home/alice/.ssh')).mode & 0o777).toBe(0o700);
    expect(await host.stat('/home/alice/.ssh/authorized_keys')).toMatchObject({ uid: 3001, gid: 3000 });
    expect((await host.fs.readFile('/home/alice/.ssh/authorized_keys')).toString('utf8')).toBe(`${KEY}\n`);

    host.resetCounters();
    const sweep = await engine.pass({ sweep: true });
    expect(statuses(sweep)).toEqual({ 'ssh.Group/ops': 'converged', 'ssh.User/alice': 'converged' });
    expect(host.counters.mutatingCommands).toBe(0);
    expect(host.counters.writes).toBe(0);

    // Drift: someone drops alice from www-data; the sweep puts her back with one usermod.
    const group = (await host.fs.readFile('/etc/group')).toString('utf8');
    await host.fs.writeFile('/etc/group', group.replace('www-data:x:33:deploy,alice', 'www-data:x:33:deploy'), { append: false, owner: { uid: 0, gid: 0 } });
    host.resetCounters();
    const fixed = await engine.pass({ sweep: true });
    expect(statuses(fixed)['ssh.User/alice']).toBe('changed');
    expect(host.counters.mutatingByCommand).toEqual({ usermod: 1 });
  });

  test('a mixed repo (File, Line, Package, User, Group): the second pass runs no mutating command and writes nothing', async () => {
    await host.fs.writeFile('/etc/sysctl.conf', '# site\nnet.ipv4.ip_forward = 1\n', { append: false, owner: { uid: 0, gid: 0 } });
    repo.write(
      'host.yaml',
      [
        sshFile('motd', 'web1', '/etc/motd', 'managed by plumb\n'),
        doc('ssh.Line', 'swappiness', { path: '/etc/sysctl.conf', line: 'vm.swappiness = 10', match: '^vm\\.swappiness\\s*=' }),
        doc('ssh.Package', 'nginx', { name: 'nginx' }),
        doc('ssh.Package', 'jq', { name: 'jq' }),
        doc('ssh.Group', 'web', { name: 'web' }),
        doc('ssh.User', 'bob', { name: 'bob', groups: ['web'] }, ', dependsOn: [ssh.Group/web]'),
      ].join('---\n'),
    );
    repo.commit('mixed');
    const first = await engine.pass();
    expect(first.run!.results.every((r) => r.status === 'changed')).toBe(true);
    expect(host.packages.installedVersion('nginx')).toBe('1.22.1-9');
    expect(host.systemd.unit('nginx').activeState).toBe('active');
    expect(host.counters.mutatingByCommand['apt-get']).toBe(1);

    host.resetCounters();
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run!.results.map((r) => r.status)).toEqual(Array(6).fill('converged'));
    expect(host.counters.mutatingCommands).toBe(0);
    expect(host.mutationLog).toEqual([]);
    expect(host.counters.writes).toBe(0);
  });
});
