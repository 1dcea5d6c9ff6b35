import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { sshFile, startSshLab, type SshLab } from '../helpers/ssh-lab.js';

/**
 * Scenarios on a temp git repo, converged through the real SSH provider onto
 * simulated hosts; the simulator's counters say what each pass did to each host.
 */
describe('SSH scenarios', () => {
  let lab: SshLab;
  let repo: TempRepo;
  let engine: Engine;
  let stateDir: string;
  /** A fresh directory per test on every host, so tests do not see each other's files. */
  let root = '';

  beforeAll(async () => {
    lab = await startSshLab(['web1', 'web2']);
  });
  afterAll(async () => {
    await lab.stop();
  });

  const open = (): Promise<Engine> =>
    Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir, run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '2s', opTimeout: '10s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  const host = (name: string) => lab.sim.host(name);
  const onHost = (name: string, path: string): string => join(host(name).root, path);

  beforeEach(async () => {
    for (const h of lab.sim.hosts) h.faults = {};
    repo = new TempRepo();
    stateDir = tempDir('plumb-state-');
    root = `/srv/scenario-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const base = root;
    repo.write('targets.yaml', `${lab.target('web1')}---\n${lab.target('web2')}`);
    repo.write(
      'web1.yaml',
      [
        `apiVersion: plumb/v1\nkind: ssh.Directory\nmetadata: { name: web1-root, target: web1 }\nspec: { path: ${base}, mode: "0755" }\n`,
        sshFile('web1-a', 'web1', `${base}/a.conf`, 'a=1\n', ', dependsOn: [ssh.Directory/web1-root]'),
        `apiVersion: plumb/v1\nkind: ssh.Command\nmetadata: { name: web1-init, target: web1, dependsOn: [ssh.Directory/web1-root] }\nspec: { run: "touch ${base}/.init", creates: ${base}/.init }\n`,
      ].join('---\n'),
    );
    repo.write(
      'web2.yaml',
      [`apiVersion: plumb/v1\nkind: ssh.Directory\nmetadata: { name: web2-root, target: web2 }\nspec: { path: ${base}, mode: "0755" }\n`, sshFile('web2-b', 'web2', `${base}/b.conf`, 'b=1\n', ', dependsOn: [ssh.Directory/web2-root]')].join('---\n'),
    );
    repo.commit('A');
    engine = await open();
  });

  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('commit A converges; a second full pass writes nothing to any host', async () => {
    const first = await engine.pass();
    expect(first.run!.results.every((r) => r.status === 'changed')).toBe(true);
    expect(first.converged).toBe(true);
    expect(readFileSync(onHost('web1', `${root}/a.conf`), 'utf8')).toBe('a=1\n');
    expect(existsSync(onHost('web1', `${root}/.init`))).toBe(true);

    const writesBefore = lab.writes();
    const execsBefore = host('web1').execLog.filter((e) => e.command.includes('touch')).length;
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run!.results.map((r) => r.status)).toEqual(Array(5).fill('converged'));
    expect(lab.writes()).toBe(writesBefore);
    expect(host('web1').execLog.filter((e) => e.command.includes('touch')).length).toBe(execsBefore);
  });

  test('commit B edits one file: only its resources are touched, the other host sees nothing', async () => {
    await engine.pass();
    const web2Ops = host('web2').counters.sftpOps + host('web2').counters.execs;
    const web1Writes = host('web1').counters.writes;
    repo.write('web1.yaml', readFileSync(join(repo.dir, 'web1.yaml'), 'utf8').replace('a=1', 'a=2'));
    repo.commit('B');
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.id, r.status])).toEqual([['ssh.File/web1-a', 'changed']]);
    expect(readFileSync(onHost('web1', `${root}/a.conf`), 'utf8')).toBe('a=2\n');
    expect(host('web2').counters.sftpOps + host('web2').counters.execs).toBe(web2Ops);
    expect(host('web1').counters.writes).toBeGreaterThan(web1Writes);
  });

  test('a Target change of only its vars re-renders the templates that use them without reconnecting; a connection setting reconnects', async () => {
    const targets = (vars: string, extra = ''): string => `${lab.target('web1')}${extra}  vars: { port: ${vars} }\n---\n${lab.target('web2')}`;
    repo.write('targets.yaml', targets('8080'));
    repo.write(
      'tmpl.yaml',
      `apiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: web1-tmpl, target: web1, dependsOn: [ssh.Directory/web1-root] }\nspec: { path: ${root}/t.conf, template: "listen {{port}}\\n" }\n`,
    );
    repo.commit('template');
    await engine.pass();
    expect(readFileSync(onHost('web1', `${root}/t.conf`), 'utf8')).toBe('listen 8080\n');
    const connections = host('web1').counters.connections;

    repo.write('targets.yaml', targets('9090'));
    repo.commit('vars only');
    const report = await engine.pass();
    // Only the resource whose rendered content changed is planned; the others on web1 are not re-read.
    expect(report.run!.results.map((r) => [r.id, r.status])).toEqual([['ssh.File/web1-tmpl', 'changed']]);
    expect(readFileSync(onHost('web1', `${root}/t.conf`), 'utf8')).toBe('listen 9090\n');
    expect(host('web1').counters.connections).toBe(connections);

    // A connection setting does reconnect, and re-reads everything on the target.
    repo.write('targets.yaml', targets('9090', '  keepaliveInterval: 20s\n'));
    repo.commit('keepalive');
    const reconnected = await engine.pass();
    expect(reconnected.run!.results.filter((r) => r.status === 'converged').length).toBe(4);
    expect(host('web1').counters.connections).toBe(connections + 1);
  });

  test('a deleted file leaves tombstones until the host confirms removal; reverse dependency order', async () => {
    await engine.pass();
    host('web2').faults = { dropConnections: true };
    repo.remove('web2.yaml');
    repo.commit('drop web2 things');
    await engine.close();
    engine = await open(); // a new process: the pool has no session to web2
    const failed = await engine.pass();
    expect(failed.run!.results.map((r) => r.status)).toEqual(['failed', 'blocked']);
    expect(engine.store.tombstones().map((t) => t.resourceId).sort()).toEqual(['ssh.Directory/web2-root', 'ssh.File/web2-b']);
    expect(existsSync(onHost('web2', `${root}/b.conf`))).toBe(true);

    host('web2').faults = {};
    await new Promise((r) => setTimeout(r, 10));
    const retried = await engine.pass();
    expect(retried.run!.results.map((r) => [r.id, r.status])).toEqual([
      ['ssh.File/web2-b', 'deleted'],
      ['ssh.Directory/web2-root', 'deleted'],
    ]);
    expect(existsSync(onHost('web2', root))).toBe(false);
    expect(engine.store.tombstones()).toEqual([]);
  });

  test('Retain forgets the resource and leaves the file on the host', async () => {
    repo.write('web2.yaml', readFileSync(join(repo.dir, 'web2.yaml'), 'utf8').replace('name: web2-b, target: web2', 'name: web2-b, target: web2, deletionPolicy: Retain'));
    repo.commit('retain b');
    await engine.pass();
    repo.write('web2.yaml', readFileSync(join(repo.dir, 'web2.yaml'), 'utf8').split('---\n')[0]!);
    repo.commit('forget b');
    const writes = lab.writes();
    await engine.pass();
    expect(lab.writes()).toBe(writes);
    expect(readFileSync(onHost('web2', `${root}/b.conf`), 'utf8')).toBe('b=1\n');
    expect(engine.store.tombstones({ all: true })).toMatchObject([{ resourceId: 'ssh.File/web2-b', state: 'retained' }]);
  });

  test('an invalid commit touches no host; status keeps file:line:col; the fix converges', async () => {
    await engine.pass();
    const writes = lab.writes();
    repo.write('web1.yaml', readFileSync(join(repo.dir, 'web1.yaml'), 'utf8').replace('a=1', 'a=3').replace('mode: "0755"', 'mode: "0755", colour: red'));
    repo.remove('web2.yaml');
    repo.commit('bad');
    const bad = await engine.pass();
    expect(bad.rejected?.diagnostics[0]).toMatchObject({ file: 'web1.yaml', line: 4 });
    expect(lab.writes()).toBe(writes);
    expect(readFileSync(onHost('web1', `${root}/a.conf`), 'utf8')).toBe('a=1\n');
    expect(existsSync(onHost('web2', `${root}/b.conf`))).toBe(true);

    repo.write('web1.yaml', readFileSync(join(repo.dir, 'web1.yaml'), 'utf8').replace(', colour: red', ''));
    repo.commit('fix');
    const fixed = await engine.pass();
    expect(fixed.rejected).toBeUndefined();
    expect(readFileSync(onHost('web1', `${root}/a.conf`), 'utf8')).toBe('a=3\n');
    expect(existsSync(onHost('web2', `${root}/b.conf`))).toBe(false);
  });

  test('drift on a host is remediated by the sweep and recorded as drift', async () => {
    await engine.pass();
    writeFileSync(onHost('web1', `${root}/a.conf`), 'tampered\n');
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run!.results.find((r) => r.id === 'ssh.File/web1-a')).toMatchObject({ status: 'changed', cause: 'drift' });
    expect(readFileSync(onHost('web1', `${root}/a.conf`), 'utf8')).toBe('a=1\n');
    expect(engine.store.events({ resourceId: 'ssh.File/web1-a' })[0]).toMatchObject({ type: 'update', cause: 'drift' });
  });

  test('a command without a guard runs once per spec: not again on a sweep, again when its spec changes', async () => {
    const command = (run: string): string =>
      `apiVersion: plumb/v1\nkind: ssh.Command\nmetadata: { name: web2-once, target: web2 }\nspec: { run: "${run}" }\n`;
    repo.write('once.yaml', command(`echo ran >> ${root}-once.log`));
    repo.commit('guardless');
    await engine.pass();
    const runs = (): number => host('web2').execLog.filter((e) => e.command.includes(`${root}-once.log`) && e.exitCode === 0).length;
    expect(runs()).toBe(1);
    await engine.pass({ sweep: true });
    await engine.pass({ sweep: true });
    expect(runs()).toBe(1);
    repo.write('once.yaml', command(`echo ran again >> ${root}-once.log`));
    repo.commit('guardless, new spec');
    await engine.pass();
    expect(runs()).toBe(2);
  });
});

