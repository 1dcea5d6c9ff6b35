/**
 * A real OpenSSH sshd for interop tests: loopback only, a fresh host key, one
 * authorized client key, everything under a temp dir. The sftp subsystem is, by
 * default, the sftp-server binary logging to a file so tests can count the writes
 * the host saw (internal-sftp logs to syslog only); `sftp: 'internal'` gives the
 * stock `internal-sftp` configuration.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);

export const SSHD = '/usr/sbin/sshd';
const SFTP_SERVER_CANDIDATES = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server'];

export function sshdAvailable(): boolean {
  return existsSync(SSHD) && existsSync('/usr/bin/ssh-keygen');
}

export const SSHD_MISSING = `OpenSSH server not installed (${SSHD} missing): apt-get install openssh-server`;

export interface OpenSshServer {
  address: '127.0.0.1';
  port: number;
  /** Temp dir holding config, keys and logs; tests also put their remote paths under `dir/remote`. */
  dir: string;
  remoteRoot: string;
  /** The login user (the user running the tests). */
  user: string;
  uid: number;
  gid: number;
  clientKeyPath: string;
  /** `file:` secret reference to the client private key. */
  clientKeyRef: string;
  hostKeyPath: string;
  hostPublicKeyLine: string;
  /** `SHA256:...` as ssh-keygen -lf prints it. */
  hostKeyFingerprint: string;
  /** pid of the listening sshd; its children are the per-connection processes. */
  pid: number;
  /** sshd's own log (-e) so far. */
  log(): string;
  /** SFTP mutations (create/write-open, setstat, remove, rename, mkdir, rmdir, ...) the server saw so far; 'logged' sftp only. */
  sftpWrites(): number;
  sftpLog(): string;
  stop(): Promise<void>;
}

export async function keygen(path: string, type = 'ed25519'): Promise<void> {
  await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'plumb-test', '-f', path]);
}

export async function fingerprintOf(pubPath: string): Promise<string> {
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubPath]);
  const fp = /SHA256:[A-Za-z0-9+/]+/.exec(stdout)?.[0];
  if (!fp) throw new Error(`ssh-keygen -lf printed no fingerprint: ${stdout}`);
  return fp;
}

const WRITE_LINE = /^(open "[^"]*" flags \S*(WRITE|CREATE|TRUNCATE|APPEND)|set "|remove name|rename old|posix-rename old|mkdir name|rmdir name|symlink old|hardlink old)/;

export interface OpenSshOptions {
  sftp?: 'logged' | 'internal';
  /**
   * Give sessions an empty HOME under the temp dir (sshd SetEnv), so the login
   * shell that starts every exec and the sftp-server subsystem reads no rc files
   * of the user running the tests (a pyenv init there costs seconds per command
   * under load). Off by default.
   */
  cleanHome?: boolean;
  /** Extra environment for every session (sshd SetEnv), e.g. a PATH with fake tools first. */
  env?: Record<string, string>;
  /** Channels per connection (sshd MaxSessions); OpenSSH's default, 10, unless a test needs another. */
  maxSessions?: number;
}

export async function startOpenSsh(options: OpenSshOptions = {}): Promise<OpenSshServer> {
  const dir = await mkdtemp(join(tmpdir(), 'plumb-sshd-'));
  const remoteRoot = join(dir, 'remote');
  await mkdir(remoteRoot, { recursive: true });
  const hostKeyPath = join(dir, 'host_ed25519');
  const clientKeyPath = join(dir, 'client_ed25519');
  await Promise.all([keygen(hostKeyPath), keygen(clientKeyPath)]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${clientKeyPath}.pub`));
  const sftpLogPath = join(dir, 'sftp.log');
  await writeFile(sftpLogPath, '');
  const sftpServer = SFTP_SERVER_CANDIDATES.find((p) => existsSync(p));
  const mode = options.sftp ?? (sftpServer ? 'logged' : 'internal');
  const subsystem = mode === 'logged' && sftpServer ? `${sftpServer} -l INFO -e 2>>${sftpLogPath}` : 'internal-sftp';
  const home = join(dir, 'home');
  if (options.cleanHome) await mkdir(home);
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKeyPath}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'LogLevel VERBOSE',
    'MaxStartups 100',
    `MaxSessions ${options.maxSessions ?? 10}`,
    `Subsystem sftp ${subsystem}`,
    ...(options.cleanHome || options.env ? [`SetEnv ${[...(options.cleanHome ? [`HOME=${home}`] : []), ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`)].join(' ')}`] : []),
  ].join('\n');
  const configPath = join(dir, 'sshd_config');
  await writeFile(configPath, `${config}\n`);

  let log = '';
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const deadline = Date.now() + 10_000;
  while (!log.includes(`port ${port}`)) {
    const early = await Promise.race([exited, new Promise<'wait'>((r) => setTimeout(() => r('wait'), 50))]);
    if (early !== 'wait') throw new Error(`sshd exited (${early}) before listening:\n${log}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sshd did not listen on ${port} within 10 s:\n${log}`);
    }
  }

  const me = userInfo();
  const hostPublicKeyLine = (await readFile(`${hostKeyPath}.pub`, 'utf8')).trim();
  return {
    address: '127.0.0.1',
    port,
    pid: child.pid as number,
    dir,
    remoteRoot,
    user: me.username,
    uid: me.uid,
    gid: me.gid,
    clientKeyPath,
    clientKeyRef: `file:${clientKeyPath}`,
    hostKeyPath,
    hostPublicKeyLine,
    hostKeyFingerprint: await fingerprintOf(`${hostKeyPath}.pub`),
    log: () => log,
    sftpLog: () => readFileSync(sftpLogPath, 'utf8'),
    sftpWrites: () => readFileSync(sftpLogPath, 'utf8').split('\n').filter((l) => WRITE_LINE.test(l)).length,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Lines of `text` after `mark` characters: the log produced since a snapshot of its length. */
export function since(text: string, mark: number): string {
  return text.slice(mark);
}
