/**
 * Interop with real OpenSSH (Debian openssh-server): the provider contract, then
 * scenarios an operator relies on. sshd runs on 127.0.0.1 of this machine, so the
 * test checks the host's filesystem directly with node:fs.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshProvider } from '../../providers/ssh/index.js';
import type { CommandActual, CommandSpec, DirectorySpec, FileActual, FileSpec, SshSession } from '../../providers/ssh/index.js';
import { commandKind } from '../../providers/ssh/kinds/command.js';
import { directoryKind } from '../../providers/ssh/kinds/directory.js';
import { fileKind } from '../../providers/ssh/kinds/file.js';
import { gitBlobId } from '../../src/util/git-blob.js';
import {
  AuthError,
  CancelledError,
  CommandFailedError,
  HostKeyError,
  SpecError,
  TimeoutError,
  UnreachableError,
} from '../../src/errors.js';
import type { Attachment, KindHandler, Resource, Target } from '../../src/provider.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { keygen, sshdAvailable, SSHD_MISSING, startOpenSsh, type OpenSshServer } from '../helpers/openssh.js';
import { describeProviderContract, opContext, testLog } from '../helpers/provider-contract.js';
import { makeResource } from '../helpers/resources.js';

const run = promisify(execFile);
const secrets = new SecretResolver({ env: {} });

function sshTarget(sshd: OpenSshServer, extra: Record<string, unknown> = {}): Target {
  const spec: Record<string, unknown> = {
    provider: 'ssh',
    address: sshd.address,
    port: sshd.port,
    user: sshd.user,
    privateKey: sshd.clientKeyRef,
    hostKey: sshd.hostKeyFingerprint,
    connectTimeout: '10s',
    ...extra,
  };
  for (const k of Object.keys(spec)) if (spec[k] === undefined) delete spec[k];
  return { name: 'web1', spec: spec as Target['spec'] };
}

function openSession(target: Target, signal: AbortSignal = AbortSignal.timeout(15_000)): Promise<SshSession> {
  return sshProvider.open(target, { secrets, signal, log: testLog(), connectTimeoutMs: 10_000 });
}

async function converge<S>(s: SshSession, h: KindHandler<S, unknown, SshSession>, r: Resource<S>): Promise<Resource<S>> {
  const changes = h.diff(r, await h.read(s, r, opContext()));
  const applied = await h.apply(s, r, changes, opContext());
  return applied?.memo !== undefined ? { ...r, memo: applied.memo } : r;
}

async function expectConverged<S>(s: SshSession, h: KindHandler<S, unknown, SshSession>, r: Resource<S>): Promise<void> {
  expect(h.diff(r, await h.read(s, r, opContext()))).toEqual([]);
}

function attachment(path: string, bytes: Buffer, algo: 'sha1' | 'sha256' = 'sha1'): Attachment {
  return { path, oid: gitBlobId(bytes, algo), size: bytes.length, read: async () => bytes };
}

async function waitFor(check: () => boolean | Promise<boolean>, ms = 3_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** Processes from /proc (no procps needed): pid, parent pid, command line. */
function processes(): Array<{ pid: number; ppid: number; cmdline: string }> {
  const out: Array<{ pid: number; ppid: number; cmdline: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(name), ppid, cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function processRunning(pattern: string): Promise<boolean> {
  return processes().some((p) => p.cmdline.includes(pattern) && p.pid !== process.pid);
}

function killProcesses(match: (p: { pid: number; ppid: number; cmdline: string }) => boolean): void {
  for (const p of processes()) {
    if (!match(p)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const count = (text: string, re: RegExp): number => (text.match(new RegExp(re.source, 'g')) ?? []).length;

if (!sshdAvailable()) {
  if (process.env.CI) {
    describe('OpenSSH interop', () => {
      it('needs sshd (CI installs openssh-server)', () => {
        throw new Error(SSHD_MISSING);
      });
    });
  } else {
    console.warn(`skipping OpenSSH interop tests: ${SSHD_MISSING}`);
    describe.skip(`OpenSSH interop (skipped: ${SSHD_MISSING})`, () => {
      it('needs sshd', () => {});
    });
  }
} else {
  describeProviderContract('ssh against OpenSSH', async () => {
    const sshd = await startOpenSsh();
    const root = sshd.remoteRoot;
    const runsLog = join(root, 'runs.log');
    return {
      provider: sshProvider,
      target: sshTarget(sshd),
      secrets,
      cases: [
        {
          kind: 'ssh.File',
          create: makeResource<FileSpec>('ssh.File', 'contract-file', { path: `${root}/contract.txt`, content: 'hello\n', mode: '0640' }),
          update: makeResource<FileSpec>('ssh.File', 'contract-file', { path: `${root}/contract.txt`, content: 'hello, world\n', mode: '0600' }),
        },
        {
          kind: 'ssh.Directory',
          create: makeResource<DirectorySpec>('ssh.Directory', 'contract-dir', { path: `${root}/contract-dir/a/b`, mode: '0755' }),
          update: makeResource<DirectorySpec>('ssh.Directory', 'contract-dir', { path: `${root}/contract-dir/a/b`, mode: '0700' }),
        },
        {
          kind: 'ssh.Command',
          create: makeResource<CommandSpec>('ssh.Command', 'contract-guarded', {
            run: `echo ran >> ${runsLog}; touch ${root}/marker-1`,
            creates: `${root}/marker-1`,
          }),
          update: makeResource<CommandSpec>('ssh.Command', 'contract-guarded', {
            run: `echo ran >> ${runsLog}; touch ${root}/marker-2`,
            creates: `${root}/marker-2`,
          }),
        },
        {
          kind: 'ssh.Command',
          create: makeResource<CommandSpec>('ssh.Command', 'contract-once', { run: `echo once >> ${runsLog}` }),
          update: makeResource<CommandSpec>('ssh.Command', 'contract-once', { run: `echo once again >> ${runsLog}` }),
        },
      ],
      // SFTP mutations from sftp-server's log, plus command runs (each appends a line).
      writes: () => sshd.sftpWrites() + (existsSync(runsLog) ? readFileSync(runsLog, 'utf8').split('\n').filter(Boolean).length : 0),
      teardown: () => sshd.stop(),
    };
  });

  describe('ssh provider against OpenSSH', () => {
    let sshd: OpenSshServer;
    let s: SshSession;
    let root: string;

    beforeAll(async () => {
      sshd = await startOpenSsh();
      root = sshd.remoteRoot;
      s = await openSession(sshTarget(sshd));
    });
    afterAll(async () => {
      await s?.close();
      await sshd?.stop();
    });

    describe('ssh.File', () => {
      it('creates a file with content and mode, atomically, leaving no temp files', async () => {
        const r = makeResource<FileSpec>('ssh.File', 'motd', { path: `${root}/motd`, content: 'managed by plumb\n', mode: '0644' });
        const changes = fileKind.diff(r, await fileKind.read(s, r, opContext()));
        expect(changes).toEqual([{ path: '/state', before: 'absent', after: 'present', note: `create ${root}/motd` }]);
        await fileKind.apply(s, r, changes, opContext());
        expect(readFileSync(`${root}/motd`, 'utf8')).toBe('managed by plumb\n');
        expect(statSync(`${root}/motd`).mode & 0o7777).toBe(0o644);
        await expectConverged(s, fileKind, r);
        expect(readdirSync(root).filter((n) => n.includes('.plumb-'))).toEqual([]);
      });

      it('replaces changed content by rename (new inode) and keeps an unmanaged mode', async () => {
        const path = `${root}/app.conf`;
        writeFileSync(path, 'old\n', { mode: 0o640 });
        const inode = statSync(path).ino;
        const r = makeResource<FileSpec>('ssh.File', 'conf', { path, content: 'new content\n' });
        const changes = fileKind.diff(r, await fileKind.read(s, r, opContext()));
        expect(changes.map((c) => c.path)).toEqual(['/content']);
        expect(changes[0]?.note).toBe('content differs (4 bytes -> 12 bytes)');
        await fileKind.apply(s, r, changes, opContext());
        const st = statSync(path);
        expect(readFileSync(path, 'utf8')).toBe('new content\n');
        expect(st.ino).not.toBe(inode);
        expect(st.mode & 0o7777).toBe(0o640);
        expect(sshd.sftpLog()).toContain('posix-rename old');
        await expectConverged(s, fileKind, r);
      });

      it('same-size different content is found by blob id', async () => {
        const path = `${root}/same-size.txt`;
        writeFileSync(path, 'aaaa');
        const r = makeResource<FileSpec>('ssh.File', 'same', { path, content: 'bbbb' });
        const actual = (await fileKind.read(s, r, opContext())) as FileActual;
        expect(actual.contentOid).toBe(gitBlobId(Buffer.from('aaaa')));
        expect(fileKind.diff(r, actual).map((c) => c.path)).toEqual(['/content']);
        await converge(s, fileKind, r);
        expect(readFileSync(path, 'utf8')).toBe('bbbb');
      });

      it('reads the file only when the size matches', async () => {
        const path = `${root}/sized.txt`;
        writeFileSync(path, 'abc');
        const mark = sshd.sftpLog().length;
        await fileKind.read(s, makeResource<FileSpec>('ssh.File', 'sized', { path, content: 'abcd' }), opContext());
        expect(sshd.sftpLog().slice(mark)).not.toMatch(/open "[^"]*sized.txt"/);
        await fileKind.read(s, makeResource<FileSpec>('ssh.File', 'sized', { path, content: 'abc' }), opContext());
        expect(count(sshd.sftpLog().slice(mark), /open "[^"]*sized.txt" flags READ/)).toBe(1);
      });

      it('the verify after its own write trusts the renamed bytes (lstat only); every other read reads them', async () => {
        const path = `${root}/verified.txt`;
        const reads = (): number => count(sshd.sftpLog(), new RegExp(`open "${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" flags READ`));
        const r = makeResource<FileSpec>('ssh.File', 'verified', { path, content: 'verified\n', mode: '0644' });
        await converge(s, fileKind, r);
        const before = reads();
        expect(fileKind.diff(r, await fileKind.read(s, r, { ...opContext(), afterWrite: true }))).toEqual([]);
        expect(reads()).toBe(before); // verified by lstat: type, size, mode, owner
        await expectConverged(s, fileKind, r);
        await waitFor(() => reads() === before + 1);
        expect(reads()).toBe(before + 1); // a drift read hashes the bytes
        // The note is taken by the first read after the write, whichever it is: a later verify reads too.
        const r2 = { ...r, spec: { ...r.spec, content: 'verified again\n' } };
        await converge(s, fileKind, r2);
        await expectConverged(s, fileKind, r2);
        expect(fileKind.diff(r2, await fileKind.read(s, r2, { ...opContext(), afterWrite: true }))).toEqual([]);
        await waitFor(() => reads() === before + 3);
        expect(reads()).toBe(before + 3);
      });

      it('changes only the mode with setstat, without rewriting', async () => {
        const path = `${root}/mode-only.txt`;
        const r = await converge(s, fileKind, makeResource<FileSpec>('ssh.File', 'm', { path, content: 'x\n', mode: '0644' }));
        const inode = statSync(path).ino;
        const mark = sshd.sftpLog().length;
        const r2 = { ...r, spec: { ...r.spec, mode: '600' } };
        const changes = fileKind.diff(r2, await fileKind.read(s, r2, opContext()));
        expect(changes).toEqual([{ path: '/mode', before: '0644', after: '0600' }]);
        await fileKind.apply(s, r2, changes, opContext());
        expect(statSync(path).ino).toBe(inode);
        expect(statSync(path).mode & 0o7777).toBe(0o600);
        const log = sshd.sftpLog().slice(mark);
        expect(log).toMatch(/set "[^"]*mode-only.txt" mode 0600/);
        expect(log).not.toMatch(/flags \S*WRITE/);
        await expectConverged(s, fileKind, r2);
      });

      it('owner and group by name (via getent) and by numeric id', async () => {
        const path = `${root}/owned.txt`;
        const groupName = (await run('id', ['-gn'])).stdout.trim();
        const byName = makeResource<FileSpec>('ssh.File', 'owned', { path, content: 'x', owner: sshd.user, group: groupName });
        await converge(s, fileKind, byName);
        const actual = (await fileKind.read(s, byName, opContext())) as FileActual;
        expect(actual).toMatchObject({ owner: sshd.user, uid: sshd.uid, group: groupName, gid: sshd.gid });
        expect(fileKind.diff(byName, actual)).toEqual([]);
        const byId = makeResource<FileSpec>('ssh.File', 'owned', { path, content: 'x', owner: sshd.uid, group: String(sshd.gid) });
        expect(fileKind.diff(byId, actual)).toEqual([]);
        const unknown = makeResource<FileSpec>('ssh.File', 'owned', { path, content: 'x', owner: 'no-such-user-plumb' });
        const changes = fileKind.diff(unknown, actual);
        expect(changes).toEqual([{ path: '/owner', before: sshd.user, after: 'no-such-user-plumb' }]);
        await expect(fileKind.apply(s, unknown, changes, opContext())).rejects.toThrow(SpecError);
      });

      it.runIf(process.getuid?.() === 0)('as root, chowns to another user by name', async () => {
        const path = `${root}/daemon-owned.txt`;
        const r = makeResource<FileSpec>('ssh.File', 'd', { path, content: 'x', owner: 'daemon', group: 'daemon', mode: '0640' });
        await converge(s, fileKind, r);
        const st = statSync(path);
        const daemonUid = Number((await run('id', ['-u', 'daemon'])).stdout.trim());
        expect(st.uid).toBe(daemonUid);
        expect(st.mode & 0o7777).toBe(0o640);
        await expectConverged(s, fileKind, r);
        // A content change keeps the managed owner on the replacement file.
        const r2 = { ...r, spec: { ...r.spec, content: 'yy' } };
        await converge(s, fileKind, r2);
        expect(statSync(path).uid).toBe(daemonUid);
        await expectConverged(s, fileKind, r2);
      });

      it('writes a large source attachment and compares by git blob id (sha1 and sha256)', async () => {
        const big = Buffer.alloc(3 * 1024 * 1024 + 17);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
        const local = join(sshd.dir, 'big.bin');
        await writeFile(local, big);
        const gitOid = (await run('git', ['hash-object', local])).stdout.trim();
        const att = attachment('files/big.bin', big);
        expect(att.oid).toBe(gitOid);
        const r = makeResource<FileSpec>('ssh.File', 'big', { path: `${root}/big.bin`, source: 'files/big.bin' }, { attachments: { '/source': att } });
        await converge(s, fileKind, r);
        expect((await readFile(`${root}/big.bin`)).equals(big)).toBe(true);
        await expectConverged(s, fileKind, r);
        const r256 = makeResource<FileSpec>('ssh.File', 'big', { path: `${root}/big.bin`, source: 'files/big.bin' }, { attachments: { '/source': attachment('files/big.bin', big, 'sha256') } });
        const actual = (await fileKind.read(s, r256, opContext())) as FileActual;
        expect(actual.contentOid).toHaveLength(64);
        expect(fileKind.diff(r256, actual)).toEqual([]);
      });

      it('refuses a missing parent directory with a SpecError naming ssh.Directory', async () => {
        const r = makeResource<FileSpec>('ssh.File', 'orphan', { path: `${root}/no/such/dir/file`, content: 'x' });
        const changes = fileKind.diff(r, await fileKind.read(s, r, opContext()));
        await expect(fileKind.apply(s, r, changes, opContext())).rejects.toThrow(/ssh\.Directory.*dependsOn/);
      });

      it('never replaces a directory or follows a symlink', async () => {
        mkdirSync(`${root}/is-a-dir`);
        const dirRes = makeResource<FileSpec>('ssh.File', 'd', { path: `${root}/is-a-dir`, content: 'x' });
        const changes = fileKind.diff(dirRes, await fileKind.read(s, dirRes, opContext()));
        expect(changes).toMatchObject([{ path: '/type', before: 'directory', after: 'file' }]);
        await expect(fileKind.apply(s, dirRes, changes, opContext())).rejects.toThrow(SpecError);
        expect(lstatSync(`${root}/is-a-dir`).isDirectory()).toBe(true);

        writeFileSync(`${root}/link-target`, 'precious');
        symlinkSync(`${root}/link-target`, `${root}/a-link`);
        const linkRes = makeResource<FileSpec>('ssh.File', 'l', { path: `${root}/a-link`, content: 'overwritten?' });
        const linkChanges = fileKind.diff(linkRes, await fileKind.read(s, linkRes, opContext()));
        expect(linkChanges).toMatchObject([{ path: '/type', before: 'symlink' }]);
        await expect(fileKind.apply(s, linkRes, linkChanges, opContext())).rejects.toThrow(SpecError);
        expect(readFileSync(`${root}/link-target`, 'utf8')).toBe('precious');
        expect(lstatSync(`${root}/a-link`).isSymbolicLink()).toBe(true);
      });

      it('state: absent removes the file; absent again is converged; remove() of absent is fine', async () => {
        const path = `${root}/doomed.txt`;
        writeFileSync(path, 'bye');
        const r = makeResource<FileSpec>('ssh.File', 'doomed', { path, state: 'absent' });
        const changes = fileKind.diff(r, await fileKind.read(s, r, opContext()));
        expect(changes).toMatchObject([{ path: '/state', before: 'present', after: 'absent' }]);
        await fileKind.apply(s, r, changes, opContext());
        expect(existsSync(path)).toBe(false);
        await expectConverged(s, fileKind, r);
        await fileKind.remove!(s, makeResource<FileSpec>('ssh.File', 'doomed', { path, content: 'x' }), opContext());
      });

      it('an abort mid-write rejects, removes the temp file and leaves the session usable', async () => {
        const big = Buffer.alloc(64 * 1024 * 1024, 0x61);
        const path = `${root}/aborted.bin`;
        const r = makeResource<FileSpec>('ssh.File', 'aborted', { path, source: 'x.bin' }, { attachments: { '/source': attachment('x.bin', big) } });
        const changes = fileKind.diff(r, undefined);
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 100);
        const started = Date.now();
        await expect(fileKind.apply(s, r, changes, opContext(ac.signal))).rejects.toBeInstanceOf(CancelledError);
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(await waitFor(() => readdirSync(root).filter((n) => n.startsWith('.aborted.bin.plumb-')).length === 0)).toBe(true);
        expect(existsSync(path)).toBe(false);
        expect(s.alive).toBe(true);
        await converge(s, fileKind, makeResource<FileSpec>('ssh.File', 'after-abort', { path: `${root}/after-abort`, content: 'ok' }));
        expect(readFileSync(`${root}/after-abort`, 'utf8')).toBe('ok');
      });
    });

    describe('ssh.Directory', () => {
      it('creates nested directories like mkdir -p: parents 0755, leaf with its mode', async () => {
        const path = `${root}/srv/app/releases`;
        const r = makeResource<DirectorySpec>('ssh.Directory', 'rel', { path, mode: '0750', owner: sshd.user });
        await converge(s, directoryKind, r);
        expect(statSync(path).mode & 0o7777).toBe(0o750);
        expect(statSync(`${root}/srv`).mode & 0o7777).toBe(0o755);
        expect(statSync(`${root}/srv/app`).mode & 0o7777).toBe(0o755);
        await expectConverged(s, directoryKind, r);
      });

      it('removes an empty directory and refuses a non-empty one', async () => {
        const path = `${root}/rmme`;
        const r = await converge(s, directoryKind, makeResource<DirectorySpec>('ssh.Directory', 'rmme', { path }));
        writeFileSync(`${path}/keep.txt`, 'not managed by plumb');
        await expect(directoryKind.remove!(s, r, opContext())).rejects.toThrow(/not empty.*never deletes contents/);
        const absent = makeResource<DirectorySpec>('ssh.Directory', 'rmme', { path, state: 'absent' });
        const changes = directoryKind.diff(absent, await directoryKind.read(s, absent, opContext()));
        await expect(directoryKind.apply(s, absent, changes, opContext())).rejects.toThrow(SpecError);
        expect(readFileSync(`${path}/keep.txt`, 'utf8')).toBe('not managed by plumb');
        await rm(`${path}/keep.txt`);
        await directoryKind.remove!(s, r, opContext());
        expect(existsSync(path)).toBe(false);
        await directoryKind.remove!(s, r, opContext());
        await expectConverged(s, directoryKind, absent);
      });

      it('refuses to turn a file into a directory', async () => {
        writeFileSync(`${root}/plain-file`, 'x');
        const r = makeResource<DirectorySpec>('ssh.Directory', 'pf', { path: `${root}/plain-file` });
        const changes = directoryKind.diff(r, await directoryKind.read(s, r, opContext()));
        expect(changes).toMatchObject([{ path: '/type', before: 'file', after: 'directory' }]);
        await expect(directoryKind.apply(s, r, changes, opContext())).rejects.toThrow(SpecError);
      });
    });

    describe('ssh.Command', () => {
      const read = (r: Resource<CommandSpec>): Promise<CommandActual | undefined> => commandKind.read(s, r, opContext());

      it('creates: runs while the path is absent, output captured', async () => {
        const r = makeResource<CommandSpec>('ssh.Command', 'c', { run: `echo hello; echo oops >&2; touch ${root}/created`, creates: `${root}/created` });
        const changes = commandKind.diff(r, await read(r));
        expect(changes).toEqual([{ path: '/run', before: null, after: r.spec.run, note: `creates ${root}/created is absent` }]);
        const applied = await commandKind.apply(s, r, changes, opContext());
        expect(applied?.output).toContain('hello');
        expect(applied?.output).toContain('oops');
        expect(applied?.memo).toBeUndefined();
        expect(commandKind.diff(r, await read(r))).toEqual([]);
        expect(commandKind.safeToRetryAfterCrash?.(r)).toBe(true);
      });

      it('unless: converged while the check exits 0', async () => {
        const r = makeResource<CommandSpec>('ssh.Command', 'u', { run: `touch ${root}/unless-marker`, unless: `test -e ${root}/unless-marker` });
        expect(commandKind.diff(r, await read(r))).toMatchObject([{ path: '/run', note: 'unless check exited 1' }]);
        await converge(s, commandKind, r);
        expect(commandKind.diff(r, await read(r))).toEqual([]);
      });

      it('onlyIf: runs only while the check exits 0', async () => {
        const flag = `${root}/needs-run`;
        const r = makeResource<CommandSpec>('ssh.Command', 'o', { run: `rm ${flag}; echo done >> ${root}/onlyif.log`, onlyIf: `test -e ${flag}` });
        expect(await read(r)).toEqual({ pending: false, reason: 'onlyIf check exited 1' });
        writeFileSync(flag, '');
        expect(commandKind.diff(r, await read(r))).toMatchObject([{ path: '/run', note: 'onlyIf check exited 0' }]);
        await converge(s, commandKind, r);
        expect(commandKind.diff(r, await read(r))).toEqual([]);
        expect(readFileSync(`${root}/onlyif.log`, 'utf8')).toBe('done\n');
      });

      it('without a guard: runs once per spec, remembered by memo', async () => {
        const log = `${root}/once.log`;
        const r = makeResource<CommandSpec>('ssh.Command', 'once', { run: `echo v1 >> ${log}` });
        expect(commandKind.safeToRetryAfterCrash?.(r)).toBe(false);
        expect(commandKind.diff(r, await read(r))).toMatchObject([{ path: '/run', note: 'not run yet' }]);
        const ran = await converge(s, commandKind, r);
        expect(ran.memo).toMatchObject({ ranSpecHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
        expect(commandKind.diff(ran, await read(ran))).toEqual([]);
        expect(commandKind.diff(ran, await read(ran))).toEqual([]);
        const changed = { ...ran, spec: { run: `echo v2 >> ${log}` } };
        expect(commandKind.diff(changed, await read(changed))).toMatchObject([{ path: '/run', note: 'spec changed since last run' }]);
        const ran2 = await converge(s, commandKind, changed);
        expect(commandKind.diff(ran2, await read(ran2))).toEqual([]);
        expect(readFileSync(log, 'utf8')).toBe('v1\nv2\n');
      });

      it('a non-zero exit is a CommandFailedError with the code and the last stderr line', async () => {
        const r = makeResource<CommandSpec>('ssh.Command', 'fail', { run: 'echo working; echo first >&2; echo "disk full" >&2; exit 3' });
        const err = await commandKind.apply(s, r, commandKind.diff(r, undefined), opContext()).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CommandFailedError);
        expect((err as Error).message).toMatch(/exited 3: disk full$/);
        expect((err as CommandFailedError).retryable).toBe(false);
      });

      it('output is interleaved and tail-truncated to 4 KiB', async () => {
        const r = makeResource<CommandSpec>('ssh.Command', 'noisy', { run: 'seq 1 20000; echo the-end' });
        const applied = await commandKind.apply(s, r, commandKind.diff(r, undefined), opContext());
        expect(Buffer.byteLength(applied?.output ?? '')).toBeLessThanOrEqual(4096);
        expect(applied?.output).toMatch(/20000\nthe-end\n$/);
      });

      it('env values and cwd are quoted safely', async () => {
        mkdirSync(`${root}/work dir`);
        const value = `it's $HOME "quoted"; $(touch ${root}/pwned) \`id\``;
        const r = makeResource<CommandSpec>('ssh.Command', 'env', {
          run: `printf '%s|%s' "$PLUMB_V" "$(pwd)" > ${root}/env.out`,
          env: { PLUMB_V: value },
          cwd: `${root}/work dir`,
        });
        await commandKind.apply(s, r, commandKind.diff(r, undefined), opContext());
        expect(readFileSync(`${root}/env.out`, 'utf8')).toBe(`${value}|${root}/work dir`);
        expect(existsSync(`${root}/pwned`)).toBe(false);
      });

      it('an abort really kills a running command', async () => {
        const marker = `30.${Math.floor(Math.random() * 1e6)}`;
        // A list, so the shell stays the parent: the whole process group must die, not just the shell.
        const r = makeResource<CommandSpec>('ssh.Command', 'sleepy', { run: `sleep ${marker}; touch ${root}/after-sleep` });
        const cancelAfter = (ms: number): AbortSignal => {
          const ac = new AbortController();
          setTimeout(() => ac.abort(), ms);
          return ac.signal;
        };
        for (const [makeSignal, expected] of [
          [() => AbortSignal.timeout(800), TimeoutError],
          [() => cancelAfter(800), CancelledError],
        ] as const) {
          const started = Date.now();
          const pending = commandKind.apply(s, r, commandKind.diff(r, undefined), opContext(makeSignal())).catch((e: unknown) => e);
          expect(await waitFor(() => processRunning(`sleep ${marker}`), 2_000)).toBe(true);
          expect(await pending).toBeInstanceOf(expected);
          expect(Date.now() - started).toBeLessThan(5_000);
          expect(await waitFor(async () => !(await processRunning(`sleep ${marker}`)), 3_000)).toBe(true);
        }
        expect(existsSync(`${root}/after-sleep`)).toBe(false);
        expect(s.alive).toBe(true);
      });
    });

    describe('sessions', () => {
      it('reuses one TCP connection and one SFTP channel for many operations', async () => {
        const mark = sshd.log().length;
        const session = await openSession(sshTarget(sshd));
        for (let i = 0; i < 10; i++) {
          const r = makeResource<FileSpec>('ssh.File', `many-${i}`, { path: `${root}/many-${i}`, content: `${i}\n`, mode: '0644' });
          const conv = await converge(session, fileKind, r);
          await expectConverged(session, fileKind, conv);
        }
        await converge(session, commandKind, makeResource<CommandSpec>('ssh.Command', 'c', { run: 'true', unless: 'false' }));
        await session.close();
        expect(session.alive).toBe(false);
        await waitFor(() => sshd.log().slice(mark).includes('Disconnected'));
        const log = sshd.log().slice(mark);
        expect(count(log, /Connection from 127\.0\.0\.1/)).toBe(1);
        expect(count(log, /Accepted publickey/)).toBe(1);
        expect(count(log, /subsystem 'sftp'/)).toBe(1);
      });

      it('parallel ops share one session: 12 commands at once stay within MaxSessions, and ids are looked up once', async () => {
        const session = await openSession(sshTarget(sshd));
        try {
          // OpenSSH refuses an 11th channel (MaxSessions 10); the session keeps execs to EXEC_CHANNELS.
          const results = await Promise.all(Array.from({ length: 12 }, (_, i) => session.exec(`sleep 0.2; echo ${i}`, AbortSignal.timeout(30_000))));
          expect(results.map((r) => r.output.trim())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
          const mark = sshd.log().length;
          writeFileSync(join(root, 'par'), 'x');
          const files = Array.from({ length: 10 }, (_, i) => makeResource<FileSpec>('ssh.File', `par-${i}`, { path: `${root}/par`, content: '' }));
          const actual = await Promise.all(files.map((r) => fileKind.read(session, r, opContext())));
          expect(new Set(actual.map((a) => `${a?.owner}:${a?.group}`)).size).toBe(1);
          expect(actual[0]?.owner).not.toBe(String(actual[0]?.uid)); // a name: getent answered
          // One getent for uid 0 and one for gid 0, shared by the ten reads.
          await waitFor(() => count(sshd.log().slice(mark), /Starting session: command/) >= 2);
          expect(count(sshd.log().slice(mark), /Starting session: command/)).toBe(2);
        } finally {
          await session.close();
        }
      });

      it('requests issued together leave in one TCP write', async () => {
        const session = await openSession(sshTarget(sshd));
        const { Socket } = await import('node:net');
        const proto = Socket.prototype as unknown as { _write: (...a: unknown[]) => unknown; _writev: (...a: unknown[]) => unknown };
        const [write, writev] = [proto._write, proto._writev];
        let calls = 0;
        try {
          await fileKind.read(session, makeResource<FileSpec>('ssh.File', 'warm', { path: `${root}/motd`, content: '' }), opContext()); // SFTP channel open
          proto._write = function (this: unknown, ...a: unknown[]) {
            calls++;
            return write.apply(this, a);
          };
          proto._writev = function (this: unknown, ...a: unknown[]) {
            calls++;
            return writev.apply(this, a);
          };
          const files = Array.from({ length: 10 }, (_, i) => makeResource<FileSpec>('ssh.File', `burst-${i}`, { path: `${root}/absent-${i}`, content: 'x' }));
          expect(await Promise.all(files.map((r) => fileKind.read(session, r, opContext())))).toEqual(Array(10).fill(undefined));
          // Ten lstats (each its own SSH packet) reach the kernel as one write, not ten.
          expect(calls).toBe(1);
        } finally {
          proto._write = write;
          proto._writev = writev;
          await session.close();
        }
      });

      it('close() is quick, idempotent and ends alive', async () => {
        const session = await openSession(sshTarget(sshd));
        const started = Date.now();
        await session.close();
        await session.close();
        expect(Date.now() - started).toBeLessThan(2_000);
        expect(session.alive).toBe(false);
        await expect(fileKind.read(session, makeResource<FileSpec>('ssh.File', 'x', { path: `${root}/motd`, content: '' }), opContext())).rejects.toMatchObject({
          code: 'PLUMB_SESSION_LOST',
          retryable: true,
        });
      });

      it('a refused key is an AuthError; a closed port is a retryable UnreachableError', async () => {
        const otherKey = join(sshd.dir, 'stranger');
        await keygen(otherKey);
        const err = await openSession(sshTarget(sshd, { privateKey: `file:${otherKey}` })).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AuthError);
        expect((err as AuthError).retryable).toBe(false);
        expect((err as Error).message).not.toContain('BEGIN');

        const closed = await openSession(sshTarget(sshd, { port: 1 })).catch((e: unknown) => e);
        expect(closed).toBeInstanceOf(UnreachableError);
        expect((closed as UnreachableError).retryable).toBe(true);
      });
    });

    describe('host keys', () => {
      let khDir: string;
      beforeAll(async () => {
        khDir = await mkdtemp(join(tmpdir(), 'plumb-kh-'));
      });
      afterAll(async () => {
        await rm(khDir, { recursive: true, force: true });
      });
      const hostPart = (): string => `[127.0.0.1]:${sshd.port}`;
      const keyPart = (): string => sshd.hostPublicKeyLine.split(/\s+/).slice(0, 2).join(' ');

      it('a wrong pinned key is refused before authentication', async () => {
        const wrong = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
        const mark = sshd.log().length;
        const err = await openSession(sshTarget(sshd, { hostKey: wrong })).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(HostKeyError);
        const message = (err as Error).message;
        expect(message).toContain('web1');
        expect(message).toContain(wrong);
        expect(message).toContain(sshd.hostKeyFingerprint);
        await waitFor(() => /Connection (closed|reset)|disconnect/i.test(sshd.log().slice(mark)));
        const log = sshd.log().slice(mark);
        expect(log).toMatch(/Connection from 127\.0\.0\.1/);
        expect(log).not.toMatch(/Accepted|Failed|Postponed|publickey|userauth|Invalid user/i);
      });

      it('known_hosts: [host]:port, comma lists and hashed entries are accepted', async () => {
        const variants: Record<string, string> = {
          plain: `# comment\n\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n${hostPart()} ${keyPart()}\n`,
          list: `web1.example,${hostPart()},10.9.9.9 ${keyPart()} some comment\n`,
          wildcard: `[127.0.0.*]:${sshd.port} ${keyPart()}\n`,
        };
        for (const [name, text] of Object.entries(variants)) {
          const file = join(khDir, name);
          await writeFile(file, text);
          const session = await openSession(sshTarget(sshd, { hostKey: undefined, knownHosts: file }));
          expect(session.alive, name).toBe(true);
          await session.close();
        }
        const hashedFile = join(khDir, 'hashed');
        await writeFile(hashedFile, `${hostPart()} ${keyPart()}\n`);
        await run('ssh-keygen', ['-H', '-f', hashedFile]);
        const hashed = await readFile(hashedFile, 'utf8');
        expect(hashed).toMatch(/^\|1\|/);
        const session = await openSession(sshTarget(sshd, { hostKey: undefined, knownHosts: hashedFile }));
        await session.close();
      });

      it('known_hosts: a changed, revoked or missing key is refused', async () => {
        const otherKey = join(khDir, 'other_host');
        await keygen(otherKey);
        const otherPart = (await readFile(`${otherKey}.pub`, 'utf8')).split(/\s+/).slice(0, 2).join(' ');
        const cases: Record<string, [string, RegExp]> = {
          changed: [`${hostPart()} ${otherPart}\n`, /is not the key/],
          revoked: [`${hostPart()} ${keyPart()}\n@revoked ${hostPart()} ${keyPart()}\n`, /@revoked/],
          unknown: [`somewhere.else ${keyPart()}\n`, /no key for/],
          'cert-authority only': [`@cert-authority ${hostPart()} ${keyPart()}\n`, /no key for/],
          'port 22 entry does not match another port': [`127.0.0.1 ${keyPart()}\n`, /no key for/],
        };
        for (const [name, [text, reason]] of Object.entries(cases)) {
          const file = join(khDir, name.replace(/\W+/g, '-'));
          await writeFile(file, text);
          const err = await openSession(sshTarget(sshd, { hostKey: undefined, knownHosts: file })).catch((e: unknown) => e);
          expect(err, name).toBeInstanceOf(HostKeyError);
          expect((err as Error).message, name).toMatch(reason);
          expect((err as Error).message, name).toContain(sshd.hostKeyFingerprint);
        }
      });
    });
  });

  describe('ssh provider against OpenSSH with Subsystem sftp internal-sftp', () => {
    let sshd: OpenSshServer;
    beforeAll(async () => {
      sshd = await startOpenSsh({ sftp: 'internal' });
    });
    afterAll(async () => {
      await sshd?.stop();
    });

    it('converges files and directories', async () => {
      const s = await openSession(sshTarget(sshd));
      try {
        const dir = makeResource<DirectorySpec>('ssh.Directory', 'etc', { path: `${sshd.remoteRoot}/etc/plumb`, mode: '0700' });
        const file = makeResource<FileSpec>('ssh.File', 'conf', { path: `${sshd.remoteRoot}/etc/plumb/plumb.conf`, content: 'a = 1\n', mode: '0600' });
        for (const [h, r] of [[directoryKind, dir], [fileKind, file]] as const) {
          await converge(s, h as KindHandler<unknown, unknown, SshSession>, r);
          await expectConverged(s, h as KindHandler<unknown, unknown, SshSession>, r);
        }
        expect(readFileSync(file.spec.path, 'utf8')).toBe('a = 1\n');
        expect(statSync(dir.spec.path).mode & 0o7777).toBe(0o700);
        await fileKind.remove!(s, file, opContext());
        await directoryKind.remove!(s, dir, opContext());
        expect(existsSync(dir.spec.path)).toBe(false);
      } finally {
        await s.close();
      }
    });

    it('a connection lost mid-operation is a retryable SessionLostError and the session reports dead', async () => {
      const s = await openSession(sshTarget(sshd));
      const r = makeResource<CommandSpec>('ssh.Command', 'long', { run: 'sleep 20.4242' });
      const pending = commandKind.apply(s, r, commandKind.diff(r, undefined), opContext()).catch((e: unknown) => e);
      expect(await waitFor(() => processRunning('sleep 20.4242'), 3_000)).toBe(true);
      // Kill this server's per-connection processes (children of the listener we started).
      killProcesses((p) => p.ppid === sshd.pid);
      const err = await pending;
      expect(err).toMatchObject({ code: 'PLUMB_SESSION_LOST', retryable: true });
      expect(s.alive).toBe(false);
      await expect(fileKind.read(s, makeResource<FileSpec>('ssh.File', 'f', { path: '/x', content: '' }), opContext())).rejects.toMatchObject({
        code: 'PLUMB_SESSION_LOST',
      });
      await s.close();
      // The orphaned command survives its connection (sshd does not kill it): end it by pid.
      killProcesses((p) => p.cmdline === 'sleep 20.4242');
    });
  });
}
