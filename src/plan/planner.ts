import { connectionSettings, type Json, type JsonObject, type TargetSpec } from '../provider.js';
import { TARGET_KIND, targetId, type LoadedResource } from '../load/types.js';
import { canonicalJson } from '../util/canonical.js';
import type { Acceptance, Cause, NewTombstone, Op, PendingTombstone, Plan, RecordedResource } from './types.js';

export interface PlanInput {
  commit: string;
  /** Delta: only `scope` is re-evaluated, unchanged resources cost nothing. Full: everything is read (drift sweep). */
  mode: 'delta' | 'full';
  base?: string;
  /** The desired state at `commit`. */
  desired: { get(id: string): LoadedResource | undefined };
  /** Ids to evaluate: changed, removed, due for retry, or (full) everything desired and recorded. */
  scope: Iterable<string>;
  /** What the state store recorded for the ids in scope (and their previous names). */
  recorded: Map<string, RecordedResource>;
  /** Deletions carried from earlier commits that are due for another attempt. */
  tombstones: PendingTombstone[];
  /** Failed or unfinished resources whose retry is due: they are worked on again with the newest spec. */
  retry: Set<string>;
  /** Targets whose own spec changed (address, credentials...): their resources are re-read. */
  changedTargets: Set<string>;
  /** Every pending tombstone, due or not: a removal never runs before the removal of something that depends on it. */
  blockingTombstones?: PendingTombstone[];
  /**
   * Subscribers (ResourceMeta.subscribes: ssh.Service restartOn) brought into scope by what they
   * subscribe to: planned even when unchanged if one of those is in the plan. `pending`: they
   * have journaled notifications to act on (a crash came between the write and the restart): planned.
   */
  notify?: { candidates: Set<string>; pending: Set<string> };
}

/**
 * Desired vs recorded -> ops. Pure: no I/O. The ops say what Plumb believes must
 * happen from Git and its own records; the runner re-reads every target before
 * acting, so actual state always has the last word.
 */
export function plan(input: PlanInput): Plan {
  const { desired, recorded } = input;
  const acceptance: Acceptance = { commit: input.commit, upserts: [], pending: [], renames: [], deletions: [], resurrected: [] };
  const ops: Op[] = [];
  /** Unchanged subscribers, planned below only if something they subscribe to is. */
  const subscribers: Op[] = [];
  const scope = [...new Set(input.scope)].sort();

  // Renames first: a recorded resource under an old name becomes the new one, history and all.
  const renamedFrom = new Map<string, RecordedResource>();
  const renameSource = new Map<string, string>();
  const renamedAway = new Set<string>();
  for (const id of scope) {
    const r = desired.get(id);
    if (!r || recorded.has(id)) continue;
    for (const old of r.meta.previousNames) {
      const oldId = `${r.kind}/${old}`;
      const rec = recorded.get(oldId);
      if (rec && !desired.get(oldId) && rec.status !== 'deleting' && !renamedAway.has(oldId)) {
        acceptance.renames.push({ from: oldId, to: id });
        renamedFrom.set(id, { ...rec, id, name: r.name });
        renameSource.set(id, oldId);
        renamedAway.add(oldId);
        break;
      }
    }
  }

  // Pending removals by resource and target: a resource moved between targets may have one on each.
  const tombstoneKey = (id: string, target: string | null | undefined): string => `${id}\u0000${target ?? ''}`;
  const pendingByResource = new Map(input.tombstones.map((t) => [tombstoneKey(t.resourceId, t.target), t]));
  // Any pending removal, due now or backing off, is cancelled when its resource is back in Git on the same target.
  const anyPending = new Map((input.blockingTombstones ?? input.tombstones).map((t) => [tombstoneKey(t.resourceId, t.target), t]));

  for (const id of scope) {
    const r = desired.get(id);
    const rec = recorded.get(id) ?? renamedFrom.get(id);
    if (r) {
      acceptance.upserts.push(r);
      if (r.kind === TARGET_KIND) continue; // a Target is how to reach things, not a thing to converge
      const tombstone = anyPending.size === 0 ? undefined : anyPending.get(tombstoneKey(id, r.meta.target));
      if (tombstone) {
        acceptance.resurrected.push(tombstone.tombstoneId); // back in Git, on the same target, before its removal finished
        pendingByResource.delete(tombstoneKey(id, r.meta.target));
      }
      if (rec && rec.target !== null && rec.target !== r.meta.target) {
        // Moved to another target: it is removed from the old one (per its policy) and created on the new one.
        const deletion = newTombstone(rec);
        acceptance.deletions.push(deletion);
        if (!deletion.settledReason) ops.push(deleteOp(rec, [`moved from target ${rec.target} to ${r.meta.target}`]));
      }
      const sameTarget = rec !== undefined && rec.target === (r.meta.target ?? null);
      const action = !rec || !sameTarget || rec.appliedCommit === null ? 'create' : rec.specHash !== r.specHash ? 'update' : 'noop';
      const retry = input.retry.has(id);
      // (The Target is looked up only for a record that has settings to compare: not for 100k creates.)
      const targetChanged = r.meta.target !== undefined && (input.changedTargets.has(r.meta.target) || (rec?.targetSpec != null && targetSettingsChanged(rec, desired.get(targetId(r.meta.target)))));
      const unchanged = action === 'noop' && input.mode === 'delta' && !retry && !targetChanged && !renamedFrom.has(id);
      const pendingNotice = input.notify?.pending.has(id) === true;
      if (unchanged && !pendingNotice && !input.notify?.candidates.has(id)) continue;
      if (action !== 'noop') acceptance.pending.push(id);
      const cause = causeOf(action, retry, input.mode);
      const op: Op = {
        key: id,
        id,
        kind: r.kind,
        name: r.name,
        target: r.meta.target ?? null,
        action,
        cause,
        // What the provider remembered from its last apply (a command's last-run hash, a password's keyed hash).
        resource: rec?.memo != null && sameTarget ? { ...r, memo: rec.memo } : r,
        before: rec && sameTarget ? rec.spec : null,
        after: r.spec as JsonObject,
        reasons: reasonsFor(r, rec && sameTarget ? rec : undefined, { retry, targetChanged, renamedFrom: renameSource.get(id) }),
        waitFor: [],
      };
      if (pendingNotice) op.reasons.push('notified of a change it has not acted on yet');
      if (unchanged && !pendingNotice) subscribers.push(op);
      else ops.push(op);
      continue;
    }
    // Gone from Git.
    if (!rec || renamedAway.has(id) || rec.status === 'deleting' || rec.kind === TARGET_KIND) {
      if (rec?.kind === TARGET_KIND && !renamedAway.has(id)) acceptance.deletions.push({ recorded: rec, policy: 'Retain', settledReason: 'a Target is connection settings: nothing to remove' });
      continue;
    }
    const deletion = newTombstone(rec);
    acceptance.deletions.push(deletion);
    if (!deletion.settledReason) ops.push(deleteOp(rec, [`removed from Git at ${input.commit.slice(0, 12)}`]));
  }

  addNotified(ops, subscribers);

  // Deletions carried over from earlier commits.
  const planned = pendingByResource.size === 0 ? new Set<string>() : new Set(ops.map((op) => `${op.key}\u0000${op.target ?? ''}`));
  for (const t of pendingByResource.values()) {
    if (planned.has(`delete:${t.resourceId}\u0000${t.target ?? ''}`)) continue;
    ops.push(deleteOp({ ...t, id: t.resourceId }, [`removal pending since ${t.deletedCommit.slice(0, 12)}`], t.tombstoneId));
  }

  linkDependencies(ops);
  const deferred = deferBehindDependents(ops, input.blockingTombstones ?? []);
  return { commit: input.commit, ...(input.base ? { base: input.base } : {}), mode: input.mode, ops: order(ops.filter((op) => !deferred.has(op))), acceptance, diagnostics: [] };
}

/**
 * An unchanged subscriber joins the plan when something it subscribes to is in
 * it: its op reads it and acts (restarts) if that write happened. To a fixpoint:
 * a subscriber may subscribe to another one.
 */
function addNotified(ops: Op[], subscribers: Op[]): void {
  const planned = new Set(ops.filter((op) => op.action !== 'delete').map((op) => op.id));
  for (let added = true; added && subscribers.length > 0; ) {
    added = false;
    for (let i = subscribers.length - 1; i >= 0; i--) {
      const op = subscribers[i]!;
      const changed = (op.resource.meta.subscribes ?? []).filter((id) => planned.has(id));
      if (changed.length === 0) continue;
      op.reasons = [`acts on a change of ${changed.join(', ')}`];
      ops.push(op);
      planned.add(op.id);
      subscribers.splice(i, 1);
      added = true;
    }
  }
}

/** Create/update for what Git changed, retry for what failed before, sweep for a re-read nobody asked a change of. */
function causeOf(action: Op['action'], retry: boolean, mode: PlanInput['mode']): Cause {
  if (retry) return 'retry';
  if (action !== 'noop') return 'intent';
  return mode === 'full' ? 'sweep' : 'intent';
}

/** The Target's own settings (address, credentials reference, pinned key; not its template vars) differ from those the resource was accepted with. */
function targetSettingsChanged(rec: RecordedResource | undefined, target: LoadedResource | undefined): boolean {
  return rec?.targetSpec != null && target !== undefined && canonicalJson(connectionSettings(rec.targetSpec)) !== canonicalJson(connectionSettings(target.spec as TargetSpec));
}

/**
 * Reverse dependency order across passes: a removal waits while a pending
 * tombstone that is not worked on in this pass (backing off, its target down)
 * still depends on it. The waiting removal stays pending for a later pass.
 */
function deferBehindDependents(ops: Op[], pending: PendingTombstone[]): Set<Op> {
  const inPlan = new Set(ops.filter((op) => op.action === 'delete').map((op) => op.id));
  const waitedOn = new Set(pending.filter((t) => !inPlan.has(t.resourceId)).flatMap((t) => t.meta.dependsOn));
  return new Set(ops.filter((op) => op.action === 'delete' && waitedOn.has(op.id)));
}

/** Prune only what Plumb's own inventory says it applied; Retain forgets; protection is remembered in the tombstone. */
function newTombstone(rec: RecordedResource): NewTombstone {
  if (rec.meta.deletionPolicy === 'Retain') return { recorded: rec, policy: 'Retain', settledReason: 'deletionPolicy Retain: forgotten, left in place on the target' };
  if (rec.appliedCommit === null && !rec.hasJournal) return { recorded: rec, policy: 'Delete', settledReason: 'never applied by Plumb: nothing of it to remove' };
  return { recorded: rec, policy: 'Delete' };
}

/** A removal: of a resource gone from Git now, or (with its tombstone) one pending since an earlier commit. */
function deleteOp(rec: Pick<RecordedResource, 'id' | 'kind' | 'name' | 'target' | 'targetSpec' | 'spec' | 'appliedSpec' | 'meta' | 'memo'>, reasons: string[], tombstoneId?: number): Op {
  const { id, kind, name, spec, appliedSpec, meta, memo } = rec;
  return {
    key: `delete:${id}`,
    id,
    kind,
    name,
    target: rec.target,
    action: 'delete',
    cause: 'deletion',
    // Attachments of a deleted resource are not needed to remove it.
    // Removal takes away what was applied, which may be more than the last accepted spec (that one may never have been applied).
    resource: { id, kind, name, spec, meta, attachments: {}, ...(memo !== null ? { memo } : {}), ...(appliedSpec != null ? { lastApplied: appliedSpec } : {}) },
    ...(rec.targetSpec ? { targetSpec: rec.targetSpec } : {}),
    ...(tombstoneId !== undefined ? { tombstoneId } : {}),
    before: spec,
    after: null,
    reasons,
    waitFor: [],
  };
}

function reasonsFor(r: LoadedResource, rec: RecordedResource | undefined, flags: { retry: boolean; targetChanged: boolean; renamedFrom: string | undefined }): string[] {
  const reasons: string[] = [];
  if (flags.renamedFrom) reasons.push(`renamed from ${flags.renamedFrom}`);
  if (!rec) reasons.push('new: not applied yet');
  else if (rec.appliedCommit === null) reasons.push('accepted earlier but never applied');
  else if (rec.specHash !== r.specHash) {
    const fields = changedFields(rec.spec, r.spec);
    const files = Object.values(r.attachments).map((a) => a.path);
    reasons.push(fields.length > 0 ? `spec changed: ${fields.join(', ')}` : `file changed in Git: ${files.join(', ') || 'a referenced file'}`);
  }
  if (flags.retry) reasons.push(`retrying after status ${rec?.status ?? 'unknown'}`);
  if (flags.targetChanged) reasons.push(`Target/${r.meta.target} changed: re-read on its new settings`);
  if (reasons.length === 0) reasons.push('unchanged in Git: re-read to catch drift');
  return reasons;
}

/** Top-level spec fields whose values differ, for a readable non-live plan. */
export function changedFields(before: Json, after: unknown): string[] {
  const a = (before ?? {}) as Record<string, unknown>;
  const b = (after ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).map((k) => `spec.${k}`);
}

/** Creates/updates wait for what they depend on; deletions wait for their dependents' deletions (reverse order). */
function linkDependencies(ops: Op[]): void {
  if (!ops.some((op) => op.resource.meta.dependsOn.length > 0)) return; // (nothing to link: no maps of every op)
  const converge = new Map(ops.filter((op) => op.action !== 'delete').map((op) => [op.id, op]));
  const deletes = new Map(ops.filter((op) => op.action === 'delete').map((op) => [op.id, op]));
  for (const op of ops) {
    if (op.action === 'delete') {
      for (const dep of op.resource.meta.dependsOn) deletes.get(dep)?.waitFor.push(op.key);
    } else {
      for (const dep of op.resource.meta.dependsOn) if (converge.has(dep)) op.waitFor.push(dep);
    }
  }
}

/** The default locale's collation, as `localeCompare` without arguments uses, minus the per-call set-up. */
const collator = new Intl.Collator();

/**
 * Topological order (Kahn), ties broken by target then id so plans print the same every time.
 * The ready ops are a binary heap on (rank, arrival): the same order as keeping them sorted
 * (stable sort: equal ranks in arrival order), at O(log n) per op rather than a sort per step.
 */
function order(ops: Op[]): Op[] {
  const byKey = new Map(ops.map((op) => [op.key, op]));
  const indegree = new Map<string, number>();
  for (const op of ops) {
    let n = 0;
    for (const k of op.waitFor) if (byKey.has(k)) n++;
    indegree.set(op.key, n);
  }
  const dependents = new Map<string, string[]>();
  for (const op of ops) for (const k of op.waitFor) (dependents.get(k) ?? dependents.set(k, []).get(k)!).push(op.key);
  const rank = collationRanks(ops, (op) => `${op.action === 'delete' ? 1 : 0}\u0000${op.target ?? ''}\u0000${op.id}`);
  // The first ready ops enter sorted, as the sort of the whole list did; their arrival order is the ops' order.
  const ready = new ReadyHeap(ops.filter((op) => indegree.get(op.key) === 0).map((op) => ({ op, rank: rank.get(op)! })));
  const out: Op[] = [];
  for (let op = ready.pop(); op; op = ready.pop()) {
    out.push(op);
    for (const k of dependents.get(op.key) ?? []) {
      const n = indegree.get(k)! - 1;
      indegree.set(k, n);
      if (n === 0) {
        const next = byKey.get(k)!;
        ready.push(next, rank.get(next)!);
      }
    }
  }
  // A cycle cannot pass validation; if records were hand-edited into one, still run everything.
  if (out.length < ops.length) {
    const placed = new Set(out);
    for (const op of ops) if (!placed.has(op)) out.push(op);
  }
  return out;
}

/**
 * Each op's place in the collation order of its key, as a number (equal keys, equal
 * numbers): one sort, then the heap compares numbers. Collating in the heap cost
 * ~1 s at 100k ops; the order is the same.
 */
function collationRanks(ops: Op[], key: (op: Op) => string): Map<Op, number> {
  const keyed = ops.map((op) => ({ op, key: key(op) }));
  keyed.sort((a, b) => collator.compare(a.key, b.key));
  const rank = new Map<Op, number>();
  keyed.forEach((k, i) => rank.set(k.op, i > 0 && collator.compare(keyed[i - 1]!.key, k.key) === 0 ? rank.get(keyed[i - 1]!.op)! : i));
  return rank;
}

/** A min-heap of ops by rank, equal ranks in the order they were pushed. */
class ReadyHeap {
  readonly #items: HeapItem[];
  #seq: number;

  /** `first`: the ops ready at the start, pushed in this order (sorted, they already are a heap: no sifting). */
  constructor(first: Array<{ op: Op; rank: number }>) {
    this.#items = first.map((f, seq) => ({ op: f.op, rank: f.rank, seq }));
    this.#items.sort((a, b) => a.rank - b.rank || a.seq - b.seq);
    this.#seq = this.#items.length;
  }

  push(op: Op, rank: number): void {
    const items = this.#items;
    items.push({ op, rank, seq: this.#seq++ });
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): Op | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (!top || !last) return undefined;
    if (items.length > 0) {
      items[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let least = i;
        if (l < items.length && less(items[l]!, items[least]!)) least = l;
        if (r < items.length && less(items[r]!, items[least]!)) least = r;
        if (least === i) break;
        [items[i], items[least]] = [items[least]!, items[i]!];
        i = least;
      }
    }
    return top.op;
  }
}

interface HeapItem {
  op: Op;
  rank: number;
  /** Arrival order: ties of rank leave in it. */
  seq: number;
}

function less(a: HeapItem, b: HeapItem): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.seq < b.seq);
}
