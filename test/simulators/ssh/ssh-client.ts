/** Test helpers: a simulator in a temp dir, and promise wrappers over ssh2's Client and SFTP. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Client, ConnectConfig, OpenMode, SFTPWrapper, Stats } from 'ssh2';
import { generateEd25519Key, SshSimulator, type SimHost, type SshSimulatorOptions } from '../../../fixtures/simulators/ssh/index.js';

export interface KeyPair {
  private: string;
  public: string;
}

/** A fresh ed25519 client key (validated: see generateEd25519Key). */
export function generateClientKey(): KeyPair {
  return generateEd25519Key();
}

export interface TestSimulator {
  sim: SshSimulator;
  clientKey: KeyPair;
  rootDir: string;
  /** Stop the simulator and remove its sandbox directory. */
  dispose(): Promise<void>;
}

export async function startTestSimulator(options: Partial<SshSimulatorOptions> = {}): Promise<TestSimulator> {
  const rootDir = await mkdtemp(path.join(tmpdir(), 'plumb-sshsim-'));
  const clientKey = generateClientKey();
  let sim: SshSimulator;
  try {
    sim = await SshSimulator.start({ hosts: 1, rootDir, authorizedKeys: [clientKey.public], ...options });
  } catch (err) {
    await rm(rootDir, { recursive: true, force: true });
    throw err;
  }
  return {
    sim,
    clientKey,
    rootDir,
    dispose: async () => {
      await sim.stop();
      await rm(rootDir, { recursive: true, force: true });
    },
  };
}

/** Connect and authenticate; rejects with the client's error (auth failure, timeout, reset). */
export function connect(host: SimHost, config: Partial<ConnectConfig> & { privateKey?: string }): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error('connection closed before ready')));
    client.connect({ host: '127.0.0.1', port: host.port, username: 'deploy', readyTimeout: 5000, ...config });
    // Without it Nagle holds the next request until the server's delayed ACK (~40 ms), as with any sshd.
    client.setNoDelay(true);
  });
}

export function openSftp(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: string | undefined;
}

/** Run a command; resolves when the channel closes. */
export function exec(client: Client, command: string, options: { stdin?: string | Buffer } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let signal: string | undefined;
      stream.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      stream.on('exit', (exitCode: number | null, exitSignal?: string) => {
        code = exitCode;
        signal = exitSignal;
      });
      stream.on('close', () => resolve({ stdout, stderr, code, signal }));
      if (options.stdin !== undefined) stream.end(options.stdin);
    });
  });
}

/** ssh2 SFTP errors carry the SSH_FX status in `code`. */
export interface SftpError extends Error {
  code: number;
}

/** Promise form of an ssh2 callback call. */
export function call<T = void>(fn: (cb: (err: Error | undefined | null, result?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, result) => (err ? reject(err) : resolve(result as T))));
}

export const sftpOps = {
  stat: (s: SFTPWrapper, p: string) => call<Stats>((cb) => s.stat(p, cb)),
  lstat: (s: SFTPWrapper, p: string) => call<Stats>((cb) => s.lstat(p, cb)),
  readFile: (s: SFTPWrapper, p: string) => call<Buffer>((cb) => s.readFile(p, cb)),
  writeFile: (s: SFTPWrapper, p: string, data: string | Buffer, mode?: number) =>
    call((cb) => s.writeFile(p, data, mode === undefined ? {} : { mode }, (err) => cb(err))),
  rename: (s: SFTPWrapper, a: string, b: string) => call((cb) => s.rename(a, b, cb)),
  posixRename: (s: SFTPWrapper, a: string, b: string) => call((cb) => s.ext_openssh_rename(a, b, cb)),
  mkdir: (s: SFTPWrapper, p: string, mode?: number) => call((cb) => s.mkdir(p, mode === undefined ? {} : { mode }, cb)),
  rmdir: (s: SFTPWrapper, p: string) => call((cb) => s.rmdir(p, cb)),
  unlink: (s: SFTPWrapper, p: string) => call((cb) => s.unlink(p, cb)),
  setstat: (s: SFTPWrapper, p: string, attrs: { mode?: number; uid?: number; gid?: number }) => call((cb) => s.setstat(p, attrs, cb)),
  symlink: (s: SFTPWrapper, target: string, link: string) => call((cb) => s.symlink(target, link, cb)),
  readlink: (s: SFTPWrapper, p: string) => call<string>((cb) => s.readlink(p, cb)),
  realpath: (s: SFTPWrapper, p: string) => call<string>((cb) => s.realpath(p, cb)),
  readdir: (s: SFTPWrapper, p: string) => call<Array<{ filename: string; longname: string }>>((cb) => s.readdir(p, cb)),
  open: (s: SFTPWrapper, p: string, flags: OpenMode, mode?: number) =>
    call<Buffer>((cb) => (mode === undefined ? s.open(p, flags, cb) : s.open(p, flags, { mode }, cb))),
  close: (s: SFTPWrapper, handle: Buffer) => call((cb) => s.close(handle, cb)),
};

/** The SSH_FX status code of a rejected SFTP call. */
export async function sftpStatus(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (err) {
    return (err as SftpError).code;
  }
  throw new Error('expected the SFTP request to fail');
}

/** Rejects after `ms` unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export const FX = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, OP_UNSUPPORTED: 8 } as const;
