import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { DEFAULT_UNITS, type SimHost } from '../../fixtures/simulators/ssh/index.js';
import type { ShellCommand } from '../../fixtures/simulators/ssh/shell-command.js';
import { FILE_BUILTINS } from '../../fixtures/simulators/ssh/shell-builtins-files.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startSshLab, type SshLab } from '../helpers/ssh-lab.js';

const doc = (kind: string, name: string, spec: Record<string, unknown>, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: web1${meta} }\nspec: ${JSON.stringify(spec)}\n`;

/**
 * A non-root login (deploy) with `become: { method: sudo }` through the whole
 * engine onto a simulated Debian host: every change is made by root through
 * `sudo -n -u root -- sh -c '...'`, writes are staged in a mktemp -d directory
 * and moved into place with the final owner and mode, and a converged pass
 * costs no mutating command and no write.
 */
describe('become: sudo on the SSH simulator', () => {
  let lab: SshLab;
  let repo: TempRepo;
  let engine: Engine;
  let host: SimHost;
  /** Set by a test: the move of a staged file into place cuts the connection instead (once). */
  let cutOnMove: (() => void) | undefined;
  let leftAtCut: { temps: string[]; staged: string[] } | undefined;

  const realMv = FILE_BUILTINS.mv as ShellCommand;
  const temps = (): string[] => readdirSync(join(host.root, 'etc/app')).filter((n) => /\.plumb-[0-9a-f]{12}$/.test(n));
  const staged = (): string[] =>
    readdirSync(join(host.root, 'tmp'))
      .filter((n) => n.startsWith('plumb-stage.'))
      .flatMap((d) => readdirSync(join(host.root, 'tmp', d)));

  beforeEach(async () => {
    cutOnMove = undefined;
    leftAtCut = undefined;
    const mv: ShellCommand = async (ctx) => {
      const cut = cutOnMove;
      if (cut === undefined || !ctx.args.some((a) => a.includes('.plumb-'))) return realMv(ctx);
      cutOnMove = undefined;
      leftAtCut = { temps: temps(), staged: staged() };
      cut();
      // The connection is gone: this command never answers.
      return new Promise<number>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));
    };
    lab = await startSshLab(['web1'], { seed: () => ({ units: [...DEFAULT_UNITS, { name: 'web', unitFileState: 'disabled' }] }), commands: { mv } });
    host = lab.sim.host('web1');
    repo = new TempRepo();
    repo.write('targets.yaml', `${lab.target('web1')}  become: { method: sudo }\n`);
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-become-sim-'), run: { backoff: '10ms', maxBackoff: '20ms', connectTimeout: '2s', opTimeout: '10s' } }),
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
  const meta = async (path: string): Promise<{ mode: string; uid: number; gid: number }> => {
    const st = await host.stat(path);
    return { mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid };
  };
  const seedMotd = async (): Promise<void> => {
    await host.fs.writeFile('/etc/motd', 'Welcome\n', { append: false, owner: { uid: 0, gid: 0 } });
    await host.fs.setAttributes('/etc/motd', false, { mode: 0o644 });
  };
  const resources = (token: string): string =>
    [
      doc('ssh.Directory', 'app-dir', { path: '/etc/app', owner: 'root', group: 'adm', mode: '0750' }),
      doc('ssh.File', 'token', { path: '/etc/app/token', content: token, owner: 'root', group: 'adm', mode: '0640' }, ', dependsOn: [ssh.Directory/app-dir]'),
      doc('ssh.Line', 'motd', { path: '/etc/motd', line: 'managed by plumb' }),
      doc('ssh.Service', 'web', { name: 'web', enabled: true, state: 'running' }),
    ].join('---\n');

  test('a Directory, a root:adm 0640 File, a Line and a Service converge through sudo; the next pass runs no mutating command and writes nothing', async () => {
    await seedMotd();
    repo.write('app.yaml', resources('t=1\n'));
    repo.commit('app');
    host.resetCounters();

    const first = await engine.pass();
    expect(statuses(first)).toEqual({ 'ssh.Directory/app-dir': 'changed', 'ssh.File/token': 'changed', 'ssh.Line/motd': 'changed', 'ssh.Service/web': 'changed' });
    expect(await meta('/etc/app')).toEqual({ mode: '0750', uid: 0, gid: 4 });
    expect(await meta('/etc/app/token')).toEqual({ mode: '0640', uid: 0, gid: 4 });
    expect((await host.fs.readFile('/etc/app/token')).toString()).toBe('t=1\n');
    // The Line rewrote the file as root and kept its owner and mode.
    expect((await host.fs.readFile('/etc/motd')).toString()).toBe('Welcome\nmanaged by plumb\n');
    expect(await meta('/etc/motd')).toEqual({ mode: '0644', uid: 0, gid: 0 });
    expect(host.systemd.unit('web')).toMatchObject({ unitFileState: 'enabled', activeState: 'active' });
    // Every mutating command ran as root (through sudo); the login user only wrote staged files over SFTP.
    expect(host.mutationLog.length).toBeGreaterThan(0);
    expect(host.mutationLog.filter((m) => m.user !== 'root')).toEqual([]);
    // systemctl enable, then start: two invocations in one exec.
    expect(host.counters.mutatingByCommand).toMatchObject({ systemctl: 2, mkdir: 1, mv: 2 });
    expect(host.execLog.filter((e) => e.user === 'deploy' && !e.command.includes("sudo -n -u 'root' -- sh -c ") && !/^printf 'plumb-login:/.test(e.command))).toEqual([]);
    // Nothing is left in /etc/app but the file, and the staging directory is removed when the session closes.
    expect(readdirSync(join(host.root, 'etc/app'))).toEqual(['token']);

    host.resetCounters();
    const second = await engine.pass({ sweep: true });
    expect(statuses(second)).toEqual({ 'ssh.Directory/app-dir': 'converged', 'ssh.File/token': 'converged', 'ssh.Line/motd': 'converged', 'ssh.Service/web': 'converged' });
    expect(host.counters.mutatingCommands).toBe(0);
    expect(host.counters.writes).toBe(0);
  });

  test('a staged file and a temp file left by a write cut off before its move are removed by the next operation', async () => {
    await seedMotd();
    repo.write('app.yaml', resources('t=1\n'));
    repo.commit('app');
    expect(Object.values(statuses(await engine.pass()))).toEqual(['changed', 'changed', 'changed', 'changed']);

    repo.write('app.yaml', resources('t=2\n'));
    repo.commit('token v2');
    cutOnMove = () => host.dropAll();
    const cut = await engine.pass();
    // Both names existed when the move was cut off: the temp beside the target and the staged copy.
    expect(leftAtCut).toEqual({ temps: [expect.stringMatching(/^\.token\.plumb-[0-9a-f]{12}$/)], staged: [expect.stringMatching(/^[0-9a-f]{12}$/)] });
    expect(leftAtCut!.staged[0]).toBe(leftAtCut!.temps[0]!.slice(-12));
    // Whether the queue's retry already ran in this pass or the next pass does it, the journal drives the cleanup.
    const report = statuses(cut)['ssh.File/token'] === 'changed' ? cut : await engine.pass();
    expect(statuses(report)['ssh.File/token']).toBe('changed');
    expect((await host.fs.readFile('/etc/app/token')).toString()).toBe('t=2\n');
    expect(await meta('/etc/app/token')).toEqual({ mode: '0640', uid: 0, gid: 4 });
    expect(temps()).toEqual([]);
    expect(existsSync(join(host.root, 'tmp')) ? staged() : []).toEqual([]);
  });
});
