/**
 * Small remote helpers over one SshSession: SFTP calls with AbortSignal and typed
 * errors, atomic writes, git blob ids of remote files, uid/gid names via getent.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import { PlumbError, ProviderError, SessionLostError, SpecError } from '../../src/errors.js';
import { raceAbort, type Json, type OpContext } from '../../src/provider.js';
import { redactText } from '../../src/secrets/redact.js';
import { blobHasher } from '../../src/util/git-blob.js';
import { shellQuote } from './quote.js';
import type { Done, ExecOptions, ExecResult, SshSession } from './session.js';

const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;
const SFTP_FAILURE = 4;
const CHUNK = 256 * 1024; // ssh2 splits further to the server's limits@openssh.com sizes
const CLEANUP_TIMEOUT_MS = 5_000;

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

export interface RemoteStat {
  type: FileType;
  size: number;
  /** Permission bits only (07777). */
  mode: number;
  uid: number;
  gid: number;
}

function sftpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Maps a raw ssh2 SFTP error to the catalogue; a missing status code means the channel went away. */
function sftpError(s: SshSession, err: unknown, what: string, path: string): PlumbError {
  if (err instanceof PlumbError) return err;
  const code = sftpCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === undefined) return new SessionLostError(`ssh ${s.targetName}: sftp channel lost during ${what} ${path}`, { cause: err });
  if (code === SFTP_PERMISSION_DENIED) return new ProviderError(`ssh ${s.targetName}: permission denied: ${what} ${path} as user ${s.user}`, { cause: err });
  if (code === SFTP_NO_SUCH_FILE) return new ProviderError(`ssh ${s.targetName}: ${what} ${path}: no such file or directory`, { cause: err });
  return new ProviderError(`ssh ${s.targetName}: ${what} ${path} failed (${message})`, { cause: err });
}

/** One SFTP request as `op path`, its failure mapped by sftpError. */
function sftpOp<T>(s: SshSession, signal: AbortSignal, op: string, path: string, call: (sftp: SFTPWrapper, done: Done<T>) => void): Promise<T> {
  return s.sftpCall<T>(signal, `${op} ${path}`, call).catch((err: unknown) => {
    throw sftpError(s, err, op, path);
  });
}

function toRemoteStat(st: Stats): RemoteStat {
  const fmt = st.mode & 0o170000;
  const type: FileType = fmt === 0o100000 ? 'file' : fmt === 0o040000 ? 'directory' : fmt === 0o120000 ? 'symlink' : 'other';
  return { type, size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

async function statCall(s: SshSession, path: string, signal: AbortSignal, follow: boolean): Promise<RemoteStat | undefined> {
  const what = follow ? 'stat' : 'lstat';
  try {
    const st = await s.sftpCall<Stats>(signal, `${what} ${path}`, (sftp, done) =>
      follow ? sftp.stat(path, (err, stats) => done(err, stats)) : sftp.lstat(path, (err, stats) => done(err, stats)),
    );
    return toRemoteStat(st);
  } catch (err) {
    if (sftpCode(err) === SFTP_NO_SUCH_FILE) return undefined;
    // A path the login user cannot reach (a 0750 parent): the become user stats it.
    if (s.become && sftpCode(err) === SFTP_PERMISSION_DENIED) return escalatedStat(s, path, follow, signal);
    throw sftpError(s, err, what, path);
  }
}

// ---- under become: the file system through the escalated exec -----------------------------------

/** Runs an escalated file-system command; a non-zero exit is a ProviderError naming the host, the path and what the tool said. */
async function escalatedRun(s: SshSession, what: string, path: string, command: string, signal: AbortSignal, options: ExecOptions = {}): Promise<ExecResult> {
  const res = await s.exec(`LC_ALL=C; export LC_ALL; ${command}`, signal, { maxOutput: 16 * 1024, ...options });
  if (res.code !== 0) {
    const said = redactText(res.stderr).trim().split('\n').pop() ?? '';
    const exit = res.code !== null ? `exit ${res.code}` : `signal ${res.signal ?? 'unknown'}`;
    throw new ProviderError(`ssh ${s.targetName}: ${what} ${path} as ${s.become?.user ?? s.user} (${s.become?.method ?? 'login'}) failed (${exit}${said ? `: ${said}` : ''})`);
  }
  return res;
}

async function escalatedStat(s: SshSession, path: string, follow: boolean, signal: AbortSignal): Promise<RemoteStat | undefined> {
  const p = shellQuote(path);
  const exists = follow ? `[ -e ${p} ]` : `{ [ -e ${p} ] || [ -L ${p} ]; }`;
  const res = await escalatedRun(s, follow ? 'stat' : 'lstat', path, `if ${exists}; then stat ${follow ? '-L ' : ''}-c '%f %s %u %g' -- ${p}; else echo plumb-absent; fi`, signal);
  const line = res.output.trim().split('\n').pop() ?? '';
  if (line === 'plumb-absent') return undefined;
  const m = /^([0-9a-f]+) (\d+) (\d+) (\d+)$/.exec(line);
  if (!m) throw new ProviderError(`ssh ${s.targetName}: stat ${path} printed ${JSON.stringify(line.slice(0, 80))}, not "mode size uid gid"`);
  const raw = parseInt(m[1]!, 16);
  const fmt = raw & 0o170000;
  const type: FileType = fmt === 0o100000 ? 'file' : fmt === 0o040000 ? 'directory' : fmt === 0o120000 ? 'symlink' : 'other';
  return { type, size: Number(m[2]), mode: raw & 0o7777, uid: Number(m[3]), gid: Number(m[4]) };
}

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** `chown` (then `chmod`: chown may clear setuid bits) as one escalated command line. */
function ownershipCommand(path: string, attrs: { uid?: number; gid?: number; mode?: number }, current: { uid: number; gid: number }): string {
  const p = shellQuote(path);
  const steps: string[] = [];
  if (attrs.uid !== undefined || attrs.gid !== undefined) steps.push(`chown -h ${shellQuote(`${attrs.uid ?? current.uid}:${attrs.gid ?? current.gid}`)} -- ${p}`);
  if (attrs.mode !== undefined) steps.push(`chmod ${shellQuote(octal(attrs.mode))} -- ${p}`);
  return steps.join(' && ');
}

/** lstat: never follows a symlink. Absent → undefined. */
export function lstat(s: SshSession, path: string, signal: AbortSignal): Promise<RemoteStat | undefined> {
  return statCall(s, path, signal, false);
}

/** stat: follows symlinks (for parents and `creates` guards). Absent or dangling → undefined. */
export function stat(s: SshSession, path: string, signal: AbortSignal): Promise<RemoteStat | undefined> {
  return statCall(s, path, signal, true);
}

/** chown then chmod: chown may clear setuid/setgid bits, so the mode goes last. */
export async function setAttributes(
  s: SshSession,
  path: string,
  attrs: { uid?: number; gid?: number; mode?: number },
  current: RemoteStat,
  signal: AbortSignal,
): Promise<void> {
  if (s.become) {
    const command = ownershipCommand(path, attrs, current);
    if (command !== '') await escalatedRun(s, 'chown/chmod', path, command, signal);
    return;
  }
  if (attrs.uid !== undefined || attrs.gid !== undefined) {
    const owner = { uid: attrs.uid ?? current.uid, gid: attrs.gid ?? current.gid };
    await sftpOp<void>(s, signal, 'chown', path, (sftp, done) => sftp.setstat(path, owner, (err) => done(err)));
  }
  if (attrs.mode !== undefined) {
    const mode = attrs.mode;
    await sftpOp<void>(s, signal, 'chmod', path, (sftp, done) => sftp.setstat(path, { mode }, (err) => done(err)));
  }
}

export async function unlink(s: SshSession, path: string, signal: AbortSignal): Promise<void> {
  if (s.become) {
    const p = shellQuote(path);
    // Like SFTP remove: never a directory (rm without -r refuses one), absent is success.
    await escalatedRun(s, 'remove', path, `if [ -e ${p} ] || [ -L ${p} ]; then rm -f -- ${p}; fi`, signal);
    return;
  }
  try {
    await s.sftpCall<void>(signal, `remove ${path}`, (sftp, done) => sftp.unlink(path, (err) => done(err)));
  } catch (err) {
    if (sftpCode(err) === SFTP_NO_SUCH_FILE) return;
    throw sftpError(s, err, 'remove', path);
  }
}

export async function mkdir(s: SshSession, path: string, mode: number, signal: AbortSignal): Promise<void> {
  if (s.become) {
    const p = shellQuote(path);
    // Created meanwhile by someone else is fine as long as it is a directory.
    await escalatedRun(s, 'mkdir', path, `if [ -d ${p} ] && [ ! -L ${p} ]; then exit 0; fi; mkdir -m ${shellQuote(octal(mode))} -- ${p}`, signal);
    return;
  }
  try {
    await s.sftpCall<void>(signal, `mkdir ${path}`, (sftp, done) => sftp.mkdir(path, { mode }, (err) => done(err)));
  } catch (err) {
    // Created meanwhile by someone else is fine as long as it is a directory.
    if (sftpCode(err) === SFTP_FAILURE && (await lstat(s, path, signal))?.type === 'directory') return;
    throw sftpError(s, err, 'mkdir', path);
  }
}

/** rmdir; a non-empty directory → `{ notEmpty: n }` (n entries). Absent is success. */
export async function rmdir(s: SshSession, path: string, signal: AbortSignal): Promise<{ notEmpty?: number }> {
  if (s.become) {
    const p = shellQuote(path);
    const res = await escalatedRun(
      s,
      'rmdir',
      path,
      `if [ ! -e ${p} ] && [ ! -L ${p} ]; then exit 0; fi; rmdir -- ${p} 2>/dev/null && exit 0; if [ -d ${p} ] && [ ! -L ${p} ]; then n=$(ls -A -- ${p} | wc -l); [ "$n" -gt 0 ] && { echo "plumb-not-empty:$n"; exit 0; }; fi; rmdir -- ${p}`,
      signal,
    );
    const m = /plumb-not-empty:\s*(\d+)/.exec(res.output);
    return m ? { notEmpty: Number(m[1]) } : {};
  }
  try {
    await s.sftpCall<void>(signal, `rmdir ${path}`, (sftp, done) => sftp.rmdir(path, (err) => done(err)));
    return {};
  } catch (err) {
    const code = sftpCode(err);
    if (code === SFTP_NO_SUCH_FILE) return {};
    if (code === SFTP_FAILURE) {
      const entries = (await readDirNames(s, path, signal)).length;
      if (entries > 0) return { notEmpty: entries };
    }
    throw sftpError(s, err, 'rmdir', path);
  }
}

async function closeQuietly(s: SshSession, handle: Buffer, signal: AbortSignal): Promise<void> {
  if (signal.aborted || !s.alive) return; // an aborted call closed the channel, which freed the handle
  await s.sftpCall<void>(signal, 'close', (sftp, done) => sftp.close(handle, (err) => done(err))).catch(() => {});
}

/**
 * Reads a remote file from the start, handing each chunk to `take` (only for the
 * call: the buffer is reused) with the bytes read so far, until the end of the
 * file or until `take` returns false. The handle is closed either way.
 */
async function readChunks(s: SshSession, path: string, limit: number, signal: AbortSignal, take: (chunk: Buffer, read: number) => boolean): Promise<void> {
  let handle: Buffer;
  try {
    handle = await s.sftpCall<Buffer>(signal, `open ${path}`, (sftp, done) => sftp.open(path, 'r', (err, h) => done(err, h)));
  } catch (err) {
    // A file only the become user may read (0640 root:adm): read through the escalated exec, at most `limit` bytes.
    if (s.become && sftpCode(err) === SFTP_PERMISSION_DENIED) return escalatedRead(s, path, limit, signal, take);
    throw sftpError(s, err, 'open', path);
  }
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; ) {
      const at = pos;
      const n = await sftpOp<number>(s, signal, 'read', path, (sftp, done) => sftp.read(handle, buf, 0, CHUNK, at, (err, bytesRead) => done(err, bytesRead)));
      if (n === 0) return;
      pos += n;
      if (!take(buf.subarray(0, n), pos)) return;
    }
  } finally {
    await closeQuietly(s, handle, signal);
  }
}

async function escalatedRead(s: SshSession, path: string, limit: number, signal: AbortSignal, take: (chunk: Buffer, read: number) => boolean): Promise<void> {
  let read = 0;
  let taking = true;
  await escalatedRun(s, 'read', path, `head -c ${limit} -- ${shellQuote(path)}`, signal, {
    maxOutput: 4096,
    onStdout: (chunk) => {
      if (!taking || chunk.length === 0) return;
      read += chunk.length;
      taking = take(chunk, read);
    },
  });
}

/**
 * Streams a remote file through the hash without keeping it. `size` is the lstat
 * size; if the file changes while read, the id will not match and that is drift.
 */
export async function remoteBlobId(s: SshSession, path: string, size: number, algo: 'sha1' | 'sha256', signal: AbortSignal): Promise<string> {
  const hash = blobHasher(size, algo);
  await readChunks(s, path, size + 1, signal, (chunk, read) => {
    hash.update(chunk);
    return read <= size; // grown meanwhile: the id cannot match anyway
  });
  return hash.digest('hex');
}

/**
 * A whole remote file (a config file another program owns, edited line by line).
 * Larger than `max` bytes is refused rather than read: such a file is not one to edit in memory.
 */
export async function readRemoteFile(s: SshSession, path: string, size: number, max: number, signal: AbortSignal): Promise<Buffer> {
  if (size > max) throw new ProviderError(`ssh ${s.targetName}: ${path} is ${size} bytes, more than the ${max} bytes Plumb edits in place`);
  const chunks: Buffer[] = [];
  let total = 0;
  await readChunks(s, path, max + 1, signal, (chunk, read) => {
    chunks.push(Buffer.from(chunk));
    total = read;
    return read <= max;
  });
  if (total > max) throw new ProviderError(`ssh ${s.targetName}: ${path} grew past ${max} bytes while it was read`);
  return Buffer.concat(chunks);
}

/** Bytes to write: a buffer in memory, or a producer (attachments are read only when a write is due). */
export type Content = Buffer | (() => Promise<Buffer>);

/** A write's temporary files, journaled before they exist: beside the target, and (under become) the staged copy. */
export interface TempProgress {
  tmp: string;
  staged?: string;
}

export type TempJournal = (progress: TempProgress | null) => void | Promise<void>;

/** The op's checkpoint as writeFileAtomic's journal; none in plan mode. */
export function tempJournal(ctx: OpContext): TempJournal | undefined {
  const checkpoint = ctx.checkpoint;
  return checkpoint ? (progress) => checkpoint(progress as Json) : undefined;
}

/**
 * The per-session private directory SFTP stages files in under become: made by
 * the become user with mktemp -d (0700), then given to the login user, once per
 * session. A become user other than root cannot enter another user's 0700
 * directory, so it is 0711 then and staged files 0644 (names are random).
 */
function stagingDir(s: SshSession, signal: AbortSignal): Promise<string> {
  if (!s.stagingDir) {
    const ids = s.loginIds;
    if (!ids) return Promise.reject(new ProviderError(`ssh ${s.targetName}: become: the login user's ids are not known (the session was not probed)`));
    const mode = s.become?.user === 'root' ? '0700' : '0711';
    const making = escalatedRun(
      s,
      'mktemp -d',
      '/tmp/plumb-stage.*',
      `d=$(mktemp -d /tmp/plumb-stage.XXXXXXXXXX) && chown ${shellQuote(`${ids.uid}:${ids.gid}`)} -- "$d" && chmod ${mode} -- "$d" && printf 'plumb-stage:%s\\n' "$d"`,
      signal,
    ).then((res) => {
      const m = /^plumb-stage:(\/\S+)$/m.exec(res.output);
      if (!m) throw new ProviderError(`ssh ${s.targetName}: mktemp -d printed no directory`);
      return m[1]!;
    });
    s.stagingDir = making;
    making.catch(() => {
      if (s.stagingDir === making) s.stagingDir = undefined;
    });
  }
  return s.stagingDir;
}

/**
 * writeFileAtomic under become. SFTP (the login user) writes the bytes to a
 * staged file in the session's private directory; then one escalated command
 * copies it to the temp name beside the target (umask 077, so no one reads it
 * early), sets owner, group and mode, and renames it over the target (same file
 * system: atomic). Both names are journaled before either exists; on failure
 * both are removed.
 */
async function writeFileEscalated(
  s: SshSession,
  path: string,
  tmp: string,
  content: Content,
  attrs: { mode: number; uid?: number; gid?: number },
  signal: AbortSignal,
  journal?: TempJournal,
): Promise<void> {
  const dir = posix.dirname(path);
  const staged = posix.join(await stagingDir(s, signal), posix.basename(tmp).slice(-12));
  await journal?.({ tmp, staged });
  let handle: Buffer | undefined;
  try {
    handle = await sftpOp<Buffer>(s, signal, 'create', staged, (sftp, done) => sftp.open(staged, 'wx', { mode: s.become?.user === 'root' ? 0o600 : 0o644 }, (err, h) => done(err, h)));
    const bytes = typeof content === 'function' ? await content() : content;
    const h = handle;
    for (let pos = 0; pos < bytes.length; pos += CHUNK) {
      const at = pos;
      const len = Math.min(CHUNK, bytes.length - pos);
      await sftpOp<void>(s, signal, 'write', staged, (sftp, done) => sftp.write(h, bytes, at, len, at, (err) => done(err)));
    }
    await sftpOp<void>(s, signal, 'close', staged, (sftp, done) => sftp.close(h, (err) => done(err)));
    handle = undefined;
    const [d, t, st, p] = [dir, tmp, staged, path].map(shellQuote) as [string, string, string, string];
    // `uid` alone keeps the group (`uid:` would take the user's login group), `:gid` alone keeps the owner.
    const ids = attrs.uid !== undefined ? `${attrs.uid}${attrs.gid !== undefined ? `:${attrs.gid}` : ''}` : attrs.gid !== undefined ? `:${attrs.gid}` : undefined;
    const owner = ids !== undefined ? `chown -h ${shellQuote(ids)} -- ${t} && ` : '';
    const script = [
      `[ -d ${d} ] || { echo "plumb-no-parent" >&2; exit 3; }`,
      `umask 077`,
      `set -C`,
      `cat -- ${st} > ${t} || exit 1`,
      `if ${owner}chmod ${shellQuote(octal(attrs.mode))} -- ${t} && mv -f -- ${t} ${p}; then rm -f -- ${st}; else rm -f -- ${t}; exit 1; fi`,
    ].join('\n');
    const res = await s.exec(`LC_ALL=C; export LC_ALL; ${script}`, signal, { maxOutput: 16 * 1024 });
    if (res.code === 3) throw new SpecError(`${path}: the parent directory ${dir} does not exist on ${s.targetName}; add an ssh.Directory for it and list it in dependsOn`);
    if (res.code !== 0) {
      const said = redactText(res.stderr).trim().split('\n').pop() ?? '';
      throw new ProviderError(`ssh ${s.targetName}: moving the staged file into place at ${path} as ${s.become?.user} (${s.become?.method}) failed (exit ${res.code ?? res.signal ?? 'unknown'}${said ? `: ${said}` : ''})`);
    }
    await journal?.(null);
  } catch (err) {
    if (await removeEscalatedTemps(s, tmp, staged, handle)) await journal?.(null);
    throw err;
  }
}

/** Best effort on a fresh deadline: the staged copy (SFTP, the login user's) and the temp beside the target (escalated). True when both are gone. */
async function removeEscalatedTemps(s: SshSession, tmp: string, staged: string, handle: Buffer | undefined): Promise<boolean> {
  if (!s.alive) return false;
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
  if (handle) await closeQuietly(s, handle, signal);
  try {
    await removeStaged(s, staged, signal);
    await unlink(s, tmp, signal);
    return true;
  } catch (err) {
    s.log.warn({ path: tmp, err: err instanceof Error ? err.message : String(err) }, 'could not remove temporary file; the next run removes it');
    return false;
  }
}

/** A staged file of an earlier session: removed over SFTP as the login user who wrote it; absent is fine. */
async function removeStaged(s: SshSession, staged: string, signal: AbortSignal): Promise<void> {
  try {
    await s.sftpCall<void>(signal, `remove ${staged}`, (sftp, done) => sftp.unlink(staged, (err) => done(err)));
  } catch (err) {
    if (sftpCode(err) === SFTP_NO_SUCH_FILE) return;
    throw sftpError(s, err, 'remove', staged);
  }
}

/**
 * Writes `.<basename>.plumb-<random>` beside the target with the final mode and
 * owner, then renames it over the target (posix-rename@openssh.com: atomic). The
 * temp file is removed on any failure or abort.
 */
export async function writeFileAtomic(
  s: SshSession,
  path: string,
  content: Content,
  attrs: { mode: number; uid?: number; gid?: number },
  signal: AbortSignal,
  journal?: TempJournal,
): Promise<void> {
  const dir = posix.dirname(path);
  const tmp = posix.join(dir, `.${posix.basename(path)}.plumb-${randomBytes(6).toString('hex')}`);
  if (s.become) return writeFileEscalated(s, path, tmp, content, attrs, signal, journal);
  // Journaled (durably) before it exists: a kill -9 from here on leaves a name the next run removes (KindHandler.cleanup).
  await journal?.({ tmp });
  let handle: Buffer | undefined;
  try {
    handle = await s.sftpCall<Buffer>(signal, `create ${tmp}`, (sftp, done) => sftp.open(tmp, 'wx', { mode: 0o600 }, (err, h) => done(err, h)));
  } catch (err) {
    if (sftpCode(err) === SFTP_NO_SUCH_FILE) {
      throw new SpecError(`${path}: the parent directory ${dir} does not exist on ${s.targetName}; add an ssh.Directory for it and list it in dependsOn`);
    }
    throw sftpError(s, err, 'create', tmp);
  }
  try {
    const bytes = typeof content === 'function' ? await content() : content;
    const h = handle;
    for (let pos = 0; pos < bytes.length; pos += CHUNK) {
      const at = pos;
      const len = Math.min(CHUNK, bytes.length - pos);
      await sftpOp<void>(s, signal, 'write', tmp, (sftp, done) => sftp.write(h, bytes, at, len, at, (err) => done(err)));
    }
    if (attrs.uid !== undefined || attrs.gid !== undefined) {
      const st = await sftpOp<Stats>(s, signal, 'fstat', tmp, (sftp, done) => sftp.fstat(h, (err, stats) => done(err, stats)));
      const owner = { uid: attrs.uid ?? st.uid, gid: attrs.gid ?? st.gid };
      if (owner.uid !== st.uid || owner.gid !== st.gid) {
        await sftpOp<void>(s, signal, 'chown', tmp, (sftp, done) => sftp.fsetstat(h, owner, (err) => done(err)));
      }
    }
    // After chown (which can clear setuid bits) and explicit, so the server's umask does not apply.
    await sftpOp<void>(s, signal, 'chmod', tmp, (sftp, done) => sftp.fsetstat(h, { mode: attrs.mode }, (err) => done(err)));
    await sftpOp<void>(s, signal, 'close', tmp, (sftp, done) => sftp.close(h, (err) => done(err)));
    handle = undefined;
    await renameOver(s, tmp, path, signal);
    await journal?.(null);
  } catch (err) {
    if (await removeTemp(s, tmp, handle)) await journal?.(null);
    throw err;
  }
}

/**
 * KindHandler.cleanup for kinds that write through writeFileAtomic with a
 * journal: removes the temporary file a write journaled and never finished
 * (a kill -9 mid-write). True when it is gone.
 */
export async function removeJournaledTemp(s: SshSession, id: string, progress: unknown, signal: AbortSignal): Promise<boolean> {
  const p = progress !== null && typeof progress === 'object' ? (progress as { tmp?: unknown; staged?: unknown }) : {};
  const tmp = p.tmp;
  if (typeof tmp !== 'string' || !/\.plumb-[0-9a-f]{12}$/.test(tmp)) return false;
  // The staged copy of a write under become (in /tmp/plumb-stage.*, named by the same 12 hex digits).
  if (typeof p.staged === 'string' && /^\/tmp\/plumb-stage\.[A-Za-z0-9]+\/[0-9a-f]{12}$/.test(p.staged)) await removeStaged(s, p.staged, signal);
  await unlink(s, tmp, signal);
  s.log.info({ resource: id, path: tmp }, 'removed a temporary file an interrupted write left behind');
  return true;
}

/** Plumb's temporary files for `path` (`.<basename>.plumb-<12 hex>` beside it), as writeFileAtomic names them. */
export function isTempOf(path: string, candidate: string): boolean {
  const base = posix.basename(path);
  const name = posix.basename(candidate);
  return posix.dirname(candidate) === posix.dirname(path) && name.startsWith(`.${base}.plumb-`) && /^[0-9a-f]{12}$/.test(name.slice(base.length + 8));
}

/** Names in a directory (SFTP readdir until EOF), `.` and `..` left out. */
export async function readDirNames(s: SshSession, dir: string, signal: AbortSignal): Promise<string[]> {
  let handle: Buffer;
  try {
    handle = await s.sftpCall<Buffer>(signal, `opendir ${dir}`, (sftp, done) => sftp.opendir(dir, (err, h) => done(err, h)));
  } catch (err) {
    if (s.become && sftpCode(err) === SFTP_PERMISSION_DENIED) return escalatedDirNames(s, dir, signal);
    throw sftpError(s, err, 'opendir', dir);
  }
  const names: string[] = [];
  try {
    for (;;) {
      const list = await s.sftpCall<unknown[] | false>(signal, `readdir ${dir}`, (sftp, done) =>
        sftp.readdir(handle, (err, l) => (err && sftpCode(err) === 1 ? done(null, false) : done(err, l as unknown[]))),
      ).catch((err: unknown) => {
        throw sftpError(s, err, 'readdir', dir);
      });
      if (!list) return names;
      for (const e of list as { filename: string }[]) if (e.filename !== '.' && e.filename !== '..') names.push(e.filename);
    }
  } finally {
    await closeQuietly(s, handle, signal);
  }
}

/** Names NUL-separated (a name may hold a newline), globs that match nothing left out. */
async function escalatedDirNames(s: SshSession, dir: string, signal: AbortSignal): Promise<string[]> {
  const chunks: Buffer[] = [];
  await escalatedRun(s, 'readdir', dir, `cd -- ${shellQuote(dir)} && for f in * .[!.]* ..?*; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\0' "$f"; fi; done`, signal, {
    maxOutput: 4096,
    onStdout: (c) => chunks.push(Buffer.from(c)),
  });
  return Buffer.concat(chunks).toString('utf8').split('\0').filter((n) => n !== '');
}

async function renameOver(s: SshSession, from: string, to: string, signal: AbortSignal): Promise<void> {
  let atomic = true;
  try {
    await s.sftpCall<void>(signal, `rename ${to}`, (sftp, done) => {
      try {
        sftp.ext_openssh_rename(from, to, (err) => done(err));
      } catch {
        // ssh2 throws synchronously when the server lacks posix-rename@openssh.com
        atomic = false;
        sftp.rename(from, to, (err) => done(err));
      }
    });
  } catch (err) {
    if (atomic || sftpCode(err) !== SFTP_FAILURE) throw sftpError(s, err, 'rename', to);
    // SFTPv3 rename refuses to replace: without the extension there is no atomic way, so unlink first.
    await unlink(s, to, signal);
    await sftpOp<void>(s, signal, 'rename', to, (sftp, done) => sftp.rename(from, to, (e) => done(e)));
  }
}

/** Best effort, on a fresh deadline: the caller's signal may be the reason we are cleaning up. True when it is gone. */
async function removeTemp(s: SshSession, tmp: string, handle: Buffer | undefined): Promise<boolean> {
  if (!s.alive) return false;
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
  if (handle) await closeQuietly(s, handle, signal);
  try {
    await unlink(s, tmp, signal);
    return true;
  } catch (err) {
    s.log.warn({ path: tmp, err: err instanceof Error ? err.message : String(err) }, 'could not remove temporary file; the next run removes it');
    return false;
  }
}

export { shellQuote };

export type IdDb = 'passwd' | 'group';

/**
 * `getent passwd|group NAME_OR_ID` over exec, cached per session. Unknown → null.
 * Lookups in flight are shared: a target's parallel ops ask for the same ids at once.
 */
function lookupId(s: SshSession, db: IdDb, key: string, signal: AbortSignal): Promise<{ name: string; id: number } | null> {
  const cacheKey = `${db}:${key}`;
  const known = s.idCache.get(cacheKey);
  if (known !== undefined) return Promise.resolve(known);
  let shared = s.idLookups.get(cacheKey);
  if (!shared) {
    // Its own signal: one asker giving up (its deadline, a cancel) must not fail the others; the last one stops it.
    const stop = new AbortController();
    const lookup = { result: fetchId(s, db, key, cacheKey, stop.signal).finally(() => s.idLookups.delete(cacheKey)), stop, waiting: 0 };
    lookup.result.catch(() => undefined);
    s.idLookups.set(cacheKey, lookup);
    shared = lookup;
  }
  const lookup = shared;
  lookup.waiting++;
  const leave = (): void => {
    if (--lookup.waiting === 0 && s.idLookups.get(cacheKey) === lookup) lookup.stop.abort(signal.reason);
  };
  return raceAbort(lookup.result, signal, `ssh ${s.targetName}: getent ${db}`).then(
    (value) => {
      lookup.waiting--;
      return value;
    },
    (err: unknown) => {
      leave();
      throw err;
    },
  );
}

async function fetchId(s: SshSession, db: IdDb, key: string, cacheKey: string, signal: AbortSignal): Promise<{ name: string; id: number } | null> {
  const res = await s.exec(`getent ${db} ${shellQuote(key)}`, signal, { maxOutput: 8192, killable: false });
  let value: { name: string; id: number } | null = null;
  if (res.code === 0) {
    // Shell start-up files may print noise; take the first line shaped like an entry.
    value = parseIdEntries(res.output)[0] ?? null;
  } else if (res.code === 127) {
    // No getent (minimal images): the local files are the next best source.
    value = await lookupInEtc(s, db, key, signal);
  } else if (res.code !== 2) {
    throw new ProviderError(`ssh ${s.targetName}: getent ${db} exited ${res.code ?? res.signal ?? 'abnormally'}`);
  }
  s.idCache.set(cacheKey, value);
  if (value) {
    s.idCache.set(`${db}:${value.name}`, value);
    s.idCache.set(`${db}:${value.id}`, value);
  }
  return value;
}

function parseIdEntries(text: string): Array<{ name: string; id: number }> {
  const out: Array<{ name: string; id: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([^:\s]+):[^:]*:(\d+):/.exec(line);
    if (m) out.push({ name: m[1] as string, id: Number(m[2]) });
  }
  return out;
}

const ETC_MAX = 4 * 1024 * 1024;

/** /etc/passwd or /etc/group over SFTP, when the host has no getent. */
async function lookupInEtc(s: SshSession, db: IdDb, key: string, signal: AbortSignal): Promise<{ name: string; id: number } | null> {
  const path = `/etc/${db}`;
  const st = await stat(s, path, signal);
  if (!st || st.size > ETC_MAX) {
    throw new ProviderError(`ssh ${s.targetName}: neither getent nor a readable ${path}; Plumb needs one to map user and group names`);
  }
  const chunks: Buffer[] = [];
  await readChunks(s, path, ETC_MAX + 1, signal, (chunk, read) => {
    chunks.push(Buffer.from(chunk));
    return read <= ETC_MAX;
  });
  const entries = parseIdEntries(Buffer.concat(chunks).toString('utf8'));
  for (const e of entries) {
    if (!s.idCache.has(`${db}:${e.name}`)) s.idCache.set(`${db}:${e.name}`, e);
    if (!s.idCache.has(`${db}:${e.id}`)) s.idCache.set(`${db}:${e.id}`, e);
  }
  return entries.find((e) => e.name === key || String(e.id) === key) ?? null;
}

/** A numeric id (number or all-digit string) as given in a spec, or undefined for a name. */
export function numericId(value: string | number): number | undefined {
  if (typeof value === 'number') return value;
  return /^[0-9]+$/.test(value) ? Number(value) : undefined;
}

/** Name for an id, falling back to the number when the target has no entry for it. */
export async function idName(s: SshSession, db: IdDb, id: number, signal: AbortSignal): Promise<string> {
  return (await lookupId(s, db, String(id), signal))?.name ?? String(id);
}

/** The id for a spec's owner/group. Unknown names are a spec problem. */
export async function resolveId(s: SshSession, db: IdDb, value: string | number, signal: AbortSignal): Promise<number> {
  const n = numericId(value);
  if (n !== undefined) return n;
  const entry = await lookupId(s, db, String(value), signal);
  if (!entry) throw new SpecError(`${db === 'passwd' ? 'user' : 'group'} "${value}" does not exist on target ${s.targetName}`);
  return entry.id;
}
