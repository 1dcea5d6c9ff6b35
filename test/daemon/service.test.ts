import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { signBody } from '../../src/source/webhook.js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { freePort } from '../helpers/ports.js';
import { sshFile, startSshLab, type SshLab } from '../helpers/ssh-lab.js';

/** plumb as a systemd service: the unit, readiness and watchdog, push-triggered passes, and SIGTERM draining. */
const root = packageRoot();
const cli = join(root, 'dist/src/cli/main.js');
const unit = join(root, 'systemd/plumb.service');
const hasSystemdAnalyze = (() => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** `plumb daemon --config FILE`, or with the given arguments instead of `--config`. */
function daemon(config: string | string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; log: () => string; exited: Promise<number | null> } {
  const args = typeof config === 'string' ? ['--config', config] : config;
  const child = spawn(process.execPath, [cli, 'daemon', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(child);
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c.toString('utf8')));
  return { child, log: () => log, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads the daemon's state; undefined until the daemon has created it (and its tables: migrations run after the file appears). */
function dbValue<T>(stateDir: string, sql: string): T | undefined {
  if (!existsSync(join(stateDir, 'plumb.db'))) return undefined;
  const db = new Database(join(stateDir, 'plumb.db'), { readonly: true });
  try {
    return db.prepare(sql).get() as T | undefined;
  } catch (err) {
    if (/no such table/.test((err as Error).message)) return undefined;
    throw err;
  } finally {
    db.close();
  }
}

/** Every daemon a test starts is stopped when the test ends, passed or failed: a leftover would talk to the shared hosts. */
const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe.skipIf(!hasSystemdAnalyze)('the systemd unit', () => {
  test('systemd-analyze verify finds nothing to complain about', () => {
    expect(execFileSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBe('');
  });

  test('its exposure (systemd-analyze security --offline) stays at or below 2.0', () => {
    const out = execFileSync('systemd-analyze', ['security', '--offline=true', unit], { encoding: 'utf8' });
    const level = Number(/Overall exposure level for plumb\.service: ([\d.]+)/.exec(out)![1]);
    expect(level).toBeLessThanOrEqual(2.0);
  });
});

describe('plumb daemon as a service', () => {
  let lab: SshLab;
  beforeAll(async () => {
    lab = await startSshLab(['svc1'], { latencyMs: 0 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  /** A config repo pushed to a local bare repo, the way an ops host is set up for push-to-deploy. */
  function setup(files: string[], extra = ''): { work: TempRepo; bare: string; stateDir: string; config: string } {
    const work = new TempRepo();
    work.write('targets.yaml', lab.target('svc1'));
    work.write('files.yaml', files.join('---\n'));
    work.commit('initial');
    const dir = tempDir('plumb-svc-');
    const bare = join(dir, 'config.git');
    execFileSync('git', ['clone', '-q', '--bare', work.dir, bare]);
    work.git('remote', 'add', 'ops', bare);
    const stateDir = join(dir, 'state');
    const config = join(dir, 'plumb.yaml');
    writeFileSync(config, `repo:\n  url: ${bare}\n  pollInterval: 1h\nstateDir: ${stateDir}\nsweep:\n  interval: 0s\n${extra}`);
    return { work, bare, stateDir, config };
  }

  test('READY=1 once serving, WATCHDOG=1 while alive, STOPPING=1 on SIGTERM (through systemd-notify)', async () => {
    const { stateDir, config } = setup([sshFile('n1', 'svc1', `/etc/notify-${Date.now()}`, 'x\n')]);
    const bin = tempDir('plumb-fakebin-');
    const calls = join(bin, 'calls.log');
    writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> ${calls}\n`);
    chmodSync(join(bin, 'systemd-notify'), 0o755);
    const d = daemon(config, { PATH: `${bin}:${process.env.PATH}`, NOTIFY_SOCKET: '/run/fake-notify', WATCHDOG_USEC: '300000' });
    await until('READY=1', () => existsSync(calls) && readFileSync(calls, 'utf8').includes('READY=1'));
    await until('two watchdog pings', () => (readFileSync(calls, 'utf8').match(/WATCHDOG=1/g) ?? []).length >= 2);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    const lines = readFileSync(calls, 'utf8');
    expect(lines).toMatch(new RegExp(`^/run/fake-notify --pid=${d.child.pid} READY=1 STATUS=watching main of `, 'm'));
    expect(lines).toContain('STOPPING=1');
    expect(dbValue<{ n: number }>(stateDir, "SELECT COUNT(*) AS n FROM ops WHERE state = 'intent'")?.n).toBe(0);
  });

  test('a git push to the watched local repo starts a pass at once, polling or not', async () => {
    const path = `/etc/pushed-${Date.now()}`;
    const { work, stateDir, config } = setup([sshFile('p1', 'svc1', path, 'one\n')]);
    const d = daemon(config);
    try {
      await until('the start-up pass', () => dbValue<{ applied_commit: string }>(stateDir, 'SELECT applied_commit FROM source')?.applied_commit === work.head());
      work.write('files.yaml', sshFile('p1', 'svc1', path, 'two\n'));
      const pushed = work.commit('second');
      const started = Date.now();
      work.git('push', '-q', 'ops', 'main');
      await until('the pushed commit to converge', () => dbValue<{ applied_commit: string }>(stateDir, 'SELECT applied_commit FROM source')?.applied_commit === pushed, 10_000);
      expect(Date.now() - started).toBeLessThan(5_000); // pollInterval is 1h: only the watch can have done this
      expect(readFileSync(join(lab.sim.host('svc1').root, path), 'utf8')).toBe('two\n');
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });

  test('SIGTERM lets an operation in flight finish, then exits; nothing is left half-journaled', async () => {
    const path = `/etc/drain-${Date.now()}`;
    const { stateDir, config } = setup([sshFile('d1', 'svc1', path, 'drained\n')], 'shutdown:\n  drain: 20s\n');
    lab.sim.host('svc1').faults = { latencyMs: 150 }; // every SFTP request takes 150 ms: the write is in flight for a while
    const d = daemon(config);
    try {
      await until('an operation in flight', () => (dbValue<{ n: number }>(stateDir, "SELECT COUNT(*) AS n FROM ops WHERE state = 'intent'")?.n ?? 0) > 0);
      d.child.kill('SIGTERM');
      expect(await d.exited).toBe(0);
    } finally {
      lab.sim.host('svc1').faults = {};
    }
    expect(readFileSync(join(lab.sim.host('svc1').root, path), 'utf8')).toBe('drained\n');
    expect(dbValue<{ n: number }>(stateDir, "SELECT COUNT(*) AS n FROM ops WHERE state = 'intent'")?.n).toBe(0);
    expect(dbValue<{ state: string }>(stateDir, "SELECT state FROM ops WHERE resource_id = 'ssh.File/d1' ORDER BY id DESC")?.state).toBe('done');
  });

  test('past the drain deadline, a hung operation is aborted and the daemon still exits promptly', async () => {
    const path = `/etc/hung-${Date.now()}`;
    const { stateDir, config } = setup([sshFile('h1', 'svc1', path, 'never\n')], 'shutdown:\n  drain: 300ms\n');
    const host = lab.sim.host('svc1');
    host.faults = { hang: true }; // the SSH handshake works; every SFTP request then waits forever
    const before = host.counters.sftpOps;
    const d = daemon(config);
    try {
      await until('a request stuck on the target', () => host.counters.sftpOps > before);
      const stopped = Date.now();
      d.child.kill('SIGTERM');
      expect(await d.exited).toBe(0);
      expect(Date.now() - stopped).toBeLessThan(5_000);
    } finally {
      lab.sim.host('svc1').faults = {};
    }
    expect(dbValue<{ n: number }>(stateDir, "SELECT COUNT(*) AS n FROM ops WHERE state = 'intent'")?.n).toBe(0);
  });

  test('become: SIGTERM while the escalation probe of a new session is held at the host; the daemon still exits promptly', async () => {
    const path = `/etc/become-${Date.now()}`;
    const { stateDir, config, work } = setup([sshFile('b1', 'svc1', path, 'x\n')], 'shutdown:\n  drain: 300ms\n');
    work.write('targets.yaml', `${lab.target('svc1')}  become: { method: sudo }\n`).commit('become');
    work.git('push', '-q', 'ops', 'HEAD:main');
    const host = lab.sim.host('svc1');
    host.faults = { holdExecs: /sudo -n/ }; // connected; the probe `sudo -n ... id -u` never answers
    const before = host.counters.heldExecs;
    const d = daemon(config);
    try {
      await until('the probe held at the host', () => host.counters.heldExecs > before);
      const stopped = Date.now();
      d.child.kill('SIGTERM');
      expect(await d.exited).toBe(0);
      expect(Date.now() - stopped).toBeLessThan(5_000);
    } finally {
      lab.sim.host('svc1').faults = {};
    }
    expect(dbValue<{ n: number }>(stateDir, "SELECT COUNT(*) AS n FROM ops WHERE state = 'intent'")?.n).toBe(0);
  });

  test('plumb reload against a daemon started without a config file says there is nothing to re-read', async () => {
    const { work, stateDir } = setup([sshFile('r1', 'svc1', `/etc/reload-${Date.now()}`, 'x\n')]);
    const d = daemon(['--repo', work.dir, '--state', stateDir]);
    try {
      await until('the control socket', () => existsSync(join(stateDir, 'plumb.sock')));
      const reload = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [cli, 'reload', '--repo', work.dir, '--state', stateDir], (err, _stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stderr }));
      });
      expect(reload.code).toBe(1);
      expect(reload.stderr).toContain('started without a config file');
      expect(reload.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });

  test('a signed webhook makes the daemon fetch and converge at once; /metrics and /readyz answer', async () => {
    const path = `/etc/hooked-${Date.now()}`;
    const work = new TempRepo();
    work.write('targets.yaml', lab.target('svc1'));
    work.write('files.yaml', sshFile('w1', 'svc1', path, 'one\n'));
    work.commit('initial');
    const dir = tempDir('plumb-hook-');
    const bare = join(dir, 'config.git');
    execFileSync('git', ['clone', '-q', '--bare', work.dir, bare]);
    work.git('remote', 'add', 'ops', bare);
    const secretFile = join(dir, 'webhook-secret');
    writeFileSync(secretFile, 'hook-secret-5b2f9d\n', { mode: 0o600 });
    const port = await freePort();
    const stateDir = join(dir, 'state');
    const config = join(dir, 'plumb.yaml');
    // file:// rather than a path: no ref watch, so only the webhook can make this fast.
    writeFileSync(config, `repo:\n  url: file://${bare}\n  pollInterval: 1h\nstateDir: ${stateDir}\nsweep:\n  interval: 0s\nhttp:\n  listen: 127.0.0.1:${port}\nwebhook:\n  secret: file:${secretFile}\n  minFetchInterval: 0s\n`);
    const d = daemon(config);
    try {
      const applied = (): string | undefined => dbValue<{ applied_commit: string }>(stateDir, 'SELECT applied_commit FROM source')?.applied_commit;
      await until('the start-up pass', () => applied() === work.head());
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      work.write('files.yaml', sshFile('w1', 'svc1', path, 'two\n'));
      const pushed = work.commit('second');
      work.git('push', '-q', 'ops', 'main');
      const body = JSON.stringify({ ref: 'refs/heads/main', after: '0'.repeat(40), repository: { clone_url: 'https://elsewhere.example/other.git' } });
      const started = Date.now();
      const res = await fetch(`http://127.0.0.1:${port}/hooks/git`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-plumb-delivery': 'd-1', 'x-plumb-signature': `sha256=${signBody(Buffer.from('hook-secret-5b2f9d'), Buffer.from(body))}` } });
      expect(res.status).toBe(202);
      await until('the pushed commit to converge', () => applied() === pushed, 10_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^plumb_ops_total\{kind="ssh\.File",result="changed"\} [1-9]/m);
      expect(metrics).toMatch(/^plumb_webhooks_total\{provider="generic",outcome="accepted"\} 1$/m);
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
    }
  });
});

