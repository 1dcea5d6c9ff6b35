import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../util/package-root.js';
import type { WireFile } from './parse-file.js';
import type { YamlLimits } from './yaml.js';

/** The module a worker builds its SchemaRegistry from: `url` exports `name`, a function returning the providers. */
export interface ProvidersModule {
  url: string;
  name: string;
}

export interface ParseWorkerData {
  providers: ProvidersModule;
  schemasDir?: string;
}

export interface ParseJob {
  seq: number;
  path: string;
  bytes: Uint8Array;
  limits: YamlLimits;
}

/** A file's results as a value, or as its JSON text (when exact: quicker to pass), or the error that parsing threw. */
export type ParseReply = { seq: number; file: WireFile } | { seq: number; json: string } | { seq: number; error: string };

/**
 * Worker threads that parse and schema-check config files. Files go to the least
 * busy worker; what comes back depends only on the file, so the caller's order
 * (not the pool's) decides the order of resources and diagnostics.
 */
export class ParsePool {
  readonly #workers: Array<{ worker: Worker; busy: number }> = [];
  readonly #pending = new Map<number, { resolve: (file: WireFile) => void; reject: (err: Error) => void }>();
  #seq = 0;
  #failed: Error | undefined;
  #closing = false;

  get size(): number {
    return this.#workers.length;
  }

  constructor(size: number, data: ParseWorkerData) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(workerFile(), { workerData: data });
      const slot = { worker, busy: 0 };
      worker.on('message', (reply: ParseReply) => {
        slot.busy--;
        const job = this.#pending.get(reply.seq);
        this.#pending.delete(reply.seq);
        if ('error' in reply) job?.reject(new Error(`parse worker: ${reply.error}`));
        else job?.resolve('json' in reply ? (JSON.parse(reply.json) as WireFile) : reply.file);
      });
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.#closing) this.#fail(new Error(`parse worker exited with code ${code}`));
      });
      this.#workers.push(slot);
    }
  }

  /** Parses one file in a worker. The bytes are copied (the caller keeps its buffer, for positions). */
  parse(path: string, bytes: Buffer, limits: YamlLimits): Promise<WireFile> {
    if (this.#failed) return Promise.reject(this.#failed);
    const slot = this.#workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const seq = this.#seq++;
    const copy = new Uint8Array(bytes);
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      slot.busy++;
      slot.worker.postMessage({ seq, path, bytes: copy, limits } satisfies ParseJob, [copy.buffer]);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    for (const job of this.#pending.values()) job.reject(err);
    this.#pending.clear();
  }
}

/** The worker script beside this module; from src/ (tests run TypeScript in-process) the built one, which plain Node can run. */
function workerFile(): URL | string {
  const here = new URL('./parse-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return join(packageRoot(), 'dist/src/load/parse-worker.js');
}
