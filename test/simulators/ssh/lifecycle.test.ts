import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SshSimulator } from '../../../fixtures/simulators/ssh/index.js';
import { freePortRange } from '../../helpers/ports.js';
import { connect, exec, generateClientKey, openSftp, sftpOps as op, startTestSimulator, withTimeout } from './ssh-client.js';

describe('ssh simulator: lifecycle', () => {
  it('stop() closes busy connections promptly (running sleep, hung request, open SFTP)', async () => {
    const t = await startTestSimulator();
    const host = t.sim.hosts[0];
    if (host === undefined) throw new Error('no host');
    const client = await connect(host, { privateKey: t.clientKey.private });
    client.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const sftp = await openSftp(client);
    void exec(client, 'sleep 30').catch(() => undefined);
    host.faults.hang = true;
    void op.stat(sftp, '/etc/passwd').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    const begin = Date.now();
    await withTimeout(t.sim.stop(), 2000);
    expect(Date.now() - begin).toBeLessThan(1000);
    await withTimeout(closed, 2000);
    await expect(connect(host, { privateKey: t.clientKey.private })).rejects.toThrow(/ECONNREFUSED/);
    await t.dispose();
  });

  it('listens on basePort + i when a base port is given, and fails cleanly when a port is taken', async () => {
    const base = await freePortRange(3);
    const rootDir = await mkdtemp(path.join(tmpdir(), 'plumb-sshsim-'));
    const key = generateClientKey();
    const sim = await SshSimulator.start({ hosts: 3, basePort: base, rootDir, authorizedKeys: [key.public] });
    try {
      expect(sim.hosts.map((h) => [h.name, h.port])).toEqual([
        ['host001', base],
        ['host002', base + 1],
        ['host003', base + 2],
      ]);
      await expect(SshSimulator.start({ hosts: 1, basePort: base + 1, rootDir: path.join(rootDir, 'other'), authorizedKeys: [key.public] })).rejects.toThrow(
        /EADDRINUSE/,
      );
    } finally {
      await sim.stop();
      await rm(rootDir, { recursive: true, force: true });
    }
  });

  it('keeps existing sandbox files when restarted on the same root', async () => {
    const rootDir = await mkdtemp(path.join(tmpdir(), 'plumb-sshsim-'));
    const key = generateClientKey();
    const first = await SshSimulator.start({ hosts: ['keep'], rootDir, authorizedKeys: [key.public] });
    await first.stop();
    await writeFile(path.join(rootDir, 'keep/etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nops:x:2000:2000::/home/ops:/bin/sh\n');
    const second = await SshSimulator.start({ hosts: ['keep'], rootDir, authorizedKeys: [key.public] });
    try {
      expect(await readFile(path.join(rootDir, 'keep/etc/passwd'), 'utf8')).toContain('ops:x:2000');
      const client = await connect(second.host('keep'), { username: 'ops', privateKey: key.private });
      expect((await exec(client, 'id -u; pwd')).stdout).toBe('2000\n/home/ops\n');
      client.end();
    } finally {
      await second.stop();
      await rm(rootDir, { recursive: true, force: true });
    }
  });

  it('applies the latencyMs option as every host\'s default', async () => {
    const t = await startTestSimulator({ latencyMs: 120 });
    const host = t.sim.hosts[0];
    if (host === undefined) throw new Error('no host');
    const client = await connect(host, { privateKey: t.clientKey.private });
    const begin = Date.now();
    await exec(client, 'true');
    expect(Date.now() - begin).toBeGreaterThanOrEqual(115);
    client.end();
    await t.dispose();
  });

  it('rejects bad options before listening', async () => {
    const rootDir = await mkdtemp(path.join(tmpdir(), 'plumb-sshsim-'));
    const key = generateClientKey();
    await expect(SshSimulator.start({ hosts: ['../escape'], rootDir, authorizedKeys: [key.public] })).rejects.toThrow(/invalid host name/);
    await expect(SshSimulator.start({ hosts: 1, rootDir, authorizedKeys: ['ssh-ed25519 not-a-key'] })).rejects.toThrow(/authorized key/);
    await rm(rootDir, { recursive: true, force: true });
  });

  it('serves 200 hosts with one connection each, SFTP and exec at the same time', async () => {
    const t = await startTestSimulator({ hosts: 200 });
    try {
      const results = await Promise.all(
        t.sim.hosts.map(async (host) => {
          const client = await connect(host, { privateKey: t.clientKey.private, readyTimeout: 30_000 });
          const sftp = await openSftp(client);
          const [hostname] = await Promise.all([
            exec(client, 'cat /etc/hostname'),
            op.writeFile(sftp, '/etc/plumb.conf', host.name),
            exec(client, 'test -d /tmp'),
          ]);
          const content = (await op.readFile(sftp, '/etc/plumb.conf')).toString();
          client.end();
          return hostname.stdout.trim() === host.name && content === host.name;
        }),
      );
      expect(results.every(Boolean)).toBe(true);
      expect(t.sim.hosts.every((h) => h.counters.connections === 1 && h.counters.execs === 2 && h.counters.writes === 1)).toBe(true);
    } finally {
      await t.dispose();
    }
  });
});
