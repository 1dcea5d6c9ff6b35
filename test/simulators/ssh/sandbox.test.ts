import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, SFTPWrapper } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { connect, exec, FX, openSftp, sftpOps as op, sftpStatus, startTestSimulator, type TestSimulator } from './ssh-client.js';

/** A name no real host has in /etc, so its absence proves nothing escaped. */
const CANARY = `plumb-sshsim-escape-${process.pid}`;

describe('ssh simulator: the sandbox holds', () => {
  let t: TestSimulator;
  let host: SimHost;
  let client: Client;
  let sftp: SFTPWrapper;

  beforeAll(async () => {
    t = await startTestSimulator();
    host = t.sim.hosts[0] as SimHost;
    client = await connect(host, { privateKey: t.clientKey.private });
    sftp = await openSftp(client);
  });
  afterAll(async () => {
    client.end();
    await t.dispose();
    expect(existsSync(path.join('/etc', CANARY))).toBe(false);
    expect(existsSync(path.join('/tmp', CANARY))).toBe(false);
  });

  it('clamps .. at the sandbox root: /../../etc/passwd is the host\'s own passwd', async () => {
    const seen = (await op.readFile(sftp, '/../../etc/passwd')).toString();
    expect(seen).toBe(await readFile(path.join(host.root, 'etc/passwd'), 'utf8'));
    expect(seen).toContain('deploy:x:1000:1000');
  });

  it('writes through ../ land inside the sandbox', async () => {
    await op.writeFile(sftp, `../../../../tmp/${CANARY}`, 'x');
    expect(existsSync(path.join(host.root, 'tmp', CANARY))).toBe(true);
    const shell = await exec(client, `echo y > ../../../../../../etc/${CANARY} && cat /etc/${CANARY}`);
    expect(shell).toMatchObject({ stdout: 'y\n', code: 0 });
    expect(existsSync(path.join(host.root, 'etc', CANARY))).toBe(true);
  });

  it('refuses to follow a symlink whose target climbs out of the sandbox', async () => {
    await op.symlink(sftp, '../../../../../../../../etc', '/home/deploy/up');
    expect(await op.readlink(sftp, '/home/deploy/up')).toBe('../../../../../../../../etc');
    expect(await sftpStatus(op.stat(sftp, '/home/deploy/up'))).toBe(FX.PERMISSION_DENIED);
    expect(await sftpStatus(op.readFile(sftp, '/home/deploy/up/passwd'))).toBe(FX.PERMISSION_DENIED);
    expect(await sftpStatus(op.writeFile(sftp, `/home/deploy/up/${CANARY}`, 'x'))).toBe(FX.PERMISSION_DENIED);
    const shell = await exec(client, `cat up/hostname; echo z > up/${CANARY}; test -e up/passwd || echo absent`);
    expect(shell.stdout).toBe('absent\n');
    expect(shell.stderr).toContain('cat: up/hostname: Permission denied');
    expect(shell.stderr).toContain(`cannot create up/${CANARY}: Permission denied`);
  });

  it('follows absolute symlink targets chroot-style: a link to /etc means the sandbox /etc', async () => {
    await symlink('/etc', path.join(host.root, 'home/deploy/etc-link'));
    expect((await op.readFile(sftp, '/home/deploy/etc-link/hostname')).toString()).toBe(`${host.name}\n`);
    await op.writeFile(sftp, `/home/deploy/etc-link/${CANARY}.conf`, 'inside');
    expect(await readFile(path.join(host.root, 'etc', `${CANARY}.conf`), 'utf8')).toBe('inside');
    const shell = await exec(client, `rm etc-link && test -f /etc/passwd && echo kept`);
    expect(shell.stdout).toBe('kept\n');
  });

  it('rm -r of a directory holding an escaping link removes the link, not its target', async () => {
    // From /srv/trap, ../../../etc climbs out of the sandbox. Were the link followed, it
    // would name the sandbox's own /etc if clamped at the root, or, on disk, a decoy etc/
    // beside the sandbox directory (never the real /etc): both must survive.
    const decoy = path.join(path.dirname(host.root), 'etc');
    await mkdir(decoy);
    await writeFile(path.join(decoy, 'passwd'), 'decoy\n');
    expect(await exec(client, 'mkdir -p /srv/trap && ln -s ../../../etc /srv/trap/out')).toMatchObject({ stderr: '', code: 0 });
    expect(realpathSync(path.join(host.root, 'srv/trap/out'))).toBe(decoy); // what the kernel would follow
    const shell = await exec(client, 'rm -rf /srv/trap && test ! -e /srv/trap');
    expect(shell).toMatchObject({ stderr: '', code: 0 });
    expect(existsSync(path.join(host.root, 'etc/passwd'))).toBe(true);
    expect(existsSync(path.join(decoy, 'passwd'))).toBe(true);
  });

  it('detects symlink loops', async () => {
    await op.symlink(sftp, '/tmp/loop-b', '/tmp/loop-a');
    await op.symlink(sftp, '/tmp/loop-a', '/tmp/loop-b');
    expect(await sftpStatus(op.stat(sftp, '/tmp/loop-a'))).toBe(FX.NO_SUCH_FILE);
  });
});
