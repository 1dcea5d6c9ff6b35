import { describeError } from '../errors.js';
import type { Log } from '../provider.js';
import type { Config } from './config.js';
import type { Engine, PassReport } from './engine.js';

type PassKind = 'delta' | 'sweep';

/**
 * The long-running loop. Level-based, like a controller: a poll, the sweep timer
 * and retry timers only *request* a pass; the pass itself re-reads Git and the
 * targets. Passes never overlap. A newer commit arriving mid-pass supersedes it:
 * queued work and backoff waits are cancelled, in-flight operations finish, and
 * the next pass works toward the newest commit.
 */
export class Daemon {
  readonly #engine: Engine;
  readonly #config: Config;
  readonly #log: Log;
  readonly #random: () => number;
  #wanted: PassKind | null = 'sweep'; // start-up reads everything
  #wake: (() => void) | undefined;
  #passStop: AbortController | undefined;
  #passKind: PassKind | undefined;
  readonly #shutdown = new AbortController();
  readonly #hardAbort = new AbortController();
  #timers: NodeJS.Timeout[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #polling = false;
  #stopped: Promise<void> | undefined;
  /** Reports of finished passes, for tests and the CLI. */
  onPass?: (report: PassReport) => void;

  constructor(engine: Engine, config: Config, log: Log, options: { random?: () => number } = {}) {
    this.#engine = engine;
    this.#config = config;
    this.#log = log;
    this.#random = options.random ?? Math.random;
  }

  /** Runs until stop() completes. */
  async run(): Promise<void> {
    this.#schedulePoll();
    if (this.#config.sweepIntervalMs > 0) {
      const sweep = setInterval(() => this.request('sweep'), this.#config.sweepIntervalMs);
      sweep.unref();
      this.#timers.push(sweep);
    }
    while (!this.#shutdown.signal.aborted) {
      if (this.#wanted === null) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const kind = this.#wanted;
      this.#wanted = null;
      await this.#pass(kind);
    }
  }

  /** Asks for a pass; a sweep request outranks a delta one. */
  request(kind: PassKind): void {
    if (this.#shutdown.signal.aborted) return;
    if (this.#wanted !== 'sweep') this.#wanted = kind;
    this.#wake?.();
  }

  async #pass(kind: PassKind): Promise<void> {
    const stop = new AbortController();
    this.#passStop = stop;
    this.#passKind = kind;
    const started = Date.now();
    try {
      const report = await this.#engine.pass({
        sweep: kind === 'sweep',
        stop: AbortSignal.any([stop.signal, this.#shutdown.signal]),
        abort: this.#hardAbort.signal,
      });
      const results = report.run?.results ?? [];
      const count = (status: string): number => results.filter((r) => r.status === status).length;
      this.#log.info(
        {
          kind,
          commit: report.commit,
          ops: results.length,
          changed: count('changed'),
          deleted: count('deleted'),
          failed: count('failed'),
          drifted: count('drifted'),
          cancelled: count('cancelled'),
          converged: report.converged,
          ms: Date.now() - started,
        },
        'pass finished',
      );
      if (stop.signal.aborted && kind === 'sweep') this.request('sweep'); // a superseded sweep still owes its full read
      this.onPass?.(report);
    } catch (err) {
      this.#log.error({ kind, error: describeError(err).message, code: describeError(err).code }, 'pass failed');
    } finally {
      this.#passStop = undefined;
      this.#passKind = undefined;
    }
    await this.#engine.pool.closeIdle(this.#config.run.sessionIdleMs);
    this.#scheduleRetry();
  }

  #schedulePoll(): void {
    const { pollIntervalMs, pollJitter } = this.#config.repo;
    const delay = pollIntervalMs * (1 + pollJitter * (this.#random() * 2 - 1));
    const timer = setTimeout(() => {
      this.#timers = this.#timers.filter((t) => t !== timer);
      void this.#poll().finally(() => {
        if (!this.#shutdown.signal.aborted) this.#schedulePoll();
      });
    }, Math.max(100, delay));
    timer.unref();
    this.#timers.push(timer);
  }

  /** Between passes a poll just requests one (the pass fetches); during one, it fetches to see whether to supersede it. */
  async #poll(): Promise<void> {
    if (!this.#passStop) {
      this.request('delta');
      return;
    }
    if (this.#polling) return;
    this.#polling = true;
    try {
      const head = await this.#engine.fetchHead(this.#shutdown.signal);
      if (this.#passStop && this.#engine.isNew(head)) {
        this.#log.info({ commit: head, superseding: this.#passKind }, 'newer commit: superseding the running pass');
        this.#passStop.abort();
        this.request('delta');
      }
    } catch (err) {
      this.#log.warn({ error: describeError(err).message }, 'poll fetch failed');
    } finally {
      this.#polling = false;
    }
  }

  #scheduleRetry(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const at = this.#engine.store.nextRetryAt();
    if (at === null || this.#shutdown.signal.aborted) return;
    this.#retryTimer = setTimeout(() => this.request('delta'), Math.max(1_000, at - Date.now()));
    this.#retryTimer.unref();
  }

  /**
   * SIGTERM: stop starting work, let in-flight operations finish within the drain
   * deadline, then abort them, then close sessions and the state.
   */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#log.info({ drainMs: this.#config.drainMs }, 'stopping: draining in-flight operations');
      for (const t of this.#timers) clearTimeout(t);
      if (this.#retryTimer) clearTimeout(this.#retryTimer);
      this.#shutdown.abort();
      this.#wake?.();
      const deadline = setTimeout(() => {
        this.#log.warn({}, 'drain deadline passed: aborting in-flight operations');
        this.#hardAbort.abort();
      }, this.#config.drainMs);
      deadline.unref();
      // run() returns once the current pass settles; the caller awaits it, then closes the engine.
    })();
    return this.#stopped;
  }
}
