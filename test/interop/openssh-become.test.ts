/**
 * `become: { method: sudo }` against real OpenSSH and sudo on loopback. The test
 * (root, as in CI) creates throwaway non-root users itself: one with a NOPASSWD
 * sudoers drop-in (checked with visudo -cf), one with a password rule, one with
 * no rule; all are removed at the end. sshd's AuthorizedKeysFile is one file
 * for every user (test/helpers/openssh.ts), so the client key logs them all in
 * once they can read it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshProvider } from '../../providers/ssh/index.js';
import type { SshSession } from '../../providers/ssh/index.js';
import { commandKind, type CommandSpec } from '../../providers/ssh/kinds/command.js';
import { directoryKind, type DirectorySpec } from '../../providers/ssh/kinds/directory.js';
import { fileKind, type FileSpec } from '../../providers/ssh/kinds/file.js';
import { lineKind, type LineSpec } from '../../providers/ssh/kinds/line.js';
import { ProviderError } from '../../src/errors.js';
import type { KindHandler, Resource, Target } from '../../src/provider.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { sshdAvailable, SSHD_MISSING, startOpenSsh, type OpenSshServer } from '../helpers/openssh.js';
import { opContext, testLog } from '../helpers/provider-contract.js';
import { makeResource } from '../helpers/resources.js';

const run = promisify(execFile);
const tag = randomBytes(3).toString('hex');
const users = { sudo: `plumbs${tag}`, password: `plumbp${tag}`, none: `plumbn${tag}` };
const password = `pw-${randomBytes(9).toString('base64url')}`;
const sudoers = `/etc/sudoers.d/plumb-test-${tag}`;

async function converge<S>(s: SshSession, h: KindHandler<S, unknown, SshSession>, r: Resource<S>): Promise<{ planned: number; after: number }> {
  const actual = await h.read(s, r, opContext());
  const changes = h.diff(r, actual);
  if (changes.length > 0) await h.apply(s, r, changes, opContext(), actual);
  const after = h.diff({ ...r, lastApplied: r.spec }, await h.read(s, { ...r, lastApplied: r.spec }, { ...opContext(), afterWrite: true }));
  return { planned: changes.length, after: after.length };
}

const root = process.getuid?.() === 0;
const enabled = sshdAvailable() && root && existsSync('/usr/bin/sudo') && existsSync('/usr/sbin/visudo') && existsSync('/usr/sbin/useradd');
if (!enabled && process.env.CI) {
  describe('OpenSSH become', () => {
    it('needs root, sshd and sudo (CI installs openssh-server and sudo, and runs as root)', () => {
      throw new Error(`${SSHD_MISSING}; and sudo (apt-get install sudo), run as root`);
    });
  });
}

describe.skipIf(!enabled)('become: sudo against OpenSSH', () => {
  let sshd: OpenSshServer;
  let dir: string;
  let adm: number;
  const lines: Array<{ level: string; fields: object; msg: string }> = [];
  const sessions: SshSession[] = [];

  const target = (user: string, become: object): Target => ({
    name: 'web1',
    spec: { provider: 'ssh', address: sshd.address, port: sshd.port, user, privateKey: sshd.clientKeyRef, hostKey: sshd.hostKeyFingerprint, connectTimeout: '10s', become },
  });
  const open = async (user: string, become: object, env: Record<string, string> = {}): Promise<SshSession> => {
    const s = await sshProvider.open(target(user, become), { secrets: new SecretResolver({ env }), signal: AbortSignal.timeout(15_000), log: testLog(lines), connectTimeoutMs: 10_000 });
    sessions.push(s);
    return s;
  };

  beforeAll(async () => {
    sshd = await startOpenSsh();
    // sshd reads AuthorizedKeysFile as the logging-in user: let the throwaway users reach it (public keys only; the dir is traversable, not listable).
    chmodSync(sshd.dir, 0o711);
    chmodSync(join(sshd.dir, 'authorized_keys'), 0o644);
    chmodSync(join(sshd.dir, 'sftp.log'), 0o666); // sftp-server (run as the login user) appends its log there
    for (const u of Object.values(users)) {
      await run('useradd', ['-m', '-s', '/bin/sh', u]);
      await run('usermod', ['-p', '*', u]); // not locked (sshd refuses a '!' account without PAM), no usable password
    }
    await new Promise<void>((resolve, reject) => {
      const child = execFile('chpasswd', (err) => (err ? reject(err) : resolve()));
      child.stdin!.end(`${users.password}:${password}\n`);
    });
    const draft = join(sshd.dir, 'sudoers');
    writeFileSync(draft, `${users.sudo} ALL=(ALL) NOPASSWD: ALL\n${users.password} ALL=(ALL) ALL\n`, { mode: 0o440 });
    await run('visudo', ['-cf', draft]);
    writeFileSync(sudoers, readFileSync(draft), { mode: 0o440 });
    // Root's own directory, 0750: the login users cannot even look inside it.
    dir = `/var/tmp/plumb-become-${tag}`;
    mkdirSync(dir, { mode: 0o750 });
    adm = Number((await run('getent', ['group', 'adm'])).stdout.split(':')[2]);
  });

  afterAll(async () => {
    for (const s of sessions) await s.close();
    await sshd?.stop();
    rmSync(sudoers, { force: true });
    for (const u of Object.values(users)) await run('userdel', ['-r', u]).catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes a root-owned 0640 root:adm file the login user cannot read; a second pass writes nothing; removal works', async () => {
    const s = await open(users.sudo, { method: 'sudo' });
    const path = join(dir, 'secret.conf');
    const r = makeResource<FileSpec>('ssh.File', 'secret', { path, content: 'token = 1\n', owner: 'root', group: 'adm', mode: '0640' });
    expect(await converge(s, fileKind, r)).toEqual({ planned: 1, after: 0 });
    const st = statSync(path);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([0, adm, 0o640]);
    expect(readFileSync(path, 'utf8')).toBe('token = 1\n');
    expect(readdirSync(dir).filter((n) => n.includes('.plumb-'))).toEqual([]);
    const staging = await s.stagingDir!;
    expect(lstatSync(staging)).toMatchObject({ mode: 0o40700 });
    expect(readdirSync(staging)).toEqual([]);

    // Converged: no SFTP write, and the file is untouched (a rewrite changes the inode, chown/chmod the ctime).
    const writes = sshd.sftpWrites();
    const before = statSync(path);
    expect(await converge(s, fileKind, r)).toEqual({ planned: 0, after: 0 });
    expect(sshd.sftpWrites()).toBe(writes);
    expect([statSync(path).ino, statSync(path).ctimeMs]).toEqual([before.ino, before.ctimeMs]);

    // Content change keeps the managed owner, group and mode; a mode-only change is a chmod, not a rewrite.
    const v2 = makeResource<FileSpec>('ssh.File', 'secret', { ...r.spec, content: 'token = 2\n' });
    expect(await converge(s, fileKind, v2)).toEqual({ planned: 1, after: 0 });
    expect(readFileSync(path, 'utf8')).toBe('token = 2\n');
    const ino = statSync(path).ino;
    const v3 = makeResource<FileSpec>('ssh.File', 'secret', { ...v2.spec, mode: '0600' });
    expect(await converge(s, fileKind, v3)).toEqual({ planned: 1, after: 0 });
    expect([statSync(path).ino, statSync(path).mode & 0o7777, statSync(path).gid]).toEqual([ino, 0o600, adm]);

    await fileKind.remove!(s, v3, opContext());
    expect(existsSync(path)).toBe(false);
    expect(await fileKind.read(s, v3, opContext())).toBeUndefined();
    // Closing the session removes its (empty) staging directory.
    await s.close();
    expect(existsSync(staging)).toBe(false);
  });

  it('directories, lines and commands run as root too', async () => {
    const s = await open(users.sudo, { method: 'sudo', user: 'root' });
    const sub = join(dir, 'conf.d');
    const d = makeResource<DirectorySpec>('ssh.Directory', 'confd', { path: sub, mode: '0750', group: 'adm' });
    expect(await converge(s, directoryKind, d)).toEqual({ planned: 1, after: 0 });
    expect([statSync(sub).uid, statSync(sub).gid, statSync(sub).mode & 0o7777]).toEqual([0, adm, 0o750]);

    const conf = join(sub, 'limits.conf');
    writeFileSync(conf, '# limits\n', { mode: 0o600 });
    const l = makeResource<LineSpec>('ssh.Line', 'nofile', { path: conf, line: '* soft nofile 4096' });
    expect(await converge(s, lineKind, l)).toEqual({ planned: 1, after: 0 });
    expect(readFileSync(conf, 'utf8')).toBe('# limits\n* soft nofile 4096\n');
    expect([statSync(conf).uid, statSync(conf).mode & 0o7777]).toEqual([0, 0o600]);

    const c = makeResource<CommandSpec>('ssh.Command', 'whoami', { run: `id -u > ${sub}/whoami`, creates: `${sub}/whoami` });
    expect(await converge(s, commandKind, c)).toEqual({ planned: 1, after: 0 });
    expect(readFileSync(join(sub, 'whoami'), 'utf8')).toBe('0\n');

    // Removal of the directory waits for it to be empty, as without become.
    rmSync(conf);
    rmSync(join(sub, 'whoami'));
    await directoryKind.remove!(s, d, opContext());
    expect(existsSync(sub)).toBe(false);
  });

  it('hostile path names reach the escalated commands as exactly themselves (write, read, chmod, remove)', async () => {
    const s = await open(users.sudo, { method: 'sudo' });
    for (const name of [`-rf it's "$(touch pwned)" \`id\` *.conf`, '--', '$HOME a\tb', ' sp ace ']) {
      const path = join(dir, name);
      const r = makeResource<FileSpec>('ssh.File', 'hostile', { path, content: `${name}\n`, owner: 'root', mode: '0640' });
      expect(await converge(s, fileKind, r), name).toEqual({ planned: 1, after: 0 });
      expect(readFileSync(path, 'utf8')).toBe(`${name}\n`);
      expect(await converge(s, fileKind, makeResource<FileSpec>('ssh.File', 'hostile', { ...r.spec, mode: '0600' }))).toEqual({ planned: 1, after: 0 });
      expect(statSync(path).mode & 0o7777).toBe(0o600);
      await fileKind.remove!(s, r, opContext());
      expect(readdirSync(dir)).toEqual([]);
    }
    expect(existsSync(`/home/${users.sudo}/pwned`)).toBe(false); // the escalated sh's cwd
  });

  it('a login user without a sudoers rule fails at once with a ProviderError naming the host and what to do', async () => {
    const started = Date.now();
    const err = await open(users.none, { method: 'sudo' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(false);
    expect((err as Error).message).toMatch(new RegExp(`^ssh web1 \\(127\\.0\\.0\\.1:${sshd.port}\\): become: sudo refused to run commands as root for login user ${users.none} .*sudoers.*NOPASSWD.*become\\.password`));
    expect(Date.now() - started).toBeLessThan(10_000); // sudo -n: no prompt to wait on
  });

  it('a sudo password is fed on stdin: it works, and never reaches a log line or an error; a wrong one is refused clearly', async () => {
    const s = await open(users.password, { method: 'sudo', password: 'env:PLUMB_TEST_SUDO' }, { PLUMB_TEST_SUDO: password });
    const path = join(dir, 'pw.conf');
    const r = makeResource<FileSpec>('ssh.File', 'pw', { path, content: 'x\n', owner: 'root', mode: '0600' });
    expect(await converge(s, fileKind, r)).toEqual({ planned: 1, after: 0 });
    expect(statSync(path).uid).toBe(0);
    const failing = makeResource<CommandSpec>('ssh.Command', 'fails', { run: 'echo "$0 $*"; cat; exit 3' });
    const err = await commandKind.apply(s, failing, [{ path: '/run', before: null, after: 'x' }], opContext()).catch((e: unknown) => e);
    // The command's stdin is /dev/null: what sudo read is not there for it to print.
    expect((err as Error).message).not.toContain(password);

    const wrong = `${password}-wrong`;
    const refused = await open(users.password, { method: 'sudo', password: 'env:PLUMB_TEST_SUDO' }, { PLUMB_TEST_SUDO: wrong }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProviderError);
    expect((refused as Error).message).toMatch(/become: sudo refused .* or fix become\.password/);
    const text = JSON.stringify(lines) + String((refused as Error).message) + String((refused as Error).stack);
    for (const secret of [password, wrong]) expect(text).not.toContain(secret);
    expect(sshd.log()).not.toContain(password);
  });
});
