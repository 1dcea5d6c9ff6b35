import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../util/package-root.js';
import type { WireFile } from './parse-file.js';
import type { YamlLimits } from './yaml.js';

/** The module a worker builds its SchemaRegistry from: `url` exports `name`, a function returning the providers (or their schema-only form). */
export interface ProvidersModule {
  url: string;
  name: string;
}

export interface ParseWorkerData {
  providers: ProvidersModule;
  schemasDir?: string;
  /** Compute each resource's spec hash in the worker (default true; validate has no use for them). */
  hashes?: boolean;
}

export interface ParseJob {
  seq: number;
  path: string;
  bytes: Uint8Array;
  limits: YamlLimits;
}

/** A file's results as a value, or as its JSON text (when exact: quicker to pass), or the error that parsing threw; first, that the worker has started. */
export type ParseReply = { seq: number; file: WireFile } | { seq: number; json: string } | { seq: number; error: string } | { ready: true };

/** Jobs sent to one worker ahead of its replies: enough that it never waits for the next, few enough that the caller can still take the rest back. */
const IN_FLIGHT_PER_WORKER = 6;

/**
 * One file handed to the pool. Until a worker is sent it, the caller may take it
 * back (`claim()`) and parse it itself: the main thread helps instead of waiting,
 * and the share each side parses follows how fast each is, not a fixed split.
 */
export class ParseTicket {
  /** Set once a worker has answered. */
  wire: WireFile | undefined;
  /** Set once a worker's answer failed (or the pool did). */
  error: Error | undefined;
  /** Whatever the caller made of a claimed ticket (the pool never reads it). */
  local: unknown;
  #state: 'queued' | 'sent' | 'claimed' | 'settled' = 'queued';
  #waiters: Array<() => void> = [];
  readonly #pool: ParsePool;

  constructor(
    pool: ParsePool,
    readonly seq: number,
    readonly path: string,
    readonly bytes: Buffer,
    readonly limits: YamlLimits,
  ) {
    this.#pool = pool;
  }

  get queued(): boolean {
    return this.#state === 'queued';
  }

  /** Takes the file back from the pool if no worker has it yet; true if the caller now parses it. */
  claim(): boolean {
    if (this.#state !== 'queued') return this.#state === 'claimed';
    this.#state = 'claimed';
    this.#pool.trimQueue();
    return true;
  }

  /** The worker's answer (for a ticket not claimed). */
  async result(): Promise<WireFile> {
    if (this.#state === 'claimed') throw new Error('a claimed ticket has no worker result');
    if (this.#state !== 'settled') await new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (this.error) throw this.error;
    return this.wire!;
  }

  sent(): void {
    this.#state = 'sent';
  }

  settle(wire: WireFile | undefined, error: Error | undefined): void {
    if (this.#state === 'settled' || this.#state === 'claimed') return;
    this.#state = 'settled';
    this.wire = wire;
    this.error = error;
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/**
 * Worker threads that parse and schema-check config files. Files queue in the
 * pool and go to workers a few at a time, in the order given; what comes back
 * depends only on the file, so the caller's order (not the pool's) decides the
 * order of resources and diagnostics.
 */
export class ParsePool {
  /** `ready` once the worker has loaded its modules: until then the caller parses everything queued (a start takes ~0.3 s). */
  readonly #workers: Array<{ worker: Worker; ready: boolean; inFlight: Map<number, ParseTicket> }> = [];
  /** Submitted and not yet sent, in submission order. */
  readonly #queue: ParseTicket[] = [];
  #head = 0;
  #seq = 0;
  #failed: Error | undefined;
  #closing = false;

  get size(): number {
    return this.#workers.length;
  }

  constructor(size: number, data: ParseWorkerData) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(workerFile(), { workerData: data });
      const slot = { worker, ready: false, inFlight: new Map<number, ParseTicket>() };
      worker.on('message', (reply: ParseReply) => {
        if ('ready' in reply) {
          slot.ready = true;
          this.#dispatch();
          return;
        }
        const ticket = slot.inFlight.get(reply.seq);
        slot.inFlight.delete(reply.seq);
        if ('error' in reply) ticket?.settle(undefined, new Error(`parse worker: ${reply.error}`));
        else ticket?.settle('json' in reply ? (JSON.parse(reply.json) as WireFile) : reply.file, undefined);
        this.#dispatch();
      });
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.#closing) this.#fail(new Error(`parse worker exited with code ${code}`));
      });
      this.#workers.push(slot);
    }
  }

  /** Queues one file for a worker. `bytes` stay the caller's (a worker gets a copy, when it is sent). */
  submit(path: string, bytes: Buffer, limits: YamlLimits): ParseTicket {
    const ticket = new ParseTicket(this, this.#seq++, path, bytes, limits);
    if (this.#failed) ticket.settle(undefined, this.#failed);
    else {
      this.#queue.push(ticket);
      this.#dispatch();
    }
    return ticket;
  }

  /** The last queued file, taken back for the caller to parse (undefined when every file is with a worker). */
  claimLast(): ParseTicket | undefined {
    for (let i = this.#queue.length - 1; i >= this.#head; i--) {
      const ticket = this.#queue[i]!;
      if (ticket.queued && ticket.claim()) return ticket;
    }
    return undefined;
  }

  /** Claimed tickets stay in the queue and are skipped; its tail is trimmed so that claimLast stays quick. */
  trimQueue(): void {
    while (this.#queue.length > this.#head && !this.#queue[this.#queue.length - 1]!.queued) this.#queue.pop();
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }

  #dispatch(): void {
    for (const slot of this.#workers) {
      while (slot.ready && slot.inFlight.size < IN_FLIGHT_PER_WORKER) {
        const ticket = this.#next();
        if (!ticket) return;
        ticket.sent();
        slot.inFlight.set(ticket.seq, ticket);
        const copy = new Uint8Array(ticket.bytes);
        slot.worker.postMessage({ seq: ticket.seq, path: ticket.path, bytes: copy, limits: ticket.limits } satisfies ParseJob, [copy.buffer]);
      }
    }
  }

  /** The first file still queued. */
  #next(): ParseTicket | undefined {
    while (this.#head < this.#queue.length) {
      const ticket = this.#queue[this.#head++]!;
      if (ticket.queued) return ticket;
    }
    this.#queue.length = 0;
    this.#head = 0;
    return undefined;
  }

  #fail(err: Error): void {
    this.#failed ??= err;
    for (const slot of this.#workers) {
      for (const ticket of slot.inFlight.values()) ticket.settle(undefined, err);
      slot.inFlight.clear();
    }
    // Queued files fail too: a pool that lost a worker is not trusted with the rest.
    for (let i = this.#head; i < this.#queue.length; i++) if (this.#queue[i]!.queued) this.#queue[i]!.settle(undefined, err);
    this.#queue.length = 0;
    this.#head = 0;
  }
}

/** The worker script beside this module; from src/ (tests run TypeScript in-process) the built one, which plain Node can run. */
function workerFile(): URL | string {
  const here = new URL('./parse-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return join(packageRoot(), 'dist/src/load/parse-worker.js');
}
