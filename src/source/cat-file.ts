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

/** One `git cat-file` process with its own pending requests and unparsed output. */
interface Channel {
  child: ChildProcessWithoutNullStreams;
  queue: Pending[];
  buffer: Buffer;
  /** Chunks not yet joined to `buffer`, and how many more bytes a body needs before joining is worth it. */
  chunks: Buffer[];
  chunkBytes: number;
  need: number;
  /** Requests of one tick leave in one write (a write wakes git: a load asks for files 16 at a time). */
  corked: boolean;
}

/**
 * One long-lived `git cat-file --batch-command` per repository: every blob and
 * object lookup of a load goes through the same process, so reading 1,000 files
 * costs one spawn, not 1,000.
 */
export class CatFile {
  readonly #gitDir: string;
  readonly #env: NodeJS.ProcessEnv;
  #channel: Channel | undefined;

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

  /** Ends the process; requests already sent are still answered. The next request starts a new one. */
  close(): void {
    this.#channel?.child.stdin.end();
    this.#channel = undefined;
  }

  #send(command: 'info' | 'contents', object: string): Promise<{ info: ObjectInfo | undefined; content?: Buffer }> {
    if (/[\n\r\0]/.test(object)) return Promise.reject(new GitError('object name contains a line break'));
    const channel = this.#ensure();
    return new Promise((resolve, reject) => {
      channel.queue.push({ command, resolve, reject });
      if (!channel.corked) {
        channel.corked = true;
        channel.child.stdin.cork();
        process.nextTick(() => {
          channel.corked = false;
          channel.child.stdin.uncork();
        });
      }
      channel.child.stdin.write(`${command} ${object}\n`);
    });
  }

  #ensure(): Channel {
    if (this.#channel) return this.#channel;
    const child = spawn('git', ['cat-file', '--batch-command'], { cwd: this.#gitDir, env: this.#env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Each process keeps its own queue: a closed one finishing late never answers (or fails) a newer one's requests.
    const channel: Channel = { child, queue: [], buffer: Buffer.alloc(0), chunks: [], chunkBytes: 0, need: 0, corked: false };
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => this.#onData(channel, chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2000);
    });
    child.stdin.on('error', () => {}); // reported through 'close'
    const fail = (err: Error): void => {
      if (this.#channel === channel) this.#channel = undefined;
      const queue = channel.queue;
      channel.queue = [];
      channel.buffer = Buffer.alloc(0);
      channel.chunks = [];
      for (const p of queue) p.reject(err);
    };
    child.on('error', (err) => fail(new GitError(`cannot run git cat-file: ${err.message}`)));
    child.on('close', (code) => {
      if (channel.queue.length > 0 || code !== 0) fail(new GitError(`git cat-file exited (${code}): ${stderr.trim() || 'no message'}`));
      else if (this.#channel === channel) this.#channel = undefined;
    });
    this.#channel = channel;
    return channel;
  }

  #onData(channel: Channel, chunk: Buffer): void {
    // A large blob arrives in many chunks: join them once it is complete, not once per chunk.
    channel.chunks.push(chunk);
    channel.chunkBytes += chunk.length;
    if (channel.chunkBytes < channel.need) return;
    channel.buffer = Buffer.concat([channel.buffer, ...channel.chunks]);
    channel.chunks = [];
    channel.chunkBytes = 0;
    channel.need = 0;
    while (channel.queue.length > 0) {
      const newline = channel.buffer.indexOf(0x0a);
      if (newline < 0) return;
      const header = channel.buffer.subarray(0, newline).toString('utf8');
      const pending = channel.queue[0]!;
      if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
        channel.buffer = channel.buffer.subarray(newline + 1);
        channel.queue.shift();
        pending.resolve({ info: undefined });
        continue;
      }
      const [oid, type, sizeText] = header.split(' ');
      const info: ObjectInfo = { oid: oid!, type: type!, size: Number(sizeText) };
      if (pending.command === 'info') {
        channel.buffer = channel.buffer.subarray(newline + 1);
        channel.queue.shift();
        pending.resolve({ info });
        continue;
      }
      const end = newline + 1 + info.size;
      if (channel.buffer.length < end + 1) {
        channel.need = end + 1 - channel.buffer.length; // wait for the body and its trailing LF
        return;
      }
      const content = Buffer.from(channel.buffer.subarray(newline + 1, end));
      channel.buffer = channel.buffer.subarray(end + 1);
      channel.queue.shift();
      pending.resolve({ info, content });
    }
  }
}
