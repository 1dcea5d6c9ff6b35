import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import type { SimHost } from '../../fixtures/simulators/ssh/index.js';
import { runPlumb, waitUntil } from '../helpers/cli.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startSshLab, type SshLab } from '../helpers/ssh-lab.js';

const doc = (kind: string, name: string, spec: Record<string, unknown>, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: web1${meta} }\nspec: ${JSON.stringify(spec)}\n`;

/** nginx from its package, its config, and the service restarted on either's change. */
const nginx = (conf: string, service: Record<string, unknown> = {}): string =>
  [
    doc('ssh.Package', 'nginx', { name: 'nginx' }),
    doc('ssh.Directory', 'nginx-dir', { path: '/etc/nginx', mode: '0755' }, ', dependsOn: [ssh.Package/nginx]'),
    doc('ssh.File', 'nginx-conf', { path: '/etc/nginx/nginx.conf', content: conf, mode: '0644' }, ', dependsOn: [ssh.Directory/nginx-dir]'),
    doc('ssh.File', 'site', { path: '/etc/nginx/site.conf', content: 'server {}\n', mode: '0644' }, ', dependsOn: [ssh.Directory/nginx-dir]'),
    doc('ssh.Service', 'nginx', { name: 'nginx', enabled: true, state: 'running', restartOn: ['ssh.File/nginx-conf', 'ssh.File/site', 'ssh.Package/nginx'], ...service }),
  ].join('---\n');

/**
 * ssh.Service through the whole engine onto the simulated Debian host: its
 * systemctl counts what was done to each unit, so "restarted exactly once" and
 * "a no-op pass runs zero mutating commands" are counted, not guessed.
 */
describe('ssh.Service on the SSH simulator', () => {
  let lab: SshLab;
  let repo: TempRepo;
  let host: SimHost;
  let stateDir: string;

  const open = (): Promise<Engine> =>
    Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir, run: { backoff: '10ms', maxBackoff: '20ms', connectTimeout: '5s', opTimeout: '20s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  const unit = () => host.systemd.unit('nginx')!;

  beforeEach(async () => {
    lab = await startSshLab(['web1']);
    host = lab.sim.host('web1');
    repo = new TempRepo();
    stateDir = tempDir('plumb-service-sim-');
    repo.write('targets.yaml', lab.target('web1').replace('user: deploy', 'user: root'));
  });
  afterEach(async () => {
    repo.cleanup();
    await lab.stop();
  });

  test('a config change restarts its service exactly once, after every write; a no-op pass runs zero mutating commands', async () => {
    repo.write('web.yaml', nginx('worker_processes 1;\n'));
    repo.commit('nginx');
    const engine = await open();
    try {
      const first = await engine.pass();
      expect(first.converged, JSON.stringify(first.run?.results.map((r) => [r.id, r.status, r.error?.message]))).toBe(true);
      // The package starts nginx; the config written after it restarts it once.
      expect(unit().counters.restarts).toBe(1);
      expect(unit().activeState).toBe('active');
      const log = host.mutationLog.map((m) => m.argv.join(' '));
      const restart = log.findIndex((l) => l.startsWith('systemctl restart'));
      expect(restart).toBe(log.length - 1);

      host.resetCounters();
      const sweep = await engine.pass({ sweep: true });
      expect(sweep.converged).toBe(true);
      expect(host.counters.mutatingCommands).toBe(0);
      expect(host.counters.writes).toBe(0);
      expect(unit().counters.restarts).toBe(1);

      // Two of its files change in one commit: one restart.
      repo.write('web.yaml', nginx('worker_processes 2;\n').replace('server {}', 'server { listen 80; }'));
      repo.commit('both files');
      host.resetCounters();
      const second = await engine.pass();
      expect(second.converged).toBe(true);
      expect(unit().counters.restarts).toBe(2);
      expect(host.counters.mutatingByCommand.systemctl).toBe(1);
      expect(second.run?.results.find((r) => r.id === 'ssh.Service/nginx')?.changes.map((c) => c.note)).toEqual(['restart: ssh.File/nginx-conf, ssh.File/site changed']);

      // Only the Service document changes (enabled stays): nothing it subscribes to was written, no restart.
      repo.write('web.yaml', nginx('worker_processes 2;\n', { onChange: 'reload' }).replace('server {}', 'server { listen 80; }'));
      repo.commit('service only');
      host.resetCounters();
      await engine.pass();
      expect(unit().counters.restarts).toBe(2);
      expect(host.counters.mutatingCommands).toBe(0);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test('someone stops the service: the sweep starts it again, and a start is not followed by a restart', async () => {
    repo.write('web.yaml', nginx('worker_processes 1;\n'));
    repo.commit('nginx');
    const engine = await open();
    try {
      await engine.pass();
      host.systemd.stop(unit());
      host.resetCounters();
      const sweep = await engine.pass({ sweep: true });
      expect(sweep.converged).toBe(true);
      expect(host.mutationLog.map((m) => m.argv.join(' '))).toEqual(['systemctl start -- nginx.service']);
      expect(unit().counters.restarts).toBe(1);
    } finally {
      await engine.close();
    }
  }, 60_000);

  test('a unit that fails to start fails the resource with systemctl\'s words; the next pass tries again', async () => {
    repo.write('web.yaml', doc('ssh.Service', 'cron', { name: 'cron', state: 'running' }));
    repo.commit('cron');
    host.systemd.stop(host.systemd.unit('cron')!);
    host.systemd.unit('cron')!.failsToStart = true;
    const engine = await open();
    try {
      const report = await engine.pass();
      const result = report.run?.results.find((r) => r.id === 'ssh.Service/cron');
      expect(result?.status).toBe('failed');
      expect(result?.error?.message).toMatch(/systemctl start cron\.service on web1 exited 1:\nJob for cron\.service failed/);
      expect(result?.error?.message).toContain('journalctl -u cron.service');
    } finally {
      await engine.close();
    }
  }, 60_000);

  test('killed between the config write and the restart: the next run restarts once', async () => {
    repo.write('web.yaml', nginx('worker_processes 1;\n'));
    repo.commit('nginx');
    const first = await runPlumb(['apply', '--once', '--repo', repo.dir, '--state', stateDir]).done;
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(unit().counters.restarts).toBe(1);

    repo.write('web.yaml', nginx('worker_processes 4;\n'));
    repo.commit('config');
    // The service's read is held at the host: by then the config is written (the service waits on it).
    host.faults.holdExecs = /systemctl show/;
    const killed = runPlumb(['apply', '--once', '--repo', repo.dir, '--state', stateDir]);
    await waitUntil(() => host.counters.heldExecs > 0 || killed.child.exitCode !== null, 30_000, 'the service read to reach the host');
    expect(readFileSync(join(host.root, 'etc/nginx/nginx.conf'), 'utf8')).toBe('worker_processes 4;\n');
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    expect(unit().counters.restarts).toBe(1);

    delete host.faults.holdExecs;
    const resumed = await runPlumb(['apply', '--once', '--repo', repo.dir, '--state', stateDir]).done;
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(unit().counters.restarts).toBe(2);

    // And only once: the run after has nothing to act on.
    const again = await runPlumb(['apply', '--once', '--all', '--repo', repo.dir, '--state', stateDir]).done;
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(unit().counters.restarts).toBe(2);
  }, 120_000);

  test('plan --live says the service will restart when its config is planned to change', async () => {
    repo.write('web.yaml', nginx('worker_processes 1;\n'));
    repo.commit('nginx');
    const first = await runPlumb(['apply', '--once', '--repo', repo.dir, '--state', stateDir]).done;
    expect(first.code, first.stdout + first.stderr).toBe(0);
    repo.write('web.yaml', nginx('worker_processes 3;\n'));
    repo.commit('config');
    host.resetCounters();
    const plan = await runPlumb(['plan', '--live', '--repo', repo.dir, '--state', stateDir]).done;
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    expect(plan.stdout).toContain('ssh.Service/nginx');
    expect(plan.stdout).toContain('restart: ssh.File/nginx-conf changed');
    expect(host.counters.mutatingCommands).toBe(0);
    expect(unit().counters.restarts).toBe(1);
  }, 60_000);
});
