import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import {
  CancelledError,
  DependencyError,
  describeError,
  InterruptedError,
  ProviderError,
  SessionLostError,
  TimeoutError,
  VerifyError,
} from '../errors.js';
import type { Change, Json, KindHandler, Log, OpContext, Provider, Resource, Secrets, Session, TargetSpec } from '../provider.js';
import type { Action, Cause, Op, Plan, ResourceStatus } from '../plan/types.js';
import type { Outcome } from '../state/store.js';
import { pointerCovers } from '../util/json-pointer.js';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { deadline, type Deadline } from './deadline.js';
import type { ProviderRegistry } from './registry.js';
import type { SessionPool } from './sessions.js';

/** The journal and records the runner writes; the state store implements it. */
export interface Journal {
  status(id: string): ResourceStatus | undefined;
  hasInterrupted(id: string, specHash: string): boolean;
  resolveInterrupted(id: string): void;
  journalIntent(input: { id: string; kind: string; target: string | null; action: string; cause: Cause; commit: string | null; specHash: string | null; changes: Change[] }): number;
  journalFailed(opId: number, message: string): void;
  journalDone(outcome: Outcome): void;
  markConverged(id: string, observed: Json, applied?: { commit: string; specHash: string }): void;
  markDrifted(id: string, kind: string, target: string | null, changes: Change[], observed: Json, commit: string | null): void;
  markFailed(input: { id: string; kind: string; target: string | null; status: 'failed' | 'blocked'; code: string; message: string; attempts: number; nextAttemptAt: number | null; commit: string | null; cause: Cause }): void;
  tombstoneDone(input: { tombstoneId: number; resourceId: string; kind: string; target: string | null; opId?: number; commit: string | null; before: Json; message: string }): void;
  tombstoneFailed(input: { tombstoneId: number; resourceId: string; kind: string; target: string | null; code: string; message: string; commit: string | null }): void;
  attempts(id: string): number;
  appliedHash(id: string): string | null;
  markPendingReboot(input: { id: string; kind: string; target: string | null; reason: string; observed: Json; commit: string; specHash: string }): void;
  checkpoint(opId: number, progress: Json): void;
  interruptedProgress(id: string, specHash: string): { startedAt: number; progress: Json } | undefined;
}

export interface RunnerOptions {
  /** Operations in flight across all targets; default 16. */
  concurrency: number;
  /** Operations in flight per target; default 1 (one session, one thing at a time on a device). */
  perTarget: number;
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
  concurrency: 16,
  perTarget: 1,
  opTimeoutMs: 120_000,
  maxAttempts: 3,
  backoff: { baseMs: 1_000, maxMs: 30_000 },
  retryLater: { baseMs: 30_000, maxMs: 30 * 60_000 },
};

export type OpStatus = 'converged' | 'changed' | 'pending-reboot' | 'drifted' | 'deleted' | 'failed' | 'blocked' | 'cancelled' | 'planned';

export interface OpResult {
  key: string;
  id: string;
  target: string | null;
  /** The action after reading the target: what was (or, in plan mode, would be) done. */
  action: Action;
  cause: Cause;
  status: OpStatus;
  changes: Change[];
  error?: { code: string; message: string };
  /** Why a converged resource still waits (pending reboot). */
  note?: string;
  attempts: number;
  durationMs: number;
}

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
}

const SUMMARY_LIMIT = 2048;

/** What a dependency may be for its dependents to go ahead: the spec is on the target (or, report-only, deliberately left). */
const SATISFIED = new Set<string>(['converged', 'changed', 'pending-reboot', 'drifted', 'deleted', 'planned']);

/**
 * Works a plan off a bounded queue: a global limit, a lane per target so one slow
 * or dead target never stalls the others, dependencies in order, a deadline per
 * operation, retries with backoff for retryable errors only. Level-based: every
 * operation re-reads the target and diffs before it acts, and re-reads after to
 * verify.
 */
export class Runner {
  readonly #registry: ProviderRegistry;
  readonly #pool: SessionPool;
  readonly #journal: Journal | undefined;
  readonly #options: RunnerOptions;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #secrets: Secrets;
  readonly #keyedHash: (value: Buffer | string) => string;

  constructor(deps: {
    registry: ProviderRegistry;
    pool: SessionPool;
    journal?: Journal;
    log: Log;
    secrets: Secrets;
    keyedHash: (value: Buffer | string) => string;
    options?: Partial<RunnerOptions>;
    now?: () => number;
  }) {
    this.#secrets = deps.secrets;
    this.#keyedHash = deps.keyedHash;
    this.#registry = deps.registry;
    this.#pool = deps.pool;
    this.#journal = deps.journal;
    this.#options = { ...DEFAULT_RUNNER_OPTIONS, ...deps.options };
    this.#log = deps.log;
    this.#now = deps.now ?? Date.now;
  }

  async run(plan: Plan, ctx: RunContext): Promise<RunReport> {
    const started = this.#now();
    if (ctx.mode === 'apply' && !this.#journal) throw new Error('apply needs a journal');
    this.#pool.newPass();
    // Every operation in flight listens on the pass's abort signal (up to `concurrency` at once).
    setMaxListeners(0, ctx.abort, ctx.stop);
    const global = new PQueue({ concurrency: this.#options.concurrency });
    const lanes = new Map<string, PQueue>();
    const lane = (target: string | null): PQueue => {
      const key = target ?? '';
      let q = lanes.get(key);
      if (!q) lanes.set(key, (q = new PQueue({ concurrency: this.#options.perTarget })));
      return q;
    };
    const inPlan = new Set(plan.ops.map((op) => op.id));
    const settled = new Map<string, Promise<OpResult>>();
    for (const op of plan.ops) {
      const waits = op.waitFor.map((k) => settled.get(k)).filter((p): p is Promise<OpResult> => p !== undefined);
      settled.set(
        op.key,
        this.#schedule(op, plan.commit, waits, inPlan, ctx, lane, global).then((result) => {
          ctx.onResult?.(result);
          return result;
        }),
      );
    }
    const results = await Promise.all(settled.values());
    return { results, durationMs: this.#now() - started };
  }

  async #schedule(op: Op, commit: string, waits: Promise<OpResult>[], inPlan: Set<string>, ctx: RunContext, lane: (t: string | null) => PQueue, global: PQueue): Promise<OpResult> {
    const started = this.#now();
    const base = { key: op.key, id: op.id, target: op.target, cause: op.cause };
    const finish = (partial: Omit<OpResult, 'key' | 'id' | 'target' | 'durationMs' | 'cause'> & { cause?: Cause }): OpResult => ({ ...base, ...partial, durationMs: this.#now() - started });

    const upstream = await Promise.all(waits);
    // Work cancelled upstream (a newer commit, shutdown) cancels what waits on it; it is not a failure to record.
    if (upstream.some((r) => r.status === 'cancelled')) return finish({ action: op.action, status: 'cancelled', changes: [], attempts: 0 });
    const blockedBy = upstream.find((r) => !SATISFIED.has(r.status));
    const outside = ctx.mode === 'apply' && op.action !== 'delete' ? op.resource.meta.dependsOn.find((dep) => !inPlan.has(dep) && !SATISFIED.has(this.#journal!.status(dep) ?? 'unknown')) : undefined;
    if (blockedBy || outside) {
      const error = new DependencyError(blockedBy ? `waiting on ${blockedBy.id}, which is ${blockedBy.status}` : `waiting on ${outside}, which is ${this.#journal!.status(outside!) ?? 'unknown'}`);
      if (ctx.mode === 'apply') this.#recordFailure(op, commit, error, 'blocked', 0);
      return finish({ action: op.action, status: 'blocked', changes: [], error: { code: error.code, message: error.message }, attempts: 0 });
    }

    for (let attempt = 1; ; attempt++) {
      if (ctx.stop.aborted) return finish({ action: op.action, status: 'cancelled', changes: [], attempts: attempt - 1 });
      try {
        // Queued work checks the stop signal when its turn comes (no listener per queued op on one signal).
        const outcome = await lane(op.target).add(() => {
          if (ctx.stop.aborted) throw new CancelledError('the pass was superseded or is stopping');
          return global.add(() => {
            if (ctx.stop.aborted) throw new CancelledError('the pass was superseded or is stopping');
            return this.#execute(op, commit, ctx);
          });
        });
        return finish({ ...outcome!, attempts: attempt });
      } catch (err) {
        if (ctx.stop.aborted && (isAbortError(err) || err instanceof CancelledError)) return finish({ action: op.action, status: 'cancelled', changes: [], attempts: attempt });
        const { code, message, retryable } = describeError(err);
        if (retryable && attempt < this.#options.maxAttempts) {
          this.#log.debug({ id: op.id, target: op.target, code, attempt }, 'retrying');
          try {
            await sleep(backoffDelay(attempt, this.#options.backoff), ctx.stop);
            continue;
          } catch {
            return finish({ action: op.action, status: 'cancelled', changes: [], attempts: attempt });
          }
        }
        // A target that times out or drops the session is charged like a failed connect: its next ops fail fast.
        if (err instanceof TimeoutError || err instanceof SessionLostError) this.#pool.markBroken(op.target ?? '', err);
        this.#log.warn({ id: op.id, target: op.target, code, error: message, attempts: attempt }, 'operation failed');
        if (ctx.mode === 'apply') this.#recordFailure(op, commit, err, 'failed', attempt);
        return finish({ action: op.action, status: 'failed', changes: [], error: { code, message }, attempts: attempt });
      }
    }
  }

  #recordFailure(op: Op, commit: string, err: unknown, status: 'failed' | 'blocked', attempts: number): void {
    const { code, message } = describeError(err);
    if (op.action === 'delete') {
      if (op.tombstoneId !== undefined) this.#journal!.tombstoneFailed({ tombstoneId: op.tombstoneId, resourceId: op.id, kind: op.kind, target: op.target, code, message, commit });
      return;
    }
    // The delay before a later pass tries again grows with every failure recorded, not just this pass's.
    const failures = this.#journal!.attempts(op.id) + Math.max(attempts, 1);
    this.#journal!.markFailed({
      id: op.id,
      kind: op.kind,
      target: op.target,
      status,
      code,
      message,
      attempts: Math.max(attempts, 1),
      nextAttemptAt: this.#now() + backoffDelay(failures, this.#options.retryLater),
      commit,
      cause: op.cause,
    });
  }

  async #execute(op: Op, commit: string, ctx: RunContext): Promise<Omit<OpResult, 'key' | 'id' | 'target' | 'durationMs' | 'attempts'>> {
    const kind = this.#registry.kind(op.kind);
    if (!kind) throw new ProviderError(`no provider handles kind ${op.kind}`);
    const targetName = op.target!;
    const targetSpec = ctx.targets(targetName) ?? op.targetSpec;
    if (!targetSpec) throw new ProviderError(`target ${targetName} is not defined any more and its settings were not recorded`);
    const provider = this.#registry.provider(targetSpec.provider) ?? kind.provider;

    const limit = deadline(this.#options.opTimeoutMs, ctx.abort, op.id);
    try {
      return await this.#executeWithin(op, commit, ctx, limit, kind.handler, targetName, targetSpec, provider);
    } finally {
      limit.dispose();
    }
  }

  async #executeWithin(
    op: Op,
    commit: string,
    ctx: RunContext,
    limit: Deadline,
    handler: KindHandler<unknown, unknown, Session>,
    targetName: string,
    targetSpec: TargetSpec,
    provider: Provider,
  ): Promise<Omit<OpResult, 'key' | 'id' | 'target' | 'durationMs' | 'attempts'>> {
    const signal = limit.signal;
    const log = this.#log.child({ target: targetName, id: op.id });
    const opCtx: OpContext = { signal, log, secrets: this.#secrets, keyedHash: this.#keyedHash };
    const guard = async <T>(work: () => Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (err) {
        if (limit.expired && !(err instanceof TimeoutError)) throw new TimeoutError(`${op.id}: no answer within ${this.#options.opTimeoutMs} ms`, { cause: err });
        throw err;
      }
    };

    const session = await guard(() => this.#pool.session(targetName, targetSpec, provider, signal));
    if (op.action === 'delete') return guard(() => this.#delete(op, commit, ctx, handler, session, opCtx));

    const journal = this.#journal;
    const specHash = (op.resource as { specHash?: string }).specHash ?? null;
    // After a crash, a long side effect of this very spec may already be under way: the provider sees its progress.
    const resume = ctx.mode === 'apply' && specHash !== null ? journal!.interruptedProgress(op.id, specHash) : undefined;
    const r: Resource = resume ? { ...op.resource, resume } : op.resource;
    const actual = await guard(() => handler.read(session, r, opCtx));
    const changes = effectiveChanges(handler, r, actual);
    const observed = summarize(handler, actual);
    if (changes.length === 0) {
      const waiting = handler.pendingReboot?.(r, actual);
      if (ctx.mode === 'plan') return { action: 'noop', cause: op.cause, status: 'planned', changes: [], ...(waiting ? { note: waiting } : {}) };
      if (waiting && specHash !== null) journal!.markPendingReboot({ id: r.id, kind: r.kind, target: op.target, reason: waiting, observed, commit, specHash });
      else journal!.markConverged(r.id, observed, specHash ? { commit, specHash } : undefined);
      journal!.resolveInterrupted(r.id);
      return { action: 'noop', cause: op.cause, status: waiting ? 'pending-reboot' : 'converged', changes: [], ...(waiting ? { note: waiting } : {}) };
    }
    const action: Action = actual === undefined ? 'create' : 'update';
    const drift = ctx.mode === 'apply' && actual !== undefined && specHash !== null && journal!.appliedHash(r.id) === specHash;
    const cause: Cause = drift ? 'drift' : op.cause === 'sweep' ? 'intent' : op.cause;
    if (ctx.mode === 'plan') return { action, cause, status: 'planned', changes };

    if (drift && r.meta.drift === 'report') {
      journal!.markDrifted(r.id, r.kind, op.target, trimChanges(changes), observed, commit);
      return { action, cause: 'drift', status: 'drifted', changes };
    }
    if (specHash !== null && !(handler.safeToRetryAfterCrash?.(r) ?? true) && journal!.hasInterrupted(r.id, specHash)) {
      throw new InterruptedError(`${r.id} was interrupted mid-run by a crash and has no guard that proves whether it finished; check the target, then change its spec or add a guard (creates/unless/onlyIf) to run it again`);
    }

    const opId = journal!.journalIntent({ id: r.id, kind: r.kind, target: op.target, action, cause, commit, specHash, changes: trimChanges(changes) });
    try {
      const applyCtx: OpContext = { ...opCtx, checkpoint: (progress) => journal!.checkpoint(opId, progress) };
      const applied = await guard(() => handler.apply(session, r, changes, applyCtx));
      // Verify against what the provider now remembers (a guardless command's memo says it ran).
      const verified: Resource = applied?.memo !== undefined ? { ...r, memo: applied.memo } : r;
      const after = await guard(() => handler.read(session, verified, opCtx));
      const remaining = effectiveChanges(handler, verified, after);
      if (remaining.length > 0) {
        throw new VerifyError(`${r.id}: applied, but a re-read still differs at ${remaining.map((c) => c.path || '/').join(', ')}; the provider did something other than it planned`);
      }
      journal!.journalDone({
        opId,
        id: r.id,
        kind: r.kind,
        target: op.target,
        action,
        cause,
        commit,
        specHash: specHash ?? '',
        changes: trimChanges(changes),
        observed: summarize(handler, after),
        memo: applied?.memo,
        output: applied?.output,
        // Adopted: something that exists (a kind with remove()) was there before Plumb first applied it.
        adopted: action === 'update' && handler.remove !== undefined && journal!.appliedHash(r.id) === null,
      });
      const waiting = handler.pendingReboot?.(verified, after);
      if (waiting && specHash !== null) journal!.markPendingReboot({ id: r.id, kind: r.kind, target: op.target, reason: waiting, observed: summarize(handler, after), commit, specHash });
      return { action, cause, status: 'changed', changes, ...(waiting ? { note: waiting } : {}) };
    } catch (err) {
      journal!.journalFailed(opId, describeError(err).message);
      throw err;
    }
  }

  async #delete(op: Op, commit: string, ctx: RunContext, handler: KindHandler<unknown, unknown, Session>, session: Session, opCtx: OpContext): Promise<Omit<OpResult, 'key' | 'id' | 'target' | 'durationMs' | 'attempts'>> {
    const r: Resource = op.resource;
    const journal = this.#journal;
    if (!handler.remove) {
      // Nothing of it to undo on the target (e.g. ssh.Command): the deletion settles without a read.
      if (ctx.mode === 'plan') return { action: 'noop', cause: 'deletion', status: 'planned', changes: [] };
      journal!.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, commit, before: op.before, message: `${op.kind} leaves nothing on the target to remove` });
      return { action: 'noop', cause: 'deletion', status: 'deleted', changes: [] };
    }
    const remove = handler.remove.bind(handler);
    const actual = await handler.read(session, r, opCtx);
    if (ctx.mode === 'plan') {
      return { action: actual === undefined ? 'noop' : 'delete', cause: 'deletion', status: 'planned', changes: [] };
    }
    if (!journal) throw new Error('apply needs a journal');
    if (actual === undefined) {
      journal.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, commit, before: op.before, message: 'already absent on the target' });
      return { action: 'noop', cause: 'deletion', status: 'deleted', changes: [] };
    }
    const opId = journal.journalIntent({ id: op.id, kind: op.kind, target: op.target, action: 'delete', cause: 'deletion', commit, specHash: null, changes: [] });
    try {
      await remove(session, r, opCtx);
      if ((await handler.read(session, r, opCtx)) !== undefined) throw new VerifyError(`${op.id}: removed, but a re-read still finds it`);
    } catch (err) {
      journal.journalFailed(opId, describeError(err).message);
      throw err;
    }
    journal.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, opId, commit, before: op.before, message: 'removed from the target' });
    return { action: 'delete', cause: 'deletion', status: 'deleted', changes: [] };
  }
}

/** diff, minus what `ignore:` hands to someone else (only once the thing exists: ignored fields are still set on create). */
export function effectiveChanges(handler: KindHandler<unknown, unknown, Session>, r: Resource, actual: unknown): Change[] {
  const changes = handler.diff(r, actual);
  if (actual === undefined || r.meta.ignore.length === 0) return changes;
  return changes.filter((c) => !r.meta.ignore.some((pointer) => pointerCovers(pointer, c.path)));
}

function summarize(handler: KindHandler<unknown, unknown, Session>, actual: unknown): Json {
  if (handler.summarize) return handler.summarize(actual);
  if (actual === undefined) return null;
  const text = JSON.stringify(actual);
  return text.length <= SUMMARY_LIMIT ? (JSON.parse(text) as Json) : { truncated: true, bytes: text.length };
}

/** Large values (file contents) are summarised in the journal and event log. */
function trimChanges(changes: Change[]): Change[] {
  return changes.map((c) => ({ ...c, before: trimValue(c.before), after: trimValue(c.after) }));
}

function trimValue(value: Json | undefined): Json | undefined {
  if (typeof value === 'string' && value.length > 200) return `${value.slice(0, 200)}… (${value.length} chars)`;
  return value;
}

function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR');
}
