import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client, SFTPWrapper } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { connect, exec, openSftp, sftpOps as op, startTestSimulator, withTimeout, type TestSimulator } from './ssh-client.js';

describe('ssh simulator: counters', () => {
  let t: TestSimulator;
  let host: SimHost;
  let client: Client;
  let sftp: SFTPWrapper;

  beforeAll(async () => {
    t = await startTestSimulator();
    host = t.sim.hosts[0] as SimHost;
    client = await connect(host, { privateKey: t.clientKey.private });
    sftp = await openSftp(client);
    await op.writeFile(sftp, '/etc/app.conf', 'a=1\n');
    await op.symlink(sftp, '/etc/app.conf', '/etc/app.link');
  });
  beforeEach(() => host.resetCounters());
  afterAll(async () => {
    client.end();
    await t.dispose();
  });

  it('counts reads as SFTP ops and execs but never as writes', async () => {
    await op.stat(sftp, '/etc/app.conf');
    await op.lstat(sftp, '/etc/app.link');
    await op.readFile(sftp, '/etc/app.conf');
    await op.readdir(sftp, '/etc');
    await op.realpath(sftp, '.');
    await op.readlink(sftp, '/etc/app.link');
    await exec(client, 'test -e /etc/app.conf && cat /etc/app.conf && stat -c %a /etc/app.conf && getent passwd deploy && id');
    await exec(client, 'sha256sum /etc/app.conf; ls -l /etc; [ -f /etc/nope ] || true');
    expect(host.counters.writes).toBe(0);
    expect(host.counters.execs).toBe(2);
    expect(host.counters.sftpOps).toBeGreaterThanOrEqual(8);
  });

  it('counts each mutating SFTP request once, and a whole upload once', async () => {
    await op.writeFile(sftp, '/tmp/big', Buffer.alloc(700 * 1024, 1));
    expect(host.counters.writes).toBe(1);
    await op.setstat(sftp, '/tmp/big', { mode: 0o600 });
    await op.mkdir(sftp, '/tmp/d');
    await op.rmdir(sftp, '/tmp/d');
    await op.symlink(sftp, '/tmp/big', '/tmp/big.link');
    await op.unlink(sftp, '/tmp/big.link');
    await op.writeFile(sftp, '/tmp/next', 'n');
    await op.posixRename(sftp, '/tmp/next', '/tmp/big');
    await op.rename(sftp, '/tmp/big', '/tmp/final');
    expect(host.counters.writes).toBe(1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1);
  });

  it('does not count a read-only open', async () => {
    const handle = await op.open(sftp, '/etc/app.conf', 'r');
    await op.close(sftp, handle);
    expect(host.counters.writes).toBe(0);
  });

  it('counts mutating shell commands per operand, and redirections to files', async () => {
    await exec(client, 'touch /tmp/a /tmp/b');
    expect(host.counters.writes).toBe(2);
    await exec(client, 'echo x > /tmp/a; echo y >> /tmp/a; echo z > /dev/null');
    expect(host.counters.writes).toBe(4);
    await exec(client, 'chmod 600 /tmp/a; chown root /tmp/a; mv /tmp/a /tmp/c; cp /tmp/c /tmp/d; rm /tmp/c /tmp/d');
    expect(host.counters.writes).toBe(4 + 6);
  });

  it('counts each mutating command invocation once in mutatingCommands, with its argv in the mutation log', async () => {
    await exec(client, 'touch /tmp/m1 /tmp/m2; echo x > /tmp/m1; cat /tmp/m1; sh -c "rm /tmp/m2"; mkdir -p /etc; sudo chmod 600 /tmp/m1');
    expect(host.counters.mutatingCommands).toBe(4);
    expect(host.counters.mutatingByCommand).toEqual({ touch: 1, echo: 1, rm: 1, chmod: 1 });
    expect(host.mutationLog.map((m) => [m.argv.join(' '), m.user])).toEqual([
      ['touch /tmp/m1 /tmp/m2', 'deploy'],
      ['echo x', 'deploy'],
      ['rm /tmp/m2', 'deploy'],
      ['chmod 600 /tmp/m1', 'root'],
    ]);
    await exec(client, 'cat /tmp/m1; getent passwd deploy; dpkg-query -W bash; systemctl is-active ssh; apt-get -s install curl');
    expect(host.counters.mutatingCommands).toBe(4);
  });

  it('does not count what the tools define as no-ops', async () => {
    await exec(client, 'mkdir -p /etc /var/log; rm -f /tmp/never-existed');
    expect(host.counters.writes).toBe(0);
    expect(host.counters.mutatingCommands).toBe(0);
  });

  it('resetCounters zeroes counters and clears the exec log', async () => {
    await exec(client, 'true');
    host.resetCounters();
    expect(host.counters).toEqual({ connections: 0, authFailures: 0, sftpOps: 0, writes: 0, execs: 0, heldExecs: 0, mutatingCommands: 0, mutatingByCommand: {} });
    expect(host.execLog).toEqual([]);
  });
});

describe('ssh simulator: faults', () => {
  let t: TestSimulator;
  let host: SimHost;

  beforeAll(async () => {
    t = await startTestSimulator();
    host = t.sim.hosts[0] as SimHost;
  });
  beforeEach(() => {
    host.faults = {};
  });
  afterAll(async () => t.dispose());

  it('adds latency to each SFTP request and each exec, not to connecting', async () => {
    host.faults.latencyMs = 2000;
    const started = Date.now();
    const client = await connect(host, { privateKey: t.clientKey.private });
    expect(Date.now() - started).toBeLessThan(2000);
    host.faults.latencyMs = 150;
    const sftp = await openSftp(client);
    let begin = Date.now();
    await op.stat(sftp, '/etc/passwd');
    expect(Date.now() - begin).toBeGreaterThanOrEqual(145);
    begin = Date.now();
    await exec(client, 'true');
    expect(Date.now() - begin).toBeGreaterThanOrEqual(145);
    host.faults.latencyMs = 0;
    begin = Date.now();
    await op.stat(sftp, '/etc/passwd');
    expect(Date.now() - begin).toBeLessThan(100);
    client.end();
  });

  it('drops the connection on the request after dropAfterRequests, then clears the fault', async () => {
    const client = await connect(host, { privateKey: t.clientKey.private });
    const sftp = await openSftp(client);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', () => undefined);
    host.faults.dropAfterRequests = 2;
    await op.stat(sftp, '/etc/passwd');
    await op.stat(sftp, '/etc/group');
    await expect(withTimeout(op.stat(sftp, '/etc/hostname'), 2000)).rejects.toThrow();
    await withTimeout(closed, 2000);
    expect(host.faults.dropAfterRequests).toBeUndefined();
    const again = await connect(host, { privateKey: t.clientKey.private });
    expect((await exec(again, 'echo back')).stdout).toBe('back\n');
    again.end();
  });

  it('never answers while hang is set; the client has to time out', async () => {
    const client = await connect(host, { privateKey: t.clientKey.private });
    const sftp = await openSftp(client);
    host.faults.hang = true;
    await expect(withTimeout(op.stat(sftp, '/etc/passwd'), 300)).rejects.toThrow('timed out');
    await expect(withTimeout(exec(client, 'echo hi'), 300)).rejects.toThrow('timed out');
    host.faults.hang = false;
    expect((await op.stat(sftp, '/etc/passwd')).isFile()).toBe(true);
    client.end();
  });

  it('stops a running command when the client closes the channel', async () => {
    const client = await connect(host, { privateKey: t.clientKey.private });
    host.execLog.length = 0;
    await new Promise<void>((resolve, reject) => {
      client.exec('sleep 30', (err, stream) => {
        if (err) return reject(err);
        setTimeout(() => stream.close(), 100);
        stream.resume();
        stream.on('close', () => resolve());
      });
    });
    await withTimeout(
      (async () => {
        while (host.execLog.length === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      2000,
    );
    expect(host.execLog[0]).toMatchObject({ command: 'sleep 30', exitCode: 129 });
    client.end();
  });

  it('stops a running command on a signal request and reports exit-signal', async () => {
    const client = await connect(host, { privateKey: t.clientKey.private });
    const result = await withTimeout(
      new Promise<{ code: unknown; signal: unknown }>((resolve, reject) => {
        client.exec('echo started; sleep 30; echo never', (err, stream) => {
          if (err) return reject(err);
          let exit: { code: unknown; signal: unknown } = { code: undefined, signal: undefined };
          stream.once('data', () => stream.signal('TERM'));
          stream.on('exit', (code: unknown, signal: unknown) => (exit = { code, signal }));
          stream.on('close', () => resolve(exit));
        });
      }),
      2000,
    );
    expect(result).toEqual({ code: null, signal: 'SIGTERM' });
    client.end();
  });
});
