import { describeError, InterruptedError, ProviderError, VerifyError, writeOutcome } from '../errors.js';
import type { Action, Cause, Op } from '../plan/types.js';
import { withoutIgnored, type Applied, type Change, type Json, type KindHandler, type OpContext, type Provider, type Resource, type Session, type TargetSpec } from '../provider.js';
import type { UnknownOutcome } from '../state/store.js';
import type { ProviderRegistry } from './registry.js';
import type { Journal, JournalView, OpResult } from './types.js';

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
  /** Fields Plumb set before that the spec no longer has and that stay on the target (KindHandler.released). */
  released: string[];
  /** What the read found: the state the changes were planned against. */
  actual: unknown;
  /** The newest notification this write acts on (Resource.notified): settled once it is verified. */
  notifiedUpTo?: number;
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
  /** What the journal says (plan mode may read it without writing: `plan --live` with a state dir). */
  readonly #view: JournalView | undefined;

  constructor(registry: ProviderRegistry, journal: Journal | undefined, view: JournalView | undefined = journal) {
    this.#registry = registry;
    this.#journal = journal;
    this.#view = view;
  }

  place(op: Op, targets: (name: string) => TargetSpec | undefined): Placement {
    const kind = this.#registry.kind(op.kind);
    if (!kind) throw new ProviderError(`no provider handles kind ${op.kind}`);
    const targetName = op.target!;
    const targetSpec = targets(targetName) ?? op.targetSpec;
    if (!targetSpec) throw new ProviderError(`target ${targetName} is not defined any more and its settings were not recorded`);
    return { handler: kind.handler, provider: this.#registry.provider(targetSpec.provider) ?? kind.provider, targetName, targetSpec };
  }

  /**
   * Reads the target and decides: nothing to do (recorded here), or a write to make. Plan mode never records.
   * `preRead`: what readMany already found for this op (its cleanup done too), instead of a read of its own.
   */
  async prepare(op: Op, commit: string, mode: 'apply' | 'plan', handler: Handler, session: Session, ctx: OpContext, preRead?: { actual: unknown }, planned?: string[]): Promise<Prepared> {
    return op.action === 'delete' ? this.#prepareRemoval(op, commit, mode, handler, session, ctx, preRead) : this.#prepareConverge(op, commit, mode, handler, session, ctx, preRead, planned);
  }

  /**
   * The reads of many ops of one kind in one call (KindHandler.readMany), each
   * op's cleanup first as prepare would do it; keyed by op key, for prepare.
   */
  async readMany(ops: Op[], mode: 'apply' | 'plan', handler: Handler, session: Session, ctx: OpContext): Promise<Map<string, { actual: unknown }>> {
    const rs: Resource[] = [];
    for (const op of ops) {
      if (mode === 'apply' && (op.action !== 'delete' || handler.remove)) await this.#cleanup(op.id, op.resource, handler, session, ctx);
      rs.push(op.action === 'delete' ? op.resource : this.#converging(op, mode).r);
    }
    const actuals = await handler.readMany!(session, rs, ctx);
    return new Map(ops.map((op, i) => [op.key, { actual: actuals[i] }]));
  }

  /**
   * The resource as its kind sees it in this op: with the spec last applied, in apply mode the
   * progress of a write to resume, and what it subscribes to that was written since it last acted
   * (journaled notifications; in plan mode also `planned`, the subscriptions this plan changes).
   */
  #converging(
    op: Op,
    mode: 'apply' | 'plan',
    planned: string[] = [],
  ): { r: Resource; specHash: string | null; applied: ReturnType<JournalView['appliedRecord']> | undefined; progress: ReturnType<JournalView['resumeProgress']> | undefined; notifiedUpTo?: number } {
    const view = this.#view;
    const specHash = (op.resource as { specHash?: string }).specHash ?? null;
    const applied = view?.appliedRecord(op.id);
    // After a crash, a long side effect of this very spec may already be under way: the provider sees its progress (apply only: plan never resumes).
    const progress = specHash !== null ? view?.resumeProgress(op.id, specHash) : undefined;
    const resume = mode === 'apply' ? progress : undefined;
    const pending = op.resource.meta.subscribes ? view?.notifications(op.id) : undefined;
    const notified = [...new Set([...(pending?.sources ?? []), ...planned])];
    const r: Resource = { ...op.resource, ...(resume ? { resume } : {}), ...(applied?.spec != null ? { lastApplied: applied.spec } : {}), ...(notified.length > 0 ? { notified } : {}) };
    return { r, specHash, applied, progress, ...(pending ? { notifiedUpTo: pending.upTo } : {}) };
  }

  async #prepareConverge(op: Op, commit: string, mode: 'apply' | 'plan', handler: Handler, session: Session, ctx: OpContext, preRead: { actual: unknown } | undefined, planned: string[] | undefined): Promise<Prepared> {
    const journal = this.#journal;
    const view = this.#view;
    if (mode === 'apply' && !preRead) await this.#cleanup(op.id, op.resource, handler, session, ctx);
    const { r, specHash, applied, progress, notifiedUpTo } = this.#converging(op, mode, planned);
    const actual = preRead ? preRead.actual : await handler.read(session, r, ctx);
    const changes = effectiveChanges(handler, r, actual);
    const observed = summarize(handler, actual);
    const released = (r.lastApplied !== undefined ? (handler.released?.(r) ?? []) : []).map((x) => `${x.path}: ${x.note}`);
    const unknown = specHash !== null ? view?.unknownOutcome(op.id, specHash) : undefined;
    if (mode === 'plan') {
      // A dry run never resumes or cancels anything: it says what apply will find unsettled.
      const unsettled = [unknown ? unknownNote(unknown, handler, r) : undefined, progress ? handler.describeProgress?.(progress.progress) : undefined].filter((x) => x !== undefined);
      const waiting = changes.length === 0 ? handler.pendingReboot?.(r, actual) : undefined;
      const notes = [waiting, ...unsettled, ...released].filter((x) => x !== undefined);
      const extra = { ...(notes.length > 0 ? { note: notes.join('; ') } : {}), ...(unsettled.length > 0 ? { unsettled: true } : {}) };
      if (changes.length === 0) return { done: { action: 'noop', cause: op.cause, status: 'planned', changes: [], ...extra } };
      const drift = specHash !== null && applied?.hash === specHash;
      return { done: { action: actual === undefined ? 'create' : 'update', cause: drift ? 'drift' : op.cause === 'sweep' ? 'intent' : op.cause, status: 'planned', changes, ...extra } };
    }
    if (changes.length === 0) {
      const waiting = handler.pendingReboot?.(r, actual);
      const note = [waiting, ...released].filter((x) => x !== undefined);
      if (released.length > 0) journal!.recordReleased({ id: r.id, kind: r.kind, target: op.target, commit, notes: released });
      const record = specHash !== null ? { commit, specHash, spec: r.spec as Json } : undefined;
      if (waiting && record) journal!.markPendingReboot({ id: r.id, kind: r.kind, target: op.target, reason: waiting, observed, ...record });
      else journal!.markConverged(r.id, observed, record);
      journal!.resolveUnknown(r.id);
      // Notified, but nothing to act on (a stopped service is not restarted): settled all the same.
      if (notifiedUpTo !== undefined) journal!.clearNotifications(r.id, notifiedUpTo);
      return { done: { action: 'noop', cause: op.cause, status: waiting ? 'pending-reboot' : 'converged', changes: [], ...(note.length > 0 ? { note: note.join('; ') } : {}) } };
    }
    const action: Action = actual === undefined ? 'create' : 'update';
    const appliedHash = actual !== undefined ? (applied?.hash ?? null) : null;
    // Acting on a notification (a restart after a config write) is not drift: only what differs without it is.
    const drift = specHash !== null && appliedHash === specHash && (r.notified === undefined || effectiveChanges(handler, unnotified(r), actual).length > 0);
    const cause: Cause = drift ? 'drift' : op.cause === 'sweep' ? 'intent' : op.cause;
    if (drift && r.meta.drift === 'report') {
      journal!.markDrifted(r.id, r.kind, op.target, trimChanges(changes), observed, commit);
      return { done: { action, cause: 'drift', status: 'drifted', changes } };
    }
    if (unknown && !(handler.safeToRetryAfterCrash?.(r) ?? true)) throw new InterruptedError(unknownNote(unknown, handler, r));
    return { write: { op, r, handler, changes, action, cause, specHash, appliedHash, remove: false, released, actual, ...(notifiedUpTo !== undefined ? { notifiedUpTo } : {}) } };
  }

  async #prepareRemoval(op: Op, commit: string, mode: 'apply' | 'plan', handler: Handler, session: Session, ctx: OpContext, preRead?: { actual: unknown }): Promise<Prepared> {
    const journal = this.#journal;
    if (!handler.remove) {
      // Nothing of it to undo on the target (e.g. ssh.Command): the deletion settles without a read.
      if (mode === 'plan') return { done: { action: 'noop', cause: 'deletion', status: 'planned', changes: [] } };
      journal!.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, commit, before: op.before, message: `${op.kind} leaves nothing on the target to remove` });
      return { done: { action: 'noop', cause: 'deletion', status: 'deleted', changes: [] } };
    }
    if (mode === 'apply' && !preRead) await this.#cleanup(op.id, op.resource, handler, session, ctx);
    const actual = preRead ? preRead.actual : await handler.read(session, op.resource, ctx);
    if (mode === 'plan') return { done: { action: actual === undefined ? 'noop' : 'delete', cause: 'deletion', status: 'planned', changes: [] } };
    if (actual === undefined) {
      journal!.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, commit, before: op.before, message: 'already absent on the target' });
      return { done: { action: 'noop', cause: 'deletion', status: 'deleted', changes: [] } };
    }
    return { write: { op, r: op.resource, handler, changes: [], action: 'delete', cause: 'deletion', specHash: null, appliedHash: null, remove: true, released: [], actual } };
  }

  /** What unfinished writes left behind (journaled progress such as a temporary file) is removed before the next read. */
  async #cleanup(id: string, r: Resource, handler: Handler, session: Session, ctx: OpContext): Promise<void> {
    if (!handler.cleanup) return;
    const cleaned: number[] = [];
    for (const left of this.#journal!.leftovers(id)) if (await handler.cleanup(session, r, left.progress, ctx)) cleaned.push(left.opId);
    if (cleaned.length > 0) this.#journal!.clearProgress(cleaned);
  }

  /**
   * Journals the intent before the side effect (invariant 5); returns the journal entry.
   * `notify`: the resources subscribed to this one, notified in the same transaction.
   */
  intent(w: PendingWrite, commit: string, notify?: string[]): number {
    return this.#journal!.journalIntent({
      id: w.op.id,
      kind: w.op.kind,
      target: w.op.target,
      action: w.action,
      cause: w.cause,
      commit,
      specHash: w.specHash,
      changes: trimChanges(w.changes),
      ...(notify && notify.length > 0 ? { notify } : {}),
    });
  }

  /** Resolves when the intents journaled so far survive a power loss: awaited before the side effect they announce. */
  durable(): Promise<void> {
    return this.#journal!.durable();
  }

  /** Progress of the write under way (OpContext.checkpoint): durable before the step it describes; withdrawing it (null) needs no wait. */
  checkpoint(opIds: number[], progress: Json): Promise<void> | void {
    for (const id of opIds) this.#journal!.checkpoint(id, progress);
    if (progress !== null) return this.#journal!.durable();
  }

  /** The single-resource write: apply or remove through the kind's handler. */
  write(w: PendingWrite, session: Session, ctx: OpContext): Promise<Applied | void> {
    if (w.remove) return w.handler.remove!(session, w.r, ctx);
    return w.handler.apply(session, w.r, w.changes, ctx, w.actual);
  }

  /**
   * Re-reads after the write: it must now match (or be gone). Records the outcome with its journal entry.
   * `reread`: what readMany found for `verifiedResource(w, applied)` instead of a read of its own.
   */
  async verifyAndRecord(w: PendingWrite, opId: number, applied: Applied | void, commit: string, session: Session, ctx: OpContext, reread?: { actual: unknown }): Promise<Outcome> {
    const journal = this.#journal!;
    const { op, handler } = w;
    if (w.remove) {
      if ((reread ? reread.actual : await handler.read(session, w.r, ctx)) !== undefined) throw new VerifyError(`${op.id}: removed, but a re-read still finds it`);
      journal.tombstoneDone({ tombstoneId: op.tombstoneId!, resourceId: op.id, kind: op.kind, target: op.target, opId, commit, before: op.before, message: 'removed from the target' });
      return { action: 'delete', cause: 'deletion', status: 'deleted', changes: [] };
    }
    // Verify against what the provider now remembers (a guardless command's memo says it ran), and with this spec as the last applied.
    const verified = verifiedResource(w, applied);
    const after = reread ? reread.actual : await handler.read(session, verified, { ...ctx, afterWrite: true });
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
      spec: w.r.spec as Json,
      changes: trimChanges(w.changes),
      observed,
      memo: applied?.memo,
      output: applied?.output,
      // Adopted: something that exists (a kind with remove()) was there before Plumb first applied it.
      adopted: w.action === 'update' && handler.remove !== undefined && w.appliedHash === null,
    });
    const waiting = handler.pendingReboot?.(verified, after);
    if (waiting && w.specHash !== null) journal.markPendingReboot({ id: op.id, kind: op.kind, target: op.target, reason: waiting, observed, commit, specHash: w.specHash, spec: w.r.spec as Json });
    if (w.released.length > 0) journal.recordReleased({ id: op.id, kind: op.kind, target: op.target, commit, notes: w.released });
    if (w.notifiedUpTo !== undefined) journal.clearNotifications(op.id, w.notifiedUpTo);
    const note = [waiting, ...w.released].filter((x) => x !== undefined);
    return { action: w.action, cause: w.cause, status: 'changed', changes: w.changes, ...(note.length > 0 ? { note: note.join('; ') } : {}) };
  }

  /**
   * The write (or its verification) failed: close the journal entry with what
   * happened, so a restart does not take it for a crash. Not sent and refused
   * may be tried again as new; a deadline, a dropped session or a cancellation
   * after sending leaves the outcome unknown, so a guardless command is not run
   * twice on a guess.
   */
  failed(opId: number, err: unknown): void {
    this.#journal!.journalFailed(opId, describeError(err).message, writeOutcome(err));
  }
}

/** The resource a write is verified as: what the provider now remembers, and this spec as the last applied (a removal: as it was). */
export function verifiedResource(w: PendingWrite, applied: Applied | void): Resource {
  if (w.remove) return w.r;
  // What it was notified of is what this write acted on (the restart is done).
  return { ...unnotified(w.r), lastApplied: w.r.spec, ...(applied?.memo !== undefined ? { memo: applied.memo } : {}) };
}

function unnotified(r: Resource): Resource {
  const { notified: _acted, ...rest } = r;
  return rest;
}

/** Why the last write's outcome is unknown, and what the operator can do, in one sentence. */
function unknownNote(unknown: UnknownOutcome, handler: Handler, r: Resource): string {
  const when = new Date(unknown.at).toISOString();
  const head = `${r.id}: the write started at ${when} has an unknown outcome (${unknown.why})`;
  if (handler.safeToRetryAfterCrash?.(r) ?? true) return `${head}; apply re-reads it before acting again`;
  return `${head}, and nothing on the target proves whether it finished; check the target, then \`plumb resolve ${r.id} --ran\` or \`--not-run\` (or add a guard: creates, unless or onlyIf)`;
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
