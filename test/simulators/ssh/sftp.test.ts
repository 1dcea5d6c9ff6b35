import { readFile, stat as realStat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { connect, FX, openSftp, sftpOps as op, sftpStatus, startTestSimulator, withTimeout, type TestSimulator } from './ssh-client.js';

/** The extension names of an SSH_FXP_VERSION packet (length-prefixed). */
function versionExtensions(packet: Buffer): string[] {
  const names: string[] = [];
  let p = 4 + 1 + 4;
  while (p < packet.length) {
    const nameLength = packet.readUInt32BE(p);
    names.push(packet.subarray(p + 4, p + 4 + nameLength).toString());
    p += 4 + nameLength;
    p += 4 + packet.readUInt32BE(p);
  }
  return names;
}

describe('ssh simulator: SFTP with OpenSSH sftp-server semantics', () => {
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
  });

  it('writes a file into the sandbox and stats it with type, size, owner and mode', async () => {
    await op.writeFile(sftp, '/etc/motd', 'hello\n', 0o640);
    expect(await readFile(path.join(host.root, 'etc/motd'), 'utf8')).toBe('hello\n');
    const st = await op.stat(sftp, '/etc/motd');
    expect(st.isFile()).toBe(true);
    expect(st.mode).toBe(0o100640);
    expect(st.size).toBe(6);
    expect([st.uid, st.gid]).toEqual([1000, 1000]);
    expect(st.mtime).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('applies the umask to the mode of a new file, as sftp-server does', async () => {
    await op.writeFile(sftp, '/tmp/open-mode', 'x', 0o666);
    expect((await op.stat(sftp, '/tmp/open-mode')).mode & 0o7777).toBe(0o644);
  });

  it('reports a missing path as NO_SUCH_FILE', async () => {
    expect(await sftpStatus(op.stat(sftp, '/nope'))).toBe(FX.NO_SUCH_FILE);
    expect(await sftpStatus(op.readFile(sftp, '/nope/deeper'))).toBe(FX.NO_SUCH_FILE);
  });

  it('refuses a plain rename onto an existing file, like OpenSSH', async () => {
    await op.writeFile(sftp, '/tmp/a', 'new');
    await op.writeFile(sftp, '/tmp/b', 'old');
    expect(await sftpStatus(op.rename(sftp, '/tmp/a', '/tmp/b'))).toBe(FX.FAILURE);
    expect((await op.readFile(sftp, '/tmp/b')).toString()).toBe('old');
  });

  it('overwrites atomically with posix-rename@openssh.com, carrying the metadata along', async () => {
    await op.writeFile(sftp, '/tmp/staged', 'next');
    await op.setstat(sftp, '/tmp/staged', { mode: 0o600, uid: 0, gid: 33 });
    await op.writeFile(sftp, '/tmp/live', 'prev');
    await op.posixRename(sftp, '/tmp/staged', '/tmp/live');
    expect((await op.readFile(sftp, '/tmp/live')).toString()).toBe('next');
    const st = await op.stat(sftp, '/tmp/live');
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o600, 0, 33]);
    expect(await sftpStatus(op.stat(sftp, '/tmp/staged'))).toBe(FX.NO_SUCH_FILE);
  });

  it('renames onto a free name with plain rename', async () => {
    await op.writeFile(sftp, '/tmp/from', 'x');
    await op.rename(sftp, '/tmp/from', '/tmp/to');
    expect((await op.readFile(sftp, '/tmp/to')).toString()).toBe('x');
  });

  it('keeps setstat mode, uid and gid virtual: stat shows them, the real file stays usable', async () => {
    await op.writeFile(sftp, '/etc/app.conf', 'a=1\n');
    await op.setstat(sftp, '/etc/app.conf', { mode: 0o400, uid: 0, gid: 0 });
    const st = await op.stat(sftp, '/etc/app.conf');
    expect([st.mode, st.uid, st.gid]).toEqual([0o100400, 0, 0]);
    expect((await realStat(path.join(host.root, 'etc/app.conf'))).mode & 0o600).toBe(0o600);
    await op.writeFile(sftp, '/etc/app.conf', 'a=2\n');
    expect((await op.stat(sftp, '/etc/app.conf')).uid).toBe(0);
  });

  it('creates directories like mkdir(2): umask applied, FAILURE if present, NO_SUCH_FILE without parent', async () => {
    await op.mkdir(sftp, '/srv');
    const st = await op.stat(sftp, '/srv');
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o755);
    expect(await sftpStatus(op.mkdir(sftp, '/srv'))).toBe(FX.FAILURE);
    expect(await sftpStatus(op.mkdir(sftp, '/missing/child'))).toBe(FX.NO_SUCH_FILE);
  });

  it('removes only empty directories with rmdir', async () => {
    await op.mkdir(sftp, '/srv/full');
    await op.writeFile(sftp, '/srv/full/f', 'x');
    expect(await sftpStatus(op.rmdir(sftp, '/srv/full'))).toBe(FX.FAILURE);
    expect(await sftpStatus(op.rmdir(sftp, '/srv/absent'))).toBe(FX.NO_SUCH_FILE);
    await op.unlink(sftp, '/srv/full/f');
    await op.rmdir(sftp, '/srv/full');
    expect(await sftpStatus(op.stat(sftp, '/srv/full'))).toBe(FX.NO_SUCH_FILE);
  });

  it('refuses to unlink a directory', async () => {
    expect(await sftpStatus(op.unlink(sftp, '/srv'))).toBe(FX.FAILURE);
  });

  it('resolves relative paths against the login home, as sftp-server does', async () => {
    expect(await op.realpath(sftp, '.')).toBe('/home/deploy');
    await op.writeFile(sftp, 'notes.txt', 'n');
    expect(await readFile(path.join(host.root, 'home/deploy/notes.txt'), 'utf8')).toBe('n');
    expect(await op.realpath(sftp, '/etc/../var/./log')).toBe('/var/log');
    expect(await op.realpath(sftp, '/var/not-yet')).toBe('/var/not-yet');
    expect(await sftpStatus(op.realpath(sftp, '/no/such/dir'))).toBe(FX.NO_SUCH_FILE);
  });

  it('lists directories with ., .. and ls -l longnames naming the virtual owner', async () => {
    await op.writeFile(sftp, '/var/www/index.html', '<h1>');
    await op.setstat(sftp, '/var/www/index.html', { uid: 33, gid: 33, mode: 0o644 });
    const entries = await op.readdir(sftp, '/var/www');
    expect(entries.map((e) => e.filename).sort()).toEqual(['index.html']);
    const line = entries.find((e) => e.filename === 'index.html')?.longname ?? '';
    expect(line).toMatch(/^-rw-r--r-- +1 www-data +www-data +4 .* index\.html$/);
    expect(await sftpStatus(op.readdir(sftp, '/etc/motd'))).toBe(FX.NO_SUCH_FILE);
  });

  it('creates and reads symlinks; stat follows them, lstat does not', async () => {
    await op.writeFile(sftp, '/etc/real.conf', 'real');
    await op.symlink(sftp, '/etc/real.conf', '/etc/link.conf');
    expect(await op.readlink(sftp, '/etc/link.conf')).toBe('/etc/real.conf');
    expect((await op.lstat(sftp, '/etc/link.conf')).isSymbolicLink()).toBe(true);
    expect((await op.stat(sftp, '/etc/link.conf')).isFile()).toBe(true);
    expect((await op.readFile(sftp, '/etc/link.conf')).toString()).toBe('real');
    expect(await sftpStatus(op.readlink(sftp, '/etc/real.conf'))).toBe(FX.BAD_MESSAGE);
  });

  it('fails an exclusive create of an existing file', async () => {
    await op.writeFile(sftp, '/tmp/excl', 'x');
    expect(await sftpStatus(op.open(sftp, '/tmp/excl', 'wx'))).toBe(FX.FAILURE);
    const handle = await op.open(sftp, '/tmp/excl-new', 'wx', 0o600);
    await op.close(sftp, handle);
    expect((await op.stat(sftp, '/tmp/excl-new')).mode & 0o7777).toBe(0o600);
  });

  it('appends with the append flag', async () => {
    await op.writeFile(sftp, '/var/log/app.log', 'one\n');
    await new Promise<void>((resolve, reject) => sftp.appendFile('/var/log/app.log', 'two\n', (err) => (err ? reject(err) : resolve())));
    expect((await op.readFile(sftp, '/var/log/app.log')).toString()).toBe('one\ntwo\n');
  });

  it('transfers files larger than one SFTP packet intact', async () => {
    const big = Buffer.alloc(600 * 1024, 'plumb');
    await op.writeFile(sftp, '/tmp/big.bin', big);
    expect((await op.readFile(sftp, '/tmp/big.bin')).equals(big)).toBe(true);
  });

  it('answers home-directory and fsync@openssh.com', async () => {
    const sftpAny = sftp as SFTPWrapper & { ext_home_dir(user: string, cb: (err: Error | undefined, home: string) => void): void };
    const home = await new Promise<string>((resolve, reject) => sftpAny.ext_home_dir('app', (err, p) => (err ? reject(err) : resolve(p))));
    expect(home).toBe('/home/app');
    const handle = await op.open(sftp, '/tmp/synced', 'w');
    await new Promise<void>((resolve, reject) => sftp.ext_openssh_fsync(handle, (err: Error | undefined) => (err ? reject(err) : resolve())));
    await op.close(sftp, handle);
  });

  it('answers an unknown extended request with OP_UNSUPPORTED, as sftp-server does', async () => {
    // ssh2 1.17 writes a corrupt name for expand-path@openssh.com, so it arrives as an unknown request.
    const status = await sftpStatus(
      new Promise<string>((resolve, reject) => sftp.ext_openssh_expandPath('~/notes.txt', (err, p) => (err ? reject(err) : resolve(p)))),
    );
    expect(status).toBe(FX.OP_UNSUPPORTED);
  });
  it('answers INIT with OpenSSH\'s extension list and closes the channel on EOF, like sftp-server exiting', async () => {
    const channel = await new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch))));
    const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
    const reply = new Promise<Buffer>((resolve) => {
      let buffered = Buffer.alloc(0);
      channel.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) resolve(buffered);
      });
    });
    channel.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
    const packet = await withTimeout(reply, 2000);
    expect([packet[4], packet.readUInt32BE(5)]).toEqual([2, 3]);
    expect(versionExtensions(packet)).toEqual(['posix-rename@openssh.com', 'fsync@openssh.com', 'lsetstat@openssh.com', 'expand-path@openssh.com', 'home-directory']);
    channel.end();
    await withTimeout(closed, 2000);
  });
});
