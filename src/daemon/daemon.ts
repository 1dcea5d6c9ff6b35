import { describeError } from '../errors.js';
import type { Log } from '../provider.js';
import type { Config } from './config.js';
import type { Plan } from '../plan/types.js';
import type { OpResult } from '../run/runner.js';
import type { Engine, PassReport } from './engine.js';

type PassKind = 'delta' | 'sweep';

/** What a pass reports as it goes, for `plumb sync --wait`. */
export type PassEvent = { type: 'plan'; commit: string; total: number } | { type: 'result'; result: OpResult };

/** Requests merged into the next pass: the strongest kind, the union of selections, everyone waiting on it. */
interface Wanted {
  kind: PassKind;
  /** Targets or Kind/names to read besides what changed; 'all' for a full sweep. */
  only: Set<string> | 'all' | undefined;
  waiters: Array<(report: PassReport | undefined) => void>;
  listeners: Array<(event: PassEvent) => void>;
  /** Already superseded once: a newer commit now waits for it, so a stream of commits cannot starve it. */
  superseded?: boolean;
}

/**
 * The long-running loop. Level-based, like a controller: a poll, the sweep timer
 * and retry timers only *request* a pass; the pass itself re-reads Git and the
 * targets. Passes never overlap. A newer commit arriving mid-pass supersedes it:
 * queued work and backoff waits are cancelled, in-flight operations finish, and
 * the next pass works toward the newest commit.
 */
export class Daemon {
  readonly #engine: Engine;
  #config: Config;
  readonly #log: Log;
  readonly #random: () => number;
  #wanted: Wanted | null = { kind: 'sweep', only: 'all', waiters: [], listeners: [] }; // start-up reads everything
  #wake: (() => void) | undefined;
  /** The pass in progress: what it serves, and how to supersede it. */
  #running: { wanted: Wanted; stop: AbortController } | undefined;
  readonly #shutdown = new AbortController();
  readonly #hardAbort = new AbortController();
  #timers: NodeJS.Timeout[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #polling = false;
  #stopped: Promise<void> | undefined;
  /** Reports of finished passes (metrics, readiness, notifications, tests). */
  onPass?: (report: PassReport, kind: PassKind) => void;
  /** Every pass's progress, whoever asked for it (metrics). */
  onEvent?: (event: PassEvent) => void;

  constructor(engine: Engine, config: Config, log: Log, options: { random?: () => number } = {}) {
    this.#engine = engine;
    this.#config = config;
    this.#log = log;
    this.#random = options.random ?? Math.random;
  }

  #sweepTimer: NodeJS.Timeout | undefined;

  /** Runs until stop() completes. */
  async run(): Promise<void> {
    this.#schedulePoll();
    this.#scheduleSweeps();
    while (!this.#shutdown.signal.aborted) {
      if (this.#wanted === null) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const wanted = this.#wanted;
      this.#wanted = null;
      await this.#pass(wanted);
    }
  }

  /** Asks for a pass; a sweep outranks a delta; selections add up. Resolves with the report of the pass that served it. */
  request(kind: PassKind, options: { only?: string[]; onEvent?: (event: PassEvent) => void } = {}): Promise<PassReport | undefined> {
    if (this.#shutdown.signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#merge({
        kind,
        only: kind === 'sweep' && !options.only?.length ? 'all' : options.only?.length ? new Set(options.only) : undefined,
        waiters: [resolve],
        listeners: options.onEvent ? [options.onEvent] : [],
      });
      this.#wake?.();
    });
  }

  #merge(add: Wanted): void {
    const w = this.#wanted;
    if (!w) {
      this.#wanted = add;
      return;
    }
    if (add.kind === 'sweep') w.kind = 'sweep';
    if (w.only === 'all' || add.only === 'all') w.only = 'all';
    else if (add.only) w.only = new Set([...(w.only ?? []), ...add.only]);
    w.waiters.push(...add.waiters);
    w.listeners.push(...add.listeners);
    if (add.superseded) w.superseded = true;
  }

  /** Whether a pass is running now (for /readyz and status). */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  async #pass(wanted: Wanted): Promise<void> {
    const kind = wanted.kind;
    const stop = new AbortController();
    this.#running = { wanted, stop };
    const started = Date.now();
    const emit = (event: PassEvent): void => {
      this.onEvent?.(event);
      for (const listener of wanted.listeners) listener(event);
    };
    let served: PassReport | undefined;
    try {
      const report = await this.#engine.pass({
        sweep: wanted.only === 'all',
        ...(wanted.only instanceof Set ? { only: [...wanted.only] } : {}),
        stop: AbortSignal.any([stop.signal, this.#shutdown.signal]),
        abort: this.#hardAbort.signal,
        onPlan: (plan: Plan) => emit({ type: 'plan', commit: plan.commit, total: plan.ops.length }),
        onResult: (result) => emit({ type: 'result', result }),
      });
      served = report;
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
      if (stop.signal.aborted && !this.#shutdown.signal.aborted) {
        // Superseded by a newer commit: whoever waited, and whatever it owed (a full read), moves to the next pass.
        this.#merge(wanted);
        served = undefined;
      }
      this.onPass?.(report, wanted.only === 'all' ? 'sweep' : 'delta');
    } catch (err) {
      const { code, message } = describeError(err);
      this.#log.error({ kind, error: message, code }, 'pass failed');
      // Whoever waits gets the failure, not silence; the next request or timer tries again.
      served = { commit: null, fetched: null, converged: false, timings: { fetchMs: 0, loadMs: 0, planMs: 0, runMs: 0 }, filesRead: 0, error: { code, message } };
    } finally {
      this.#running = undefined;
    }
    if (served !== undefined || this.#shutdown.signal.aborted) for (const waiter of wanted.waiters) waiter(served);
    await this.#engine.pool.closeIdle(this.#config.run.sessionIdleMs);
    this.#scheduleRetry();
  }

  #scheduleSweeps(): void {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    if (this.#config.sweepIntervalMs <= 0) return;
    this.#sweepTimer = setInterval(() => void this.request('sweep'), this.#config.sweepIntervalMs);
    this.#sweepTimer.unref();
  }

  /** A config reload (SIGHUP, `plumb reload`): the engine takes what it can, then the timers follow. */
  reconfigure(next: Config): string[] {
    const changed = this.#engine.reconfigure(next);
    this.#config = next;
    if (changed.includes('sweep.interval')) this.#scheduleSweeps();
    return changed;
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

  /**
   * Something says the branch moved (a webhook, a push to the watched repo):
   * the same as a poll now, so a new commit also supersedes a running pass.
   */
  poke(): void {
    void this.#poll();
  }

  /** Between passes a poll just requests one (the pass fetches); during one, it fetches to see whether to supersede it. */
  async #poll(): Promise<void> {
    if (!this.#running) {
      void this.request('delta');
      return;
    }
    if (this.#polling) return;
    this.#polling = true;
    try {
      const head = await this.#engine.fetchHead(this.#shutdown.signal);
      const running = this.#running;
      if (running && this.#engine.isNew(head)) {
        if (running.wanted.superseded) {
          this.#log.info({ commit: head, running: running.wanted.kind }, 'newer commit: queued behind the running pass (it was superseded once already)');
        } else {
          this.#log.info({ commit: head, superseding: running.wanted.kind }, 'newer commit: superseding the running pass');
          running.wanted.superseded = true;
          running.stop.abort();
        }
        void this.request('delta');
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
    this.#retryTimer = setTimeout(() => void this.request('delta'), Math.max(1_000, at - Date.now()));
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
      if (this.#sweepTimer) clearInterval(this.#sweepTimer);
      if (this.#retryTimer) clearTimeout(this.#retryTimer);
      this.#shutdown.abort();
      // Requests nobody will serve now: their callers get an answer instead of a hang.
      for (const waiter of this.#wanted?.waiters ?? []) waiter(undefined);
      this.#wanted = null;
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
