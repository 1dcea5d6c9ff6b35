import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import { CancelledError, DependencyError, describeError, isCancellation, ProviderError, retryAfterOf, SessionLostError, TimeoutError } from '../errors.js';
import { delay, type Applied, type Log, type OpContext, type Secrets, type TargetSpec } from '../provider.js';
import type { Op, Plan } from '../plan/types.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { deadline, type Deadline } from './deadline.js';
import { OperationSteps, verifiedResource, type Outcome, type PendingWrite } from './operation.js';
import type { Journal, JournalView, OpResult } from './types.js';

export type { Journal, JournalView, OpResult, OpStatus } from './types.js';
import type { ProviderRegistry } from './registry.js';
import type { SessionPool } from './sessions.js';

export interface RunnerOptions {
  /** Operations in flight across all targets; default 64. */
  concurrency: number;
  /**
   * Operations in flight per target, for every provider; by default (undefined) what the
   * target's provider takes at once on its one session (Provider.perTarget: 1 unless it says).
   */
  perTarget: number | undefined;
  /** Deadline for one operation (connect, read, apply, verify); default 120s. */
  opTimeoutMs: number;
  /** Tries per operation within a pass for retryable errors; default 3. */
  maxAttempts: number;
  /** Backoff between those tries. */
  backoff: BackoffOptions;
  /** When a failed resource is tried again by a later pass; grows with its failure count. */
  retryLater: BackoffOptions;
}

export const DEFAULT_RUNNER_OPTIONS: RunnerOptions = {
  concurrency: 64,
  perTarget: undefined,
  opTimeoutMs: 120_000,
  maxAttempts: 3,
  backoff: { baseMs: 1_000, maxMs: 30_000 },
  retryLater: { baseMs: 30_000, maxMs: 30 * 60_000 },
};

export interface RunReport {
  results: OpResult[];
  durationMs: number;
}

export interface RunContext {
  /** apply: make changes. plan: read and diff only (the same code path minus the writes). */
  mode: 'apply' | 'plan';
  /** Stops starting new work and cancels backoff waits (a newer commit superseded this pass, or shutdown began). */
  stop: AbortSignal;
  /** Aborts operations in flight (shutdown deadline passed). */
  abort: AbortSignal;
  /** Desired Target specs by name; deletions fall back to the spec recorded with the tombstone. */
  targets: (name: string) => TargetSpec | undefined;
  /** Progress, for the CLI. */
  onResult?: (result: OpResult) => void;
  /** Why an op must not touch its target now (a pause in force), if it must not. */
  paused?: (op: Op) => string | undefined;
}

/** What a dependency may be for its dependents to go ahead: the spec is on the target (or, report-only, deliberately left). */
const SATISFIED = new Set<string>(['converged', 'changed', 'pending-reboot', 'drifted', 'deleted', 'planned']);

/**
 * One op; or every op of one target whose provider applies them as a single
 * transaction (`by: 'provider'`); or every op of one kind on one target whose
 * kind writes them in one call (`by: 'kind'`, KindHandler.applyBatch).
 */
interface Unit {
  target: string | null;
  ops: Op[];
  batch: boolean;
  by?: 'provider' | 'kind';
}

type Settled = Map<string, Outcome | { error: unknown }>;

/** A unit's last attempt: every member's result, or why it stopped, with what its members settled before it did. */
type UnitResult = { results: Settled; attempts: number } | { cancelled: true; attempts: number; settled?: Settled } | { error: unknown; attempts: number; settled?: Settled };

/** A transaction that stopped after some of its members had settled (converged on read, failed alone): they keep their results. */
class BatchFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly settled: Settled,
  ) {
    super(describeError(cause).message);
  }
}

interface Deferred {
  promise: Promise<OpResult>;
  resolve(result: OpResult): void;
}

/**
 * Works a plan off a bounded queue: a global limit, a lane per target so one slow
 * or dead target never stalls the others, dependencies in order, a deadline per
 * operation, retries with backoff for retryable errors only. Level-based: every
 * operation re-reads the target and diffs before it acts, and re-reads after to
 * verify. A transactional provider gets all of one target's writes in one
 * transaction (Provider.applyBatch); the reads, journal and verification stay per
 * resource.
 */
export class Runner {
  readonly #pool: SessionPool;
  readonly #journal: Journal | undefined;
  #options: RunnerOptions;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #secrets: Secrets;
  readonly #keyedHash: (value: Buffer | string) => string;
  readonly #steps: OperationSteps;
  /** Per target, until when it asked to be left alone (its last Retry-After, epoch ms). */
  readonly #quietUntil = new Map<string, number>();

  constructor(deps: {
    registry: ProviderRegistry;
    pool: SessionPool;
    journal?: Journal;
    /** Plan mode without a journal to write may still read one (a dry run that says what is unsettled). */
    view?: JournalView;
    log: Log;
    secrets: Secrets;
    keyedHash: (value: Buffer | string) => string;
    options?: Partial<RunnerOptions>;
    now?: () => number;
  }) {
    this.#secrets = deps.secrets;
    this.#keyedHash = deps.keyedHash;
    this.#pool = deps.pool;
    this.#journal = deps.journal;
    this.#options = { ...DEFAULT_RUNNER_OPTIONS, ...deps.options };
    this.#log = deps.log;
    this.#now = deps.now ?? Date.now;
    this.#steps = new OperationSteps(deps.registry, deps.journal, deps.view ?? deps.journal);
  }

  /** New queue settings (a config reload); the next pass uses them. */
  configure(options: Partial<RunnerOptions>): void {
    this.#options = { ...this.#options, ...options };
  }

  async run(plan: Plan, ctx: RunContext): Promise<RunReport> {
    const started = this.#now();
    if (ctx.mode === 'apply' && !this.#journal) throw new Error('apply needs a journal');
    this.#pool.newPass();
    // Every operation in flight listens on the pass's abort signal (up to `concurrency` at once).
    setMaxListeners(0, ctx.abort, ctx.stop);
    const global = new PQueue({ concurrency: this.#options.concurrency });
    const lanes = new Map<string, PQueue>();
    const lane = (unit: Unit): PQueue => {
      const key = unit.target ?? '';
      let q = lanes.get(key);
      if (!q) lanes.set(key, (q = new PQueue({ concurrency: this.#perTarget(unit, ctx) })));
      return q;
    };
    const inPlan = new Set(plan.ops.map((op) => op.id));
    const deferred = new Map<string, Deferred>();
    for (const op of plan.ops) {
      let resolve!: (result: OpResult) => void;
      const promise = new Promise<OpResult>((r) => (resolve = r)).then((result) => {
        ctx.onResult?.(result);
        return result;
      });
      deferred.set(op.key, { promise, resolve });
    }
    const units = this.#units(plan, ctx);
    const notify = subscribersByResource(plan.ops);
    await Promise.all(units.map((unit) => this.#runUnit(unit, plan.commit, ctx, lane, global, deferred, inPlan, notify)));
    const results = await Promise.all(plan.ops.map((op) => deferred.get(op.key)!.promise));
    return { results, durationMs: this.#now() - started };
  }

  /**
   * Groups the ops of transactional targets into one unit per target (apply
   * only), and the ops of a kind that writes in one call into one unit per
   * target and kind (plan too: its reads are shared) — unless a dependency
   * cycle through another unit forbids it.
   */
  #units(plan: Plan, ctx: RunContext): Unit[] {
    const groups = new Map<string, { by: 'provider' | 'kind'; ops: Op[] }>();
    const groupOf = new Map<string, string>();
    for (const op of plan.ops) {
      if (op.target === null) continue;
      let key: string | undefined;
      let by: 'provider' | 'kind' = 'provider';
      try {
        const placed = this.#steps.place(op, ctx.targets);
        if (ctx.mode === 'apply' && placed.provider.applyBatch) key = op.target;
        else if (placed.handler.applyBatch) {
          key = `${op.target}\u0000${op.kind}`;
          by = 'kind';
        }
      } catch {
        // unknown kind or target: runs alone and reports the error
      }
      if (key === undefined) continue;
      const group = groups.get(key) ?? groups.set(key, { by, ops: [] }).get(key)!;
      group.ops.push(op);
      groupOf.set(op.key, key);
    }
    const drop = (key: string): void => {
      for (const op of groups.get(key)?.ops ?? []) groupOf.delete(op.key);
      groups.delete(key);
    };
    for (const [key, group] of groups) if (group.ops.length < 2) drop(key);
    // A group waits as one: if its wait on another unit leads back to it, batching would deadlock.
    // Unbatching only splits units, which cannot close a new cycle, so one look is enough.
    if (groups.size > 0) for (const key of groupsInCycles(plan.ops, (op) => groupOf.get(op.key))) drop(key);
    const units: Unit[] = [];
    const emitted = new Set<string>();
    for (const op of plan.ops) {
      const key = groupOf.get(op.key);
      const group = key !== undefined ? groups.get(key) : undefined;
      if (!group) units.push({ target: op.target, ops: [op], batch: false });
      else if (!emitted.has(key!)) {
        emitted.add(key!);
        units.push({ target: op.target, ops: group.ops, batch: true, by: group.by });
      }
    }
    return units;
  }

  async #runUnit(
    unit: Unit,
    commit: string,
    ctx: RunContext,
    lane: (unit: Unit) => PQueue,
    global: PQueue,
    deferred: Map<string, Deferred>,
    inPlan: Set<string>,
    notify: Map<string, string[]>,
  ): Promise<void> {
    const started = this.#now();
    const finish = (op: Op, partial: Partial<OpResult> & Pick<OpResult, 'action' | 'status'>): void => {
      deferred.get(op.key)!.resolve({ key: op.key, id: op.id, target: op.target, cause: op.cause, changes: [], attempts: 0, ...partial, durationMs: this.#now() - started });
    };

    // Dependencies: wait for everything outside the unit; inside a unit, order is the provider's business.
    const members = new Set(unit.ops.map((op) => op.key));
    const outside = [...new Set(unit.ops.flatMap((op) => op.waitFor).filter((k) => !members.has(k) && deferred.has(k)))];
    const upstream = new Map(await Promise.all(outside.map(async (k) => [k, await deferred.get(k)!.promise] as const)));
    const runnable: Op[] = [];
    const held = new Map<string, OpResult['status']>();
    for (const op of unit.ops) {
      const pause = ctx.paused?.(op);
      if (pause) {
        // Break-glass: neither read nor changed. What waits on it is skipped quietly below.
        held.set(op.key, 'paused');
        finish(op, paused(op, pause));
        continue;
      }
      const waits = op.waitFor.map((k) => upstream.get(k) ?? (held.has(k) ? { id: k, status: held.get(k)! } : undefined)).filter((r) => r !== undefined);
      const skipped = waits.find((r) => r.status === 'cancelled' || r.status === 'paused');
      if (skipped) {
        // Work cancelled (a newer commit, shutdown) or paused upstream holds what waits on it; it is not a failure to record.
        held.set(op.key, skipped.status);
        finish(op, { action: op.action, status: skipped.status, ...(skipped.status === 'paused' ? { note: `waits on paused ${skipped.id}` } : {}) });
        continue;
      }
      const blockedBy = waits.find((r) => !SATISFIED.has(r.status));
      const notConverged = ctx.mode === 'apply' && op.action !== 'delete' ? op.resource.meta.dependsOn.find((dep) => !inPlan.has(dep) && !SATISFIED.has(this.#journal!.status(dep) ?? 'unknown')) : undefined;
      if (blockedBy || notConverged) {
        const error = new DependencyError(blockedBy ? `waiting on ${blockedBy.id}, which is ${blockedBy.status}` : `waiting on ${notConverged}, which is ${this.#journal!.status(notConverged!) ?? 'unknown'}`);
        if (ctx.mode === 'apply') this.#recordFailure(op, commit, error, 'blocked', 0);
        held.set(op.key, 'blocked');
        finish(op, { action: op.action, status: 'blocked', error: { code: error.code, message: error.message } });
        continue;
      }
      runnable.push(op);
    }
    if (runnable.length === 0) return;
    // A dry run says a subscriber will act when what it subscribes to is planned to change (apply journals it instead).
    const planned = new Map<string, string[]>();
    if (ctx.mode === 'plan') {
      for (const op of runnable) {
        const changed = (op.resource.meta.subscribes ?? []).filter((id) => {
          const u = upstream.get(id);
          return u !== undefined && u.status === 'planned' && u.changes.length > 0;
        });
        if (changed.length > 0) planned.set(op.key, changed);
      }
    }
    const pass: PassFacts = { notify, planned };

    const outcome = await this.#retrying(unit, ctx, lane, global, () => (unit.batch ? this.#executeBatch(runnable, commit, ctx, unit.by ?? 'provider', pass) : this.#executeSingle(runnable[0]!, commit, ctx, pass)));
    for (const op of runnable) {
      const settled = 'results' in outcome ? outcome.results.get(op.key) : outcome.settled?.get(op.key);
      if (!settled && 'cancelled' in outcome) {
        finish(op, { action: op.action, status: 'cancelled', attempts: outcome.attempts });
        continue;
      }
      const result = settled ?? { error: 'error' in outcome ? outcome.error : new CancelledError('the pass was superseded or is stopping') };
      if ('error' in result) {
        const { code, message } = describeError(result.error);
        // Held inside a transaction by a member that failed first: blocked, like a dependency outside it.
        const status = result.error instanceof DependencyError ? 'blocked' : 'failed';
        if (status === 'failed') this.#log.warn({ id: op.id, target: op.target, code, error: message, attempts: outcome.attempts }, 'operation failed');
        if (ctx.mode === 'apply') this.#recordFailure(op, commit, result.error, status, outcome.attempts);
        finish(op, { action: op.action, status, error: { code, message }, attempts: outcome.attempts });
      } else {
        finish(op, { ...result, attempts: outcome.attempts });
      }
    }
  }

  /** Runs a unit in its lane within the global limit, retrying retryable errors with backoff; the queue alone decides. */
  async #retrying(unit: Unit, ctx: RunContext, lane: (unit: Unit) => PQueue, global: PQueue, work: () => Promise<Settled>): Promise<UnitResult> {
    for (let attempt = 1; ; attempt++) {
      if (ctx.stop.aborted) return { cancelled: true, attempts: attempt - 1 };
      try {
        // Queued work checks the stop signal when its turn comes (no listener per queued op on one signal).
        const results = await lane(unit).add(async () => {
          if (ctx.stop.aborted) throw new CancelledError('the pass was superseded or is stopping');
          // Waits in its lane, not in the global limit: only this target's work waits with it.
          await this.#leaveAlone(unit, ctx);
          try {
            return await global.add(() => {
              if (ctx.stop.aborted) throw new CancelledError('the pass was superseded or is stopping');
              return work();
            });
          } catch (err) {
            // Noted before the lane lets the target's next unit in.
            this.#noteRetryAfter(unit.target, err instanceof BatchFailure ? err.cause : err);
            throw err;
          }
        });
        return { results: results!, attempts: attempt };
      } catch (thrown) {
        const err = thrown instanceof BatchFailure ? thrown.cause : thrown;
        const settled = thrown instanceof BatchFailure ? { settled: thrown.settled } : {};
        if (ctx.stop.aborted && isCancellation(err)) return { cancelled: true, attempts: attempt, ...settled };
        const { code, retryable } = describeError(err);
        if (retryable && attempt < this.#options.maxAttempts) {
          // The target's Retry-After is a floor; one longer than an attempt may take is left to a later pass.
          const asked = retryAfterOf(err);
          const limitMs = asked !== undefined ? this.#unitDeadlineMs(unit, ctx) : 0;
          if (asked !== undefined && asked > limitMs) {
            const waited = toldToWait(err as ProviderError, asked, limitMs);
            return { error: waited, attempts: attempt, ...settled };
          }
          const wait = Math.max(backoffDelay(attempt, this.#options.backoff), asked ?? 0);
          this.#log.debug({ target: unit.target, ops: unit.ops.length, code, attempt, waitMs: wait, ...(asked !== undefined ? { retryAfterMs: asked } : {}) }, 'retrying');
          try {
            await delay(wait, ctx.stop, 'waiting to retry');
            continue;
          } catch {
            return { cancelled: true, attempts: attempt };
          }
        }
        // A target that times out or drops the session is charged like a failed connect: its next ops fail fast.
        if (err instanceof TimeoutError || err instanceof SessionLostError) this.#pool.markBroken(unit.target ?? '', err);
        return { error: err, attempts: attempt, ...settled };
      }
    }
  }

  /** How many of a target's units run at once: the configured number, else what its provider takes. */
  #perTarget(unit: Unit, ctx: RunContext): number {
    if (this.#options.perTarget !== undefined) return this.#options.perTarget;
    try {
      return this.#steps.place(unit.ops[0]!, ctx.targets).provider.perTarget ?? 1;
    } catch {
      return 1; // unknown kind or target: its unit fails alone
    }
  }

  /** A target's Retry-After: nothing is sent to it before then, by any unit of any pass. */
  #noteRetryAfter(target: string | null, err: unknown): void {
    const asked = retryAfterOf(err);
    if (asked === undefined || target === null) return;
    const until = this.#now() + asked;
    if (until > (this.#quietUntil.get(target) ?? 0)) this.#quietUntil.set(target, until);
  }

  /**
   * Before a unit sends anything: waits out what is left of its target's
   * Retry-After, or, when that is longer than one attempt may take, fails at
   * once without sending (a later pass takes it up, not before).
   */
  async #leaveAlone(unit: Unit, ctx: RunContext): Promise<void> {
    if (unit.target === null) return;
    const until = this.#quietUntil.get(unit.target);
    if (until === undefined) return;
    const left = until - this.#now();
    if (left <= 0) {
      this.#quietUntil.delete(unit.target);
      return;
    }
    const limitMs = this.#unitDeadlineMs(unit, ctx);
    if (left > limitMs) {
      throw new ProviderError(`target ${unit.target}: the target asked to wait ${Math.ceil(left / 1000)} s more (the Retry-After of an earlier answer), longer than one attempt may take (${Math.ceil(limitMs / 1000)} s)`, {
        retryable: true,
        retryAfterMs: left,
        notSent: true,
      });
    }
    this.#log.debug({ target: unit.target, waitMs: left }, 'waiting out the target\'s Retry-After');
    await delay(left, ctx.stop, 'waiting out the target\'s Retry-After');
  }

  #opContext(targetName: string, id: string, limit: Deadline): OpContext {
    return { signal: limit.signal, deadlineAt: limit.at, log: this.#log.child({ target: targetName, id }), secrets: this.#secrets, keyedHash: this.#keyedHash };
  }

  /** The deadline one attempt of this unit gets (the run's, when a kind or target cannot be placed). */
  #unitDeadlineMs(unit: Unit, ctx: RunContext): number {
    try {
      return this.#deadlineFor(unit.ops, ctx);
    } catch {
      return this.#options.opTimeoutMs;
    }
  }

  /**
   * The run's deadline, or longer where the kind says its operations take longer
   * (reboots, firmware). A transaction reads and verifies each member in turn, so
   * its deadline grows by one step per eight members.
   */
  #deadlineFor(ops: Op[], ctx: RunContext): number {
    let ms = this.#options.opTimeoutMs;
    for (const op of ops) ms = Math.max(ms, this.#steps.place(op, ctx.targets).handler.deadlineMs?.(op.resource) ?? 0);
    return ms * Math.ceil(ops.length / 8);
  }

  /** An op that must not go ahead now: paused since it was queued, or held by a member of its own transaction that did not settle well. */
  #heldInUnit(op: Op, settled: Settled, byKey: Map<string, Op>, ctx: RunContext): Outcome | { error: unknown } | undefined {
    const pause = ctx.paused?.(op);
    if (pause) return paused(op, pause);
    for (const key of op.waitFor) {
      const dep = settled.get(key);
      if (!dep) continue;
      const id = byKey.get(key)?.id ?? key;
      if ('error' in dep) return { error: new DependencyError(`waiting on ${id}, which ${dep.error instanceof DependencyError ? 'is blocked' : 'failed'}`) };
      if (dep.status === 'paused') return paused(op, `waits on paused ${id}`);
      if (!SATISFIED.has(dep.status)) return { error: new DependencyError(`waiting on ${id}, which is ${dep.status}`) };
    }
    return undefined;
  }

  async #executeSingle(op: Op, commit: string, ctx: RunContext, pass: PassFacts): Promise<Settled> {
    // A pause can land while the op waits for its turn in the queue.
    const pause = ctx.paused?.(op);
    if (pause) return new Map([[op.key, paused(op, pause)]]);
    const { handler, provider, targetName, targetSpec } = this.#steps.place(op, ctx.targets);
    const ms = this.#deadlineFor([op], ctx);
    const limit = deadline(ms, ctx.abort, op.id);
    try {
      const opCtx = this.#opContext(targetName, op.id, limit);
      const session = await limit.guard(() => this.#pool.session(targetName, targetSpec, provider, limit.signal));
      const prepared = await limit.guard(() => this.#steps.prepare(op, commit, ctx.mode, handler, session, opCtx, undefined, pass.planned.get(op.key)));
      if ('done' in prepared) return new Map([[op.key, prepared.done]]);
      const w = prepared.write;
      const opId = this.#steps.intent(w, commit, notifiedBy(w, pass));
      try {
        await this.#steps.durable();
        const applyCtx: OpContext = { ...opCtx, checkpoint: (progress) => this.#steps.checkpoint([opId], progress) };
        const applied = await limit.guard(() => this.#steps.write(w, session, applyCtx));
        return new Map([[op.key, await limit.guard(() => this.#steps.verifyAndRecord(w, opId, applied, commit, session, opCtx))]]);
      } catch (err) {
        this.#steps.failed(opId, err);
        throw err;
      }
    } finally {
      limit.dispose();
    }
  }

  /**
   * All writes of one target in one transaction: read and diff every member,
   * journal every intent, one applyBatch, then verify and record each member.
   * If the transaction throws, nothing was changed (the provider's promise) and
   * the whole unit is retried or failed, members that settled before it keeping
   * their results; a member that fails verification fails alone, and a member
   * waiting on one that failed (or is paused) is held out of the transaction.
   */
  async #executeBatch(ops: Op[], commit: string, ctx: RunContext, by: 'provider' | 'kind', pass: PassFacts): Promise<Settled> {
    const { provider, handler: kind, targetName, targetSpec } = this.#steps.place(ops[0]!, ctx.targets);
    // A kind batch: one kind's writes in one call, and its reads in one call when it can.
    const writeAll = by === 'kind' ? kind.applyBatch!.bind(kind) : provider.applyBatch!.bind(provider);
    const readMany = by === 'kind' && kind.readMany ? kind : undefined;
    const ms = this.#deadlineFor(ops, ctx);
    const limit = deadline(ms, ctx.abort, by === 'kind' ? `${ops.length} ${ops[0]!.kind} on ${targetName}` : `transaction on ${targetName}`);
    const byKey = new Map(ops.map((op) => [op.key, op]));
    const results: Settled = new Map();
    try {
      const session = await limit.guard(() => this.#pool.session(targetName, targetSpec, provider, limit.signal));
      const writes: PendingWrite[] = [];
      const unitCtx = this.#opContext(targetName, `${ops.length} resources`, limit);
      const preRead = readMany ? await limit.guard(() => this.#steps.readMany(ops, ctx.mode, readMany, session, unitCtx)) : undefined;
      // Members come in dependency order, so what one waits on has settled (or is a pending write) by its turn.
      for (const op of ops) {
        const held = this.#heldInUnit(op, results, byKey, ctx);
        if (held) {
          results.set(op.key, held);
          continue;
        }
        const { handler } = this.#steps.place(op, ctx.targets);
        try {
          const prepared = await limit.guard(() => this.#steps.prepare(op, commit, ctx.mode, handler, session, this.#opContext(targetName, op.id, limit), preRead?.get(op.key), pass.planned.get(op.key)));
          if ('done' in prepared) results.set(op.key, prepared.done);
          else writes.push(prepared.write);
        } catch (err) {
          // Cancelled, or the session is in trouble: the unit as a whole stops (and may be retried).
          if (isCancellation(err) || (!(err instanceof ProviderError) && describeError(err).retryable)) throw err;
          results.set(op.key, { error: err });
        }
      }
      if (writes.length === 0) return results;
      const opIds = writes.map((w) => this.#steps.intent(w, commit, notifiedBy(w, pass)));
      const txCtx: OpContext = {
        ...this.#opContext(targetName, `${writes.length} resources`, limit),
        checkpoint: (progress) => this.#steps.checkpoint(opIds, progress),
      };
      let applied: Array<Applied | void>;
      try {
        await this.#steps.durable();
        applied = await limit.guard(() => writeAll(session, writes.map((w) => ({ r: w.r, changes: w.changes, remove: w.remove, actual: w.actual })), txCtx));
      } catch (err) {
        opIds.forEach((id) => this.#steps.failed(id, err));
        throw err;
      }
      let reread: Array<{ actual: unknown }> | undefined;
      if (readMany) {
        try {
          const actuals = await limit.guard(() => readMany.readMany!(session, writes.map((w, i) => verifiedResource(w, applied[i])), { ...unitCtx, afterWrite: true }));
          reread = actuals.map((actual) => ({ actual }));
        } catch (err) {
          // Written, but nothing verified: every entry stays open with the outcome the error implies.
          opIds.forEach((id) => this.#steps.failed(id, err));
          if (isCancellation(err)) throw err;
          for (const w of writes) results.set(w.op.key, { error: err });
          return results;
        }
      }
      for (const [i, w] of writes.entries()) {
        try {
          results.set(w.op.key, await limit.guard(() => this.#steps.verifyAndRecord(w, opIds[i]!, applied[i], commit, session, this.#opContext(targetName, w.op.id, limit), reread?.[i])));
        } catch (err) {
          if (isCancellation(err)) {
            // Written but not verified: every entry still open is an outcome nobody knows yet.
            opIds.slice(i).forEach((id) => this.#steps.failed(id, err));
            throw err;
          }
          this.#steps.failed(opIds[i]!, err);
          results.set(w.op.key, { error: err });
        }
      }
      return results;
    } catch (err) {
      throw new BatchFailure(err, results);
    } finally {
      limit.dispose();
    }
  }

  #recordFailure(op: Op, commit: string, err: unknown, status: 'failed' | 'blocked', attempts: number): void {
    const { code, message } = describeError(err);
    if (op.action === 'delete') {
      if (op.tombstoneId !== undefined) this.#journal!.tombstoneFailed({ tombstoneId: op.tombstoneId, resourceId: op.id, kind: op.kind, target: op.target, code, message, commit });
      return;
    }
    // The delay before a later pass tries again grows with every failure recorded, not just this pass's,
    // and is never shorter than the target's Retry-After.
    const failures = this.#journal!.attempts(op.id) + Math.max(attempts, 1);
    const later = Math.max(backoffDelay(failures, this.#options.retryLater), retryAfterOf(err) ?? 0);
    this.#journal!.markFailed({
      id: op.id,
      kind: op.kind,
      target: op.target,
      status,
      code,
      message,
      attempts: Math.max(attempts, 1),
      nextAttemptAt: this.#now() + later,
      commit,
      cause: op.cause,
    });
  }
}

/** What a pass knows of subscriptions (ssh.Service restartOn): who is notified by a write, and (plan) what is planned to change. */
interface PassFacts {
  /** Resource id -> the ops' resources that subscribe to it. */
  notify: Map<string, string[]>;
  /** Plan mode: op key -> the subscriptions upstream plans to change. */
  planned: Map<string, string[]>;
}

/** Resource id -> the resources of the plan subscribed to it (ResourceMeta.subscribes). */
function subscribersByResource(ops: Op[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const op of ops) {
    if (op.action === 'delete') continue;
    for (const id of op.resource.meta.subscribes ?? []) (out.get(id) ?? out.set(id, []).get(id)!).push(op.id);
  }
  return out;
}

/** Whom a write notifies: subscribers of what it converges (a removal notifies nobody: what subscribed to it is gone too). */
function notifiedBy(w: PendingWrite, pass: PassFacts): string[] | undefined {
  return w.remove ? undefined : pass.notify.get(w.op.id);
}

/**
 * The batched targets that sit on a cycle of the unit graph (a unit is a group or
 * a lone op; it waits on every unit any of its ops waits on). Plans are acyclic
 * per op, so every such cycle runs through a group.
 */
function groupsInCycles(ops: Op[], groupOf: (op: Op) => string | undefined): string[] {
  const unitOf = (op: Op): string => {
    const key = groupOf(op);
    return key !== undefined ? `g:${key}` : `o:${op.key}`;
  };
  const byKey = new Map(ops.map((op) => [op.key, op]));
  const edges = new Map<string, Set<string>>();
  for (const op of ops) {
    const from = unitOf(op);
    const out = edges.get(from) ?? edges.set(from, new Set()).get(from)!;
    for (const k of op.waitFor) {
      const dep = byKey.get(k);
      if (dep && unitOf(dep) !== from) out.add(unitOf(dep));
    }
  }
  // Tarjan's strongly connected components, iteratively (plans can be deep).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cyclic: string[] = [];
  let next = 0;
  for (const root of edges.keys()) {
    if (index.has(root)) continue;
    const work: Array<{ node: string; children: Iterator<string> }> = [];
    const visit = (node: string): void => {
      index.set(node, next);
      low.set(node, next++);
      stack.push(node);
      onStack.add(node);
      work.push({ node, children: (edges.get(node) ?? new Set<string>()).values() });
    };
    visit(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const child = frame.children.next();
      if (!child.done) {
        if (!index.has(child.value)) visit(child.value);
        else if (onStack.has(child.value)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child.value)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== frame.node);
      if (component.length > 1) for (const unit of component) if (unit.startsWith('g:')) cyclic.push(unit.slice(2));
    }
  }
  return cyclic;
}

/**
 * A retryable error whose Retry-After is longer than one attempt may take: not
 * retried in this pass, failed now with what the target asked (the same code,
 * still retryable, so a later pass tries again no earlier than that).
 */
function toldToWait(err: ProviderError, askedMs: number, limitMs: number): ProviderError {
  const s = (ms: number): string => String(Math.ceil(ms / 1000));
  // A provider that already said what the target asked (a poll past its deadline) is not repeated.
  const said = err.message.includes('the target asked to wait') ? err.message : `${err.message}; the target asked to wait ${s(askedMs)} s before trying again, longer than one attempt may take (${s(limitMs)} s)`;
  return new ProviderError(`${said}: not retried in this pass`, {
    cause: err,
    retryable: true,
    retryAfterMs: askedMs,
    notSent: err.notSent,
  });
}

/** Neither read nor changed: a pause is in force on it, or on what it waits for. */
function paused(op: Op, note: string): Outcome {
  return { action: op.action, cause: op.cause, status: 'paused', changes: [], note };
}
