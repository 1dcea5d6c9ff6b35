import { describeError, InterruptedError, outcomeUnknown, ProviderError, VerifyError } from '../errors.js';
import type { Action, Cause, Op } from '../plan/types.js';
import { withoutIgnored, type Applied, type Change, type Json, type KindHandler, type OpContext, type Provider, type Resource, type Session, type TargetSpec } from '../provider.js';
import type { ProviderRegistry } from './registry.js';
import type { Journal, OpResult } from './runner.js';

const SUMMARY_LIMIT = 2048;

export type Outcome = Omit<OpResult, 'key' | 'id' | 'target' | 'durationMs' | 'attempts'>;
type Handler = KindHandler<unknown, unknown, Session>;

/** Where an op runs: its kind's handler and the provider and Target that reach it. */
export interface Placement {
  handler: Handler;
  provider: Provider;
  targetName: string;
  targetSpec: TargetSpec;
}

/** An op that read its target and must now write: what `apply` (or `remove`) will be asked to do. */
export interface PendingWrite {
  op: Op;
  r: Resource;
  handler: Handler;
  changes: Change[];
  action: Action;
  cause: Cause;
  specHash: string | null;
  /** The spec hash Plumb last applied to this resource, as read before the write (null: never, or it did not exist). */
  appliedHash: string | null;
  remove: boolean;
}

export type Prepared = { done: Outcome } | { write: PendingWrite };

/**
 * The steps of one resource's operation, shared by the per-op path and the
 * per-target transaction: prepare (read, diff, and everything that ends without
 * a write), journal the intent, then verify by re-reading and record.
 */
export class OperationSteps {
  readonly #registry: ProviderRegistry;
  readonly #journal: Journal | undefined;

  constructor(registry: ProviderRegistry, journal: Journal | undefined) {
    this.#registry = registry;
    this.#journal = journal;
  }

  place(op: Op, targets: (name: string) => TargetSpec | undefined): Placement {
    const kind = this.#registry.kind(op.kind);
    if (!kind) throw new ProviderError(`no provider handles kind ${op.kind}`);
    const targetName = op.target!;
    const targetSpec = targets(targetName) ?? op.targetSpec;
    if (!targetSpec) throw new ProviderError(`target ${targetName} is not defined any more and its settings were not recorded`);
    return { handler: kind.handler, provider: this.#registry.provider(targetSpec.provider) ?? kind.provider, targetName, targetSpec };
  }

  /** Reads the target and decides: nothing to do (recorded here), or a write to make. Plan mode never records. */
  async prepare(op: Op, commit: string, mode: 'apply' | 'plan', handler: Handler, session: Session, ctx: OpContext): Promise<Prepared> {
    return op.action === 'delete' ? this.#prepareRemoval(op, commit, mode, handler, session, ctx) : this.#prepareConverge(op, commit, mode, handler, session, ctx);
  }

  async #prepareConverge(op: Op, commit: string, mode: 'apply' | 'plan', handler: Handler, session: Session, ctx: OpContext): Promise<Prepared> {
    const journal = this.#journal;
    const specHash = (op.resource as { specHash?: string }).specHash ?? null;
    // After a crash, a long side effect of this very spec may already be under way: the provider sees its progress.
    const resume = mode === 'apply' && specHash !== null ? journal!.interruptedProgress(op.id, specHash) : undefined;
    const r: Resource = resume ? { ...op.resource, resume } : op.resource;
    const actual = await handler.read(session, r, ctx);
    const changes = effectiveChanges(handler, r, actual);
    const observed = summarize(handler, actual);
    if (changes.length === 0) {
      const waiting = handler.pendingReboot?.(r, actual);
      const note = waiting ? { note: waiting } : {};
      if (mode === 'plan') return { done: { action: 'noop', cause: op.cause, status: 'planned', changes: [], ...note } };
      if (waiting && specHash !== null) journal!.markPendingReboot({ id: r.id, kind: r.kind, target: op.target, reason: waiting, observed, commit, specHash });
      else journal!.markConverged(r.id, observed, specHash ? { commit, specHash } : undefined);
      journal!.resolveInterrupted(r.id);
      return { done: { action: 'noop', cause: op.cause, status: waiting ? 'pending-reboot' : 'converged', changes: [], ...note } };
    }
    const action: Action = actual === undefined ? 'create' : 'update';
    const appliedHash = mode === 'apply' && actual !== undefined ? journal!.appliedHash(r.id) : null;
    const drift = specHash !== null && appliedHash === specHash;
    const cause: Cause = drift ? 'drift' : op.cause === 'sweep' ? 'intent' : op.cause;
    if (mode === 'plan') return { done: { action, cause, status: 'planned', changes } };
    if (drift && r.meta.drift === 'report') {
      journal!.markDrifted(r.id, r.kind, op.target, trimChanges(changes), observed, commit);
      return { done: { action, cause: 'drift', status: 'drifted', changes } };
    }
    if (specHash !== null && !(handler.safeToRetryAfterCrash?.(r) ?? true) && journal!.hasInterrupted(r.id, specHash)) {
      throw new InterruptedError(`${r.id} was interrupted mid-run by a crash and has no guard that proves whether it finished; check the target, then change its spec or add a guard (creates/unless/onlyIf) to run it again`);
    }
    return { write: { op, r, handler, changes, action, cause, specHash, appliedHash, remove: false } };
  }

  async #prepareRemoval(op: Op, commit: string, mode: 'apply' | 'plan', handler: Handler, session: Session, ctx: OpContext): Promise<Prepared> {
    const journal = this.#journal;
    if (!handler.remove) {
      // Nothing of it to undo on the target (e.g. ssh.Command): the deletion settles without a read.
      if (mode === 'plan') return { done: { action: 'noop', cause: 'deletion', status: 'planned', changes: [] } };
      journal!.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, commit, before: op.before, message: `${op.kind} leaves nothing on the target to remove` });
      return { done: { action: 'noop', cause: 'deletion', status: 'deleted', changes: [] } };
    }
    const actual = await handler.read(session, op.resource, ctx);
    if (mode === 'plan') return { done: { action: actual === undefined ? 'noop' : 'delete', cause: 'deletion', status: 'planned', changes: [] } };
    if (actual === undefined) {
      journal!.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, commit, before: op.before, message: 'already absent on the target' });
      return { done: { action: 'noop', cause: 'deletion', status: 'deleted', changes: [] } };
    }
    return { write: { op, r: op.resource, handler, changes: [], action: 'delete', cause: 'deletion', specHash: null, appliedHash: null, remove: true } };
  }

  /** Journals the intent before the side effect (invariant 5); returns the journal entry. */
  intent(w: PendingWrite, commit: string): number {
    return this.#journal!.journalIntent({ id: w.op.id, kind: w.op.kind, target: w.op.target, action: w.action, cause: w.cause, commit, specHash: w.specHash, changes: trimChanges(w.changes) });
  }

  /** The single-resource write: apply or remove through the kind's handler. */
  write(w: PendingWrite, session: Session, ctx: OpContext): Promise<Applied | void> {
    if (w.remove) return w.handler.remove!(session, w.r, ctx);
    return w.handler.apply(session, w.r, w.changes, ctx);
  }

  /** Re-reads after the write: it must now match (or be gone). Records the outcome with its journal entry. */
  async verifyAndRecord(w: PendingWrite, opId: number, applied: Applied | void, commit: string, session: Session, ctx: OpContext): Promise<Outcome> {
    const journal = this.#journal!;
    const { op, handler } = w;
    if (w.remove) {
      if ((await handler.read(session, w.r, ctx)) !== undefined) throw new VerifyError(`${op.id}: removed, but a re-read still finds it`);
      journal.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, opId, commit, before: op.before, message: 'removed from the target' });
      return { action: 'delete', cause: 'deletion', status: 'deleted', changes: [] };
    }
    // Verify against what the provider now remembers (a guardless command's memo says it ran).
    const verified: Resource = applied?.memo !== undefined ? { ...w.r, memo: applied.memo } : w.r;
    const after = await handler.read(session, verified, ctx);
    const remaining = effectiveChanges(handler, verified, after);
    if (remaining.length > 0) {
      throw new VerifyError(`${op.id}: applied, but a re-read still differs at ${remaining.map((c) => c.path || '/').join(', ')}; the provider did something other than it planned`);
    }
    const observed = summarize(handler, after);
    journal.journalDone({
      opId,
      id: op.id,
      kind: op.kind,
      target: op.target,
      action: w.action === 'create' ? 'create' : 'update',
      cause: w.cause,
      commit,
      specHash: w.specHash ?? '',
      changes: trimChanges(w.changes),
      observed,
      memo: applied?.memo,
      output: applied?.output,
      // Adopted: something that exists (a kind with remove()) was there before Plumb first applied it.
      adopted: w.action === 'update' && handler.remove !== undefined && w.appliedHash === null,
    });
    const waiting = handler.pendingReboot?.(verified, after);
    if (waiting && w.specHash !== null) journal.markPendingReboot({ id: op.id, kind: op.kind, target: op.target, reason: waiting, observed, commit, specHash: w.specHash });
    return { action: w.action, cause: w.cause, status: 'changed', changes: w.changes, ...(waiting ? { note: waiting } : {}) };
  }

  /**
   * The write (or its verification) failed: close the journal entry so a restart
   * does not take it for a crash. A deadline, a dropped session or a cancellation
   * leaves the outcome unknown: the entry is `interrupted`, like a crash, so a
   * guardless command is not run twice on a guess.
   */
  failed(opId: number, err: unknown): void {
    this.#journal!.journalFailed(opId, describeError(err).message, outcomeUnknown(err));
  }
}

/** The kind's diff, minus what `ignore:` hands to someone else. */
export function effectiveChanges(handler: Handler, r: Resource, actual: unknown): Change[] {
  return withoutIgnored(r, actual, handler.diff(r, actual));
}

function summarize(handler: Handler, actual: unknown): Json {
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
