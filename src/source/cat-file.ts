import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { GitError } from '../errors.js';

export interface ObjectInfo {
  oid: string;
  type: string;
  size: number;
}

interface Pending {
  command: 'info' | 'contents';
  resolve: (value: { info: ObjectInfo | undefined; content?: Buffer }) => void;
  reject: (err: Error) => void;
}

/**
 * One long-lived `git cat-file --batch-command` per repository: every blob and
 * object lookup of a load goes through the same process, so reading 1,000 files
 * costs one spawn, not 1,000.
 */
export class CatFile {
  readonly #gitDir: string;
  readonly #env: NodeJS.ProcessEnv;
  #child: ChildProcessWithoutNullStreams | undefined;
  #queue: Pending[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  #failure: Error | undefined;

  constructor(gitDir: string, env: NodeJS.ProcessEnv) {
    this.#gitDir = gitDir;
    this.#env = env;
  }

  /** Object id, type and size of a blob id or a `<commit>:<path>` expression; undefined if missing. */
  async info(object: string): Promise<ObjectInfo | undefined> {
    return (await this.#send('info', object)).info;
  }

  /** Contents of an object; throws if it does not exist. */
  async read(object: string): Promise<Buffer> {
    const { info, content } = await this.#send('contents', object);
    if (!info || !content) throw new GitError(`git object ${object} is missing from the mirror`);
    return content;
  }

  close(): void {
    this.#child?.stdin.end();
    this.#child = undefined;
  }

  #send(command: 'info' | 'contents', object: string): Promise<{ info: ObjectInfo | undefined; content?: Buffer }> {
    if (/[\n\r\0]/.test(object)) return Promise.reject(new GitError('object name contains a line break'));
    const child = this.#ensure();
    return new Promise((resolve, reject) => {
      this.#queue.push({ command, resolve, reject });
      child.stdin.write(`${command} ${object}\n`);
    });
  }

  #ensure(): ChildProcessWithoutNullStreams {
    if (this.#child) return this.#child;
    this.#failure = undefined;
    const child = spawn('git', ['cat-file', '--batch-command'], { cwd: this.#gitDir, env: this.#env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => this.#onData(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2000);
    });
    child.stdin.on('error', () => {}); // reported through 'close'
    const fail = (err: Error): void => {
      if (this.#child === child) this.#child = undefined;
      this.#failure = err;
      const queue = this.#queue;
      this.#queue = [];
      this.#buffer = Buffer.alloc(0);
      for (const p of queue) p.reject(err);
    };
    child.on('error', (err) => fail(new GitError(`cannot run git cat-file: ${err.message}`)));
    child.on('close', (code) => {
      if (this.#queue.length > 0 || code !== 0) fail(new GitError(`git cat-file exited (${code}): ${stderr.trim() || 'no message'}`));
      else if (this.#child === child) this.#child = undefined;
    });
    this.#child = child;
    return child;
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#queue.length > 0) {
      const newline = this.#buffer.indexOf(0x0a);
      if (newline < 0) return;
      const header = this.#buffer.subarray(0, newline).toString('utf8');
      const pending = this.#queue[0]!;
      if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
        this.#buffer = this.#buffer.subarray(newline + 1);
        this.#queue.shift();
        pending.resolve({ info: undefined });
        continue;
      }
      const [oid, type, sizeText] = header.split(' ');
      const info: ObjectInfo = { oid: oid!, type: type!, size: Number(sizeText) };
      if (pending.command === 'info') {
        this.#buffer = this.#buffer.subarray(newline + 1);
        this.#queue.shift();
        pending.resolve({ info });
        continue;
      }
      const end = newline + 1 + info.size;
      if (this.#buffer.length < end + 1) return; // wait for the body and its trailing LF
      const content = Buffer.from(this.#buffer.subarray(newline + 1, end));
      this.#buffer = this.#buffer.subarray(end + 1);
      this.#queue.shift();
      pending.resolve({ info, content });
    }
  }

  get failed(): Error | undefined {
    return this.#failure;
  }
}
