/**
 * One persistent ssh2 connection per target: a lazily opened SFTP channel reused by
 * every file operation, exec channels on demand, keepalive on. Nothing is retried
 * here: failures become typed errors and the run queue decides.
 */
import type ssh2 from 'ssh2';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import { ProviderError, SessionLostError, SpecError } from '../../src/errors.js';
import { abortError, raceAbort, throwIfAborted, type Log, type OpenContext, type Session, type Target } from '../../src/provider.js';
import { redactText } from '../../src/secrets/redact.js';
import { durationField } from '../../src/util/duration.js';
import { becomeCommand, parseProbe, probeCommand, resolveBecome, type Become, type BecomeSpec } from './become.js';
import { connectSsh, DEFAULT_KEEPALIVE_MS, resolveCredentials } from './connect.js';
import { knownHostName, loadHostKeyPolicy } from './host-key.js';

type SshClient = ssh2.Client;

/** The fields of a validated `provider: ssh` Target spec. */
export interface SshTargetSpec {
  provider: 'ssh';
  address: string;
  port?: number;
  user: string;
  privateKey?: string;
  password?: string;
  passphrase?: string;
  hostKey?: string;
  knownHosts?: string;
  connectTimeout?: string;
  keepaliveInterval?: string;
  /** Run every command as another user (sudo or doas); SFTP stays the login user's. */
  become?: BecomeSpec;
}

const CLOSE_GRACE_MS = 1_000; // close() waits this long for a polite end, then destroys
const STAGING_CLEANUP_MS = 1_000; // close() gives removing the become staging directory this long
const DEFAULT_MAX_OUTPUT = 64 * 1024;
const PID_MARK = 'plumb-pid:';
const PID_HEAD_MAX = 4096; // shell start-up noise tolerated before the pid line
const PID_WAIT_MS = 2_000;
/**
 * Exec channels open at once per connection. OpenSSH's MaxSessions (default 10)
 * counts every channel: this leaves room for the SFTP channel and a kill channel.
 */
export const EXEC_CHANNELS = 8;

export interface ExecResult {
  /** Exit status; null when the process was killed by a signal or the channel closed without one. */
  code: number | null;
  signal?: string;
  /** stdout and stderr interleaved as they arrived, tail only (see maxOutput). */
  output: string;
  /** stderr alone, tail only. */
  stderr: string;
}

/** Keeps the last `max` bytes of a stream without building giant strings. */
export class TailBuffer {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(max: number) {
    this.#max = max;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#chunks.length > 1 && this.#size - (this.#chunks[0]?.length ?? 0) >= this.#max) {
      this.#size -= this.#chunks.shift()?.length ?? 0;
    }
  }

  toString(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - this.#max)).toString('utf8');
  }
}

export interface ExecOptions {
  /** Tail of output kept (default 64 KiB). */
  maxOutput?: number;
  /** false: no pid line, so no kill on cancel (tiny lookups). */
  killable?: boolean;
  /** Every byte of stdout as it arrives (the pid line left out), e.g. a file read under become. */
  onStdout?: (chunk: Buffer) => void;
}

/** Node-style completion callback of one ssh2 request. */
export type Done<T> = (err: Error | null | undefined, value?: T) => void;

export class SshSession implements Session {
  readonly targetName: string;
  readonly user: string;
  readonly log: Log;
  readonly #client: SshClient;
  #alive = true;
  #socketClosed = false;
  #closed: Promise<void>;
  #sftp: Promise<SFTPWrapper> | undefined;
  /** Rejecters of in-flight requests, failed with SessionLostError when the connection drops. */
  readonly #pending = new Set<(err: Error) => void>();
  /** Exec channels in use, and who waits for one (see EXEC_CHANNELS). */
  #execsOpen = 0;
  readonly #execWaiters: Array<() => void> = [];
  /** getent answers, per session: uid/gid names rarely change and cost an exec each. */
  readonly idCache = new Map<string, { name: string; id: number } | null>();
  /** What kinds learn about the host once per session (its package manager), keyed by the kind that asked. */
  readonly facts = new Map<string, Promise<unknown>>();
  /** The tail of each exclusive() queue, by key. */
  readonly #exclusive = new Map<string, Promise<void>>();
  /** Blob ids of files an op has just renamed into place, by path, for its verify read (see takeWritten). */
  readonly #written = new Map<string, string>();
  /** getent lookups in flight, shared by the ops that ask at once. */
  readonly idLookups = new Map<string, { result: Promise<{ name: string; id: number } | null>; stop: AbortController; waiting: number }>();

  /** Escalation of every command (`become:`); undefined: commands run as the login user. */
  readonly become: Become | undefined;
  /** The login user's uid and gid, learned by the become probe (staging files are theirs). */
  loginIds: { uid: number; gid: number } | undefined;
  /** The per-session private directory (login user's, 0700) that SFTP writes stage files in under become; created on first write. */
  stagingDir: Promise<string> | undefined;

  private constructor(targetName: string, user: string, client: SshClient, log: Log, become?: Become) {
    this.targetName = targetName;
    this.user = user;
    this.become = become;
    this.#client = client;
    this.log = log;
    this.#closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', (err: Error) => {
      this.#alive = false;
      log.warn({ target: targetName, err: redactText(err.message) }, 'ssh connection error');
    });
    client.on('close', () => {
      this.#alive = false;
      this.#socketClosed = true;
      this.#sftp = undefined;
      // Made only for requests still waiting: a deliberate close has none (an error's stack costs ~1 ms).
      if (this.#pending.size === 0) return;
      const lost = new SessionLostError(`ssh ${targetName}: connection lost`);
      for (const reject of [...this.#pending]) reject(lost);
    });
  }

  /** Notes that an op has just put a file with this blob id at `path` (atomic rename, acknowledged). */
  noteWritten(path: string, oid: string): void {
    this.#written.set(path, oid);
  }

  /** What noteWritten said of `path`, once: any read takes it, so it never outlives the op's verify. */
  takeWritten(path: string): string | undefined {
    const oid = this.#written.get(path);
    if (oid !== undefined) this.#written.delete(path);
    return oid;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /**
   * Runs `fn` when no other exclusive() call with the same key runs on this
   * session: a target's ops share the session in parallel (perTarget), and
   * some writes must not overlap though their claims do (two ssh.Line edits
   * of one file; useradd and groupadd, which fail rather than wait on the
   * shadow files' lock).
   */
  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#exclusive.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.#exclusive.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.#exclusive.get(key) === tail) this.#exclusive.delete(key);
    }
  }

  /** Opens the connection: host key checked before authentication, secrets resolved here only. */
  static async open(target: Target, ctx: OpenContext): Promise<SshSession> {
    const spec = target.spec as unknown as SshTargetSpec;
    const name = target.name;
    throwIfAborted(ctx.signal, `ssh ${name}: connect`);
    if (typeof spec.address !== 'string' || typeof spec.user !== 'string') {
      throw new SpecError(`target ${name}: address and user are required`);
    }
    const port = spec.port ?? 22;
    const hostName = knownHostName(spec.address, port);
    const policy = await loadHostKeyPolicy(name, spec, hostName);
    const connectTimeoutMs = durationField(name, 'connectTimeout', spec.connectTimeout, ctx.connectTimeoutMs);
    const keepaliveMs = durationField(name, 'keepaliveInterval', spec.keepaliveInterval, DEFAULT_KEEPALIVE_MS);

    const credentials = await resolveCredentials(name, spec, ctx.secrets);
    const become = await resolveBecome(name, spec.become, ctx.secrets);
    const client = await connectSsh({
      protocol: 'ssh',
      name,
      host: spec.address,
      port,
      username: spec.user,
      ...credentials,
      hostKey: policy,
      hostName,
      connectTimeoutMs,
      keepaliveMs,
      signal: ctx.signal,
    });
    const log = ctx.log.child({ target: name });
    log.debug({ address: spec.address, port, user: spec.user }, 'ssh connected');
    const session = new SshSession(name, spec.user, client, log, become);
    if (become) {
      try {
        // Once per session: a refused escalation fails here, naming the host, instead of as every command's exit 1.
        const res = await session.#exec(probeCommand(become), ctx.signal, { killable: false, maxOutput: 8192 });
        session.loginIds = parseProbe(`ssh ${name} (${spec.address}:${port})`, spec.user, become, redactText(res.output), res.code);
      } catch (err) {
        await session.close();
        throw err;
      }
      log.debug({ method: become.method, user: become.user }, 'ssh become checked');
    }
    return session;
  }

  /**
   * Runs one request on the connection. `start` issues it and may return a cancel
   * function, called on abort before the call rejects with TimeoutError/CancelledError.
   */
  request<T>(signal: AbortSignal, what: string, start: (done: Done<T>) => (() => void) | void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // Nothing was sent yet: the journal records these as not sent, never as an unknown outcome.
      if (signal.aborted) return reject(abortError(signal, `ssh ${this.targetName}: ${what}`, { notSent: true }));
      if (!this.#alive) return reject(new SessionLostError(`ssh ${this.targetName}: connection lost before ${what}; it was not sent`, { notSent: true }));
      let settled = false;
      let cancel: (() => void) | void = undefined;
      const finish = (err: Error | null | undefined, value?: T): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        this.#pending.delete(onLost);
        if (err) reject(err);
        else resolve(value as T);
      };
      const onAbort = (): void => {
        try {
          cancel?.();
        } catch {
          // the channel may already be gone; the abort stands either way
        }
        finish(abortError(signal, `ssh ${this.targetName}: ${what}`));
      };
      const onLost = (err: Error): void => finish(err);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#pending.add(onLost);
      try {
        cancel = start((err, value) => {
          if (err && !this.#alive) finish(new SessionLostError(`ssh ${this.targetName}: connection lost during ${what}`, { cause: err }));
          else finish(err, value);
        });
      } catch (err) {
        // ssh2 throws synchronously, before writing anything, when the connection is gone or a request is malformed.
        finish(
          this.#alive
            ? new ProviderError(`ssh ${this.targetName}: ${what} failed (${(err as Error).message})`, { cause: err, notSent: true })
            : new SessionLostError(`ssh ${this.targetName}: connection lost before ${what}; it was not sent`, { cause: err, notSent: true }),
        );
      }
    });
  }

  /** The session's SFTP channel, opened on first use and reused. */
  async sftp(signal: AbortSignal): Promise<SFTPWrapper> {
    if (!this.#sftp) {
      const opening = this.request<SFTPWrapper>(new AbortController().signal, 'open sftp', (done) => {
        this.#client.sftp((err, sftp) => done(err ? new ProviderError(`ssh ${this.targetName}: the sftp subsystem is not available (${err.message})`) : null, sftp));
      });
      this.#sftp = opening;
      opening.then(
        (sftp) => {
          sftp.on('error', () => {});
          sftp.once('close', () => {
            if (this.#sftp === opening) this.#sftp = undefined;
          });
        },
        () => {
          if (this.#sftp === opening) this.#sftp = undefined;
        },
      );
    }
    return raceAbort(this.#sftp, signal, `ssh ${this.targetName}: open sftp`);
  }

  /**
   * Aborting an SFTP request means closing the channel: SFTP has no per-request
   * cancel, and a closed channel makes the server drop the work and its handles.
   */
  resetSftp(sftp: SFTPWrapper): void {
    this.#sftp = undefined;
    try {
      sftp.end();
    } catch {
      // already closed
    }
  }

  /** One SFTP request, cancelled (channel closed) on abort. Errors are ssh2's raw ones, for the caller to map. */
  async sftpCall<T>(signal: AbortSignal, what: string, call: (sftp: SFTPWrapper, done: Done<T>) => void): Promise<T> {
    throwIfAborted(signal, `ssh ${this.targetName}: ${what}`);
    const sftp = await this.sftp(signal);
    return this.request<T>(signal, what, (done) => {
      call(sftp, done);
      return () => this.resetSftp(sftp);
    });
  }

  /**
   * Runs a command through the remote user's shell. On abort: a KILL signal request,
   * plus `kill -KILL -- -<pgid>` over a second channel, because sshd ignores signal
   * requests on root logins (no privilege-separated child); then the channel is closed.
   */
  async exec(command: string, signal: AbortSignal, options: ExecOptions = {}): Promise<ExecResult> {
    await this.#execChannel(signal);
    try {
      return await this.#exec(this.#escalated(command), signal, options);
    } finally {
      this.#execsOpen--;
      this.#execWaiters.shift()?.();
    }
  }

  /** Waits for a free exec channel (see EXEC_CHANNELS); an abort while waiting means nothing was sent. */
  async #execChannel(signal: AbortSignal): Promise<void> {
    throwIfAborted(signal, `ssh ${this.targetName}: exec`);
    if (this.#execsOpen < EXEC_CHANNELS) {
      this.#execsOpen++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const turn = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.#execsOpen++;
        resolve();
      };
      const onAbort = (): void => {
        const i = this.#execWaiters.indexOf(turn);
        if (i >= 0) this.#execWaiters.splice(i, 1);
        reject(abortError(signal, `ssh ${this.targetName}: exec`, { notSent: true }));
      };
      this.#execWaiters.push(turn);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** `command` as the become user (becomeCommand), or as it is without become. */
  #escalated(command: string): string {
    return this.become ? becomeCommand(this.become, command) : command;
  }

  /** A sudo password goes on the channel's stdin (sudo -S), never on a command line; stdin is closed either way so nothing waits on it. */
  #feedStdin(ch: ClientChannel): void {
    if (!this.become?.password) return;
    ch.end(Buffer.concat([this.become.password.reveal(), Buffer.from('\n')]));
  }

  #exec(command: string, signal: AbortSignal, options: ExecOptions): Promise<ExecResult> {
    const max = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
    // sshd starts each command in its own session (setsid), so the shell's pid is its process group.
    const wrapped = options.killable === false ? command : `printf '${PID_MARK}%s\\n' "$$"; ${command}`;
    return this.request<ExecResult>(signal, 'exec', (done) => {
      let channel: ClientChannel | undefined;
      let pid: number | undefined;
      let cancelled = false;
      let killed = false;
      let closeTimer: NodeJS.Timeout | undefined;
      const terminate = (ch: ClientChannel): void => {
        if (killed) return;
        try {
          ch.signal('KILL');
        } catch {
          // channel already closing
        }
        if (pid === undefined) {
          // The pid line is on its way (or the command never started): wait briefly for it.
          closeTimer ??= setTimeout(() => ch.close(), PID_WAIT_MS);
          return;
        }
        killed = true;
        this.#killProcessGroup(pid);
        ch.close();
      };
      this.#client.exec(wrapped, (err, ch) => {
        // Refused channel (e.g. sshd MaxSessions): the connection is fine, a later try may succeed.
        if (err) return done(new ProviderError(`ssh ${this.targetName}: cannot open an exec channel (${err.message})`, { cause: err, retryable: true }));
        channel = ch;
        this.#feedStdin(ch);
        const output = new TailBuffer(max);
        const stdout = (d: Buffer): void => {
          output.push(d);
          options.onStdout?.(d);
        };
        const stderr = new TailBuffer(max);
        let head: Buffer | undefined = options.killable === false ? undefined : Buffer.alloc(0); // stdout until the pid line is seen
        let code: number | null = null;
        let exitSignal: string | undefined;
        ch.on('data', (d: Buffer) => {
          if (!head) return stdout(d);
          head = Buffer.concat([head, d]);
          const text = head.toString('latin1');
          const at = text.indexOf(PID_MARK);
          const eol = at >= 0 ? text.indexOf('\n', at) : -1;
          if (eol >= 0) {
            const n = text.slice(at + PID_MARK.length, eol);
            if (/^[0-9]+$/.test(n)) pid = Number(n);
            stdout(head.subarray(0, at));
            stdout(head.subarray(eol + 1));
            head = undefined;
            if (cancelled) terminate(ch);
          } else if (head.length > PID_HEAD_MAX) {
            stdout(head);
            head = undefined;
          }
        });
        ch.stderr.on('data', (d: Buffer) => {
          output.push(d);
          stderr.push(d);
        });
        ch.on('exit', (c: number | null, sig?: string) => {
          code = typeof c === 'number' ? c : null;
          if (sig) exitSignal = sig;
        });
        ch.on('close', () => {
          clearTimeout(closeTimer);
          if (head) stdout(head);
          done(null, { code, ...(exitSignal ? { signal: exitSignal } : {}), output: output.toString(), stderr: stderr.toString() });
        });
        if (cancelled) terminate(ch);
      });
      return () => {
        cancelled = true;
        if (channel) terminate(channel);
      };
    });
  }

  /** Fire and forget: the caller has already been told the command was cancelled. */
  #killProcessGroup(pid: number): void {
    if (!this.#alive) return;
    try {
      // Under become the command's processes are the become user's: the kill is escalated too.
      this.#client.exec(this.#escalated(`kill -KILL -- -${pid} 2>/dev/null || kill -KILL ${pid} 2>/dev/null; true`), (err, ch) => {
        if (err) return;
        this.#feedStdin(ch);
        const t = setTimeout(() => ch.close(), PID_WAIT_MS);
        ch.on('data', () => {});
        ch.stderr.on('data', () => {});
        ch.on('close', () => clearTimeout(t));
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not send kill for a cancelled command');
    }
  }

  /** Ends politely; destroys the socket if the server does not close within a short grace. */
  async close(): Promise<void> {
    if (this.stagingDir && this.#alive) {
      // The become staging directory is empty between writes: the login user removes it (best effort; a leftover is an empty dir in /tmp).
      const staging = this.stagingDir;
      this.stagingDir = undefined;
      // Bounded as a whole: a mktemp still waiting for its exec channel must not hold the close (and the process) open.
      const cleanup = AbortSignal.timeout(STAGING_CLEANUP_MS);
      await raceAbort(staging, cleanup, `ssh ${this.targetName}: staging directory`)
        .then((dir) => this.sftpCall<void>(cleanup, `rmdir ${dir}`, (sftp, done) => sftp.rmdir(dir, (err) => done(err))))
        .catch(() => {});
    }
    this.#alive = false;
    if (this.#socketClosed) return;
    try {
      this.#client.end();
    } catch {
      // socket already gone
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    this.#client.destroy();
  }
}

