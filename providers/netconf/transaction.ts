/**
 * One device transaction for everything a pass changes on one target.
 *
 * With :candidate: lock running (first, so no other session can commit
 * someone's candidate to running while ours is built), discard-changes, lock
 * the candidate (netconfd refuses a candidate holding uncommitted edits), one
 * edit-config per resource (removals first), then a
 * confirmed commit when the device has :confirmed-commit (its persist token is
 * journaled through ctx.checkpoint BEFORE the commit), a re-read of running
 * that must show every resource converged, and the confirming commit. If the
 * verification fails the commit is cancelled (base:1.0, without
 * <cancel-commit>, by ending the session); if Plumb dies, the next run
 * cancels a commit made with persist (see cancelInterrupted). Without :confirmed-commit, a
 * plain commit (the runner re-reads running afterwards).
 *
 * Without :candidate (:writable-running): lock running and ONE edit-config of
 * every resource's changes with error-option rollback-on-error, so a failure
 * anywhere leaves running as it was.
 *
 * Locks are always released (in finally). netconfd (yuma123 2.13) cannot roll
 * a confirmed commit back while running is locked, so the locks are released
 * before a cancel-commit.
 */
import { throwIfAborted } from '../../src/provider.js';
import { randomBytes } from 'node:crypto';
import { ProviderError, SpecError, VerifyError } from '../../src/errors.js';
import { withoutIgnored, type Applied, type BatchItem, type Change, type Json, type OpContext, type Resource } from '../../src/provider.js';
import { RpcError } from './client/errors.js';
import type { XmlElement } from './client/xml.js';
import { isObject } from '../../src/util/object.js';
import {
  applyEdit,
  combineEdits,
  compile,
  containerPointers,
  createdBy,
  diffConfig,
  existenceFilter,
  ownedTree,
  ownsSomething,
  readFilter,
  releasedPart,
  removeEdit,
  toActual,
  type ConfigActual,
  type ConfigMemo,
  type ConfigSpec,
  type Desired,
} from './model.js';
import type { Datastore, NetconfSession } from './session.js';

/** What ctx.checkpoint records before a confirmed commit; Resource.resume.progress after a crash. */
export interface ConfirmProgress {
  [key: string]: Json;
  persistId: string | null;
  /** When the device rolls back by itself unless confirmed (ms since epoch). */
  confirmBy: number;
}

/** Cleanup (unlock, discard, cancel) must run even when the operation's signal has fired. */
const CLEANUP_MS = 10_000;

function cleanupSignal(s: NetconfSession): AbortSignal {
  return AbortSignal.timeout(Math.min(s.rpcTimeoutMs, CLEANUP_MS));
}

/**
 * Reads what a resource names from running, and (`released`) what the device
 * still holds of what its last applied spec named and this one dropped:
 * undefined when none of either is there.
 */
export async function readConfig(s: NetconfSession, d: Desired, signal: AbortSignal, released?: Desired): Promise<ConfigActual | undefined> {
  const [named, left] = await Promise.all([s.getConfig('running', readFilter(d), signal), released ? s.getConfig('running', readFilter(released, true), signal) : undefined]);
  const nodes = toActual(named);
  const rest = left ? toActual(left) : undefined;
  if (!ownsSomething(d, nodes) && !(released && rest && ownsSomething(released, rest))) return undefined;
  return { datastore: 'running', nodes, ...(rest ? { released: rest } : {}) };
}

/** The part of the last applied spec this one dropped (three-way: Plumb set it, the spec no longer wants it). */
export function releasedOf(r: Resource<ConfigSpec>, d: Desired): Desired | undefined {
  return r.lastApplied ? releasedPart(compile(r.lastApplied, r.id), d) : undefined;
}

/** The containers Plumb recorded creating (undefined: state from before it recorded them). */
export function createdOf(memo: Json | undefined): ReadonlySet<string> | undefined {
  return isObject(memo) && Array.isArray(memo.created) ? new Set(memo.created.filter((p): p is string => typeof p === 'string')) : undefined;
}

/** The three-way diff: desired vs actual, plus the removal of what was released. */
export function configDiff(r: Resource<ConfigSpec>, d: Desired, actual: ConfigActual | undefined): Change[] {
  const released = releasedOf(r, d);
  return diffConfig(d, actual, released ? { part: released, created: createdOf(r.memo) } : undefined);
}

/** diff minus the resource's `ignore:` pointers (once the thing exists), as the runner applies them. */
function effectiveDiff(r: Resource<ConfigSpec>, d: Desired, actual: ConfigActual | undefined): Change[] {
  return withoutIgnored(r, actual, configDiff(r, d, actual));
}

/**
 * After a crash between a confirmed commit and its confirmation, the device may
 * still run the unconfirmed config: cancel it first (a no-op error if it was
 * confirmed or has rolled back already), so it is never taken for converged.
 */
export async function cancelInterrupted(s: NetconfSession, r: Resource, ctx: OpContext): Promise<void> {
  const progress = r.resume?.progress;
  if (progress === null || typeof progress !== 'object' || Array.isArray(progress)) return;
  const persistId = progress.persistId;
  if (typeof persistId !== 'string' || s.cancelledPersistIds.has(persistId)) return;
  s.cancelledPersistIds.add(persistId);
  // Without persist the commit was tied to the dead session: RFC 6241 8.4.1 has the device roll back when it ended.
  // netconfd 2.13 tries while the dead session still holds the running lock, fails, and keeps the configuration
  // for good (nothing stays pending). Either way there is nothing to cancel: the read that follows sees the truth.
  if (s.confirmedCommit !== '1.1') return;
  try {
    await s.cancelCommit(persistId, ctx.signal);
    ctx.log.warn({ id: r.id }, 'cancelled a confirmed commit left unconfirmed by a crash');
  } catch (err) {
    if (err instanceof RpcError) return; // no such pending commit: it was confirmed, or has rolled back already
    s.cancelledPersistIds.delete(persistId);
    throw err;
  }
}

interface Prepared {
  item: BatchItem;
  r: Resource<ConfigSpec>;
  d: Desired;
  /** What the last applied spec had and this one dropped: removed in the same transaction. */
  released: Desired | undefined;
}

/** Runs the transaction; returns one Applied per item, in order. All or nothing when it throws. */
export async function runTransaction(s: NetconfSession, items: BatchItem[], ctx: OpContext): Promise<Applied[]> {
  throwIfAborted(ctx.signal, `netconf ${s.targetName}: transaction`);
  const prepared: Prepared[] = items.map((item) => {
    const r = item.r as Resource<ConfigSpec>;
    const d = compile(r.spec, r.id);
    return { item, r, d, released: releasedOf(r, d) };
  });
  for (const p of prepared) await cancelInterrupted(s, p.r, ctx);
  const datastore = chooseDatastore(s, prepared);
  return datastore === 'candidate' ? candidateTransaction(s, prepared, ctx) : runningTransaction(s, prepared, ctx);
}

function chooseDatastore(s: NetconfSession, prepared: Prepared[]): Datastore {
  const asked = new Set(prepared.map((p) => p.d.datastore).filter((x) => x !== undefined));
  if (asked.size > 1) throw new SpecError(`netconf ${s.targetName}: resources of one transaction ask for different datastores (${prepared.map((p) => `${p.r.id}: ${p.d.datastore ?? 'auto'}`).join(', ')})`);
  const want = [...asked][0];
  if (want === 'candidate' && !s.hasCandidate) throw new SpecError(`netconf ${s.targetName}: datastore candidate was asked for, but the device has no :candidate capability`);
  if (want === 'running' || !s.hasCandidate) {
    if (!s.writableRunning) throw new ProviderError(`netconf ${s.targetName}: the device has neither :candidate nor :writable-running; Plumb cannot write to it`);
    return 'running';
  }
  return 'candidate';
}

/**
 * The removal edit of one resource, from `source` as it is now (in a candidate
 * transaction that is after the edits sent before it, so of two resources that
 * created one container, the last to go takes it): a deleted resource loses
 * everything it owned (its last accepted and last applied specs), a changed
 * one what its last applied spec had and this one dropped. Containers Plumb
 * created are read whole, so "nothing else is in it" is a fact, not a filter's view.
 */
async function removalEdit(s: NetconfSession, p: Prepared, source: Datastore, signal: AbortSignal): Promise<XmlElement[]> {
  const owned = p.item.remove ? ownedTree(p.d, p.r.lastApplied ? compile(p.r.lastApplied, p.r.id) : undefined) : p.released;
  if (!owned) return [];
  const created = createdOf(p.r.memo);
  const nodes = toActual(await s.getConfig(source, readFilter(owned, true, created), signal));
  return removeEdit(owned, nodes, s.client.framing === 'chunked' ? 'remove' : 'delete', created);
}

/**
 * What each write will create (containers and list entries absent before it),
 * so they go with the resource later: from the read the changes were planned
 * on, checked with one more read where that read could not see a container
 * (present, but holding nothing the resource names yet). Returns each item's memo.
 */
async function createdMemos(s: NetconfSession, prepared: Prepared[], signal: AbortSignal): Promise<Array<ConfigMemo | undefined>> {
  const candidates = prepared.map((p) => (p.item.remove ? new Set<string>() : topmost(createdBy(p.d, (p.item.actual as ConfigActual | undefined)?.nodes ?? []))));
  const filters = prepared.map((p, i) => (candidates[i]!.size > 0 ? existenceFilter(p.d, candidates[i]!) : []));
  const wanted = filters.flatMap((f, i) => (f.length > 0 ? [{ id: prepared[i]!.r.id, elements: f }] : []));
  // One read for the whole transaction; filters of different resources merge like their edits do.
  const seen = wanted.length > 0 ? toActual(await s.getConfig('running', combineEdits(wanted), signal)) : [];
  return prepared.map((p, i) => {
    if (p.item.remove) return undefined;
    const under = [...candidates[i]!];
    const created = createdBy(p.d, seen).filter((ptr) => under.some((c) => ptr === c || ptr.startsWith(c + '/')));
    const still = containerPointers(p.d);
    const kept = [...(createdOf(p.r.memo) ?? [])].filter((ptr) => still.has(ptr));
    return { ...(isObject(p.r.memo) ? p.r.memo : {}), created: [...new Set([...kept, ...created])].sort() };
  });
}

/** Pointers that have no ancestor in the list (the tops of what a write creates). */
function topmost(pointers: string[]): Set<string> {
  const sorted = [...pointers].sort();
  const out = new Set<string>();
  for (const p of sorted) if (![...out].some((t) => p.startsWith(t + '/'))) out.add(p);
  return out;
}

/** Re-reads running: every member converged (or, removed, absent). Returns what still differs. */
async function verify(s: NetconfSession, prepared: Prepared[], signal: AbortSignal): Promise<string[]> {
  const problems: string[] = [];
  for (const p of prepared) {
    const actual = await readConfig(s, p.d, signal, p.item.remove ? undefined : p.released);
    if (p.item.remove) {
      if (actual !== undefined) problems.push(`${p.r.id} is still there`);
    } else {
      const left = effectiveDiff(p.r, p.d, actual);
      if (left.length > 0) problems.push(`${p.r.id} differs at ${left.map((c) => c.path).join(', ')}`);
    }
  }
  return problems;
}

async function bestEffort(s: NetconfSession, ctx: OpContext, what: string, work: () => Promise<void>): Promise<void> {
  if (!s.alive) return;
  try {
    await work();
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, what);
  }
}

async function candidateTransaction(s: NetconfSession, prepared: Prepared[], ctx: OpContext): Promise<Applied[]> {
  const locked: Datastore[] = [];
  const unlockAll = async (): Promise<void> => {
    while (locked.length > 0) {
      const ds = locked.pop()!;
      await bestEffort(s, ctx, `netconf unlock ${ds} failed`, () => s.unlock(ds, cleanupSignal(s)));
    }
  };
  let dirty = false;
  let pending: { persistId: string | undefined } | undefined;
  let output = 'nothing to change';
  try {
    await s.lock('running', ctx.signal);
    locked.push('running');
    // Start from running: drop whatever another session left uncommitted in the candidate, before locking it
    // (netconfd refuses to lock a candidate that holds uncommitted edits, whoever made them).
    await s.discardChanges(ctx.signal);
    await s.lock('candidate', ctx.signal);
    locked.push('candidate');
    const memos = await createdMemos(s, prepared, ctx.signal);
    const results = (): Applied[] => prepared.map((_, i) => ({ output, ...(memos[i] ? { memo: memos[i] } : {}) }));
    let edits = 0;
    const send = async (id: string, elements: XmlElement[]): Promise<void> => {
      if (elements.length === 0) return;
      dirty = true;
      try {
        await s.editConfig('candidate', elements, {}, ctx.signal);
      } catch (err) {
        if (err instanceof RpcError) throw new RpcError(s.targetName, `edit-config of ${id}`, err.errors);
        throw err;
      }
      edits++;
    };
    // Removals first (a removed resource's leaves may be a new resource's now), each computed from the candidate as the ones before left it.
    for (const p of prepared) await send(p.r.id, await removalEdit(s, p, 'candidate', ctx.signal));
    for (const p of prepared) if (!p.item.remove) await send(p.r.id, applyEdit(p.d));
    if (edits === 0) return results();
    const cc = s.confirmedCommit;
    if (cc === 'none') {
      await s.commit({}, ctx.signal);
      dirty = false;
      output = `committed (${edits} edit-config in one transaction)`;
    } else {
      const persistId = cc === '1.1' ? randomBytes(16).toString('hex') : undefined;
      const timeoutS = Math.max(1, Math.ceil(s.confirmTimeoutMs / 1000));
      const progress: ConfirmProgress = { persistId: persistId ?? null, confirmBy: Date.now() + timeoutS * 1000 };
      await ctx.checkpoint?.(progress);
      pending = { persistId };
      await s.commit({ confirmed: { timeoutS, ...(persistId ? { persist: persistId } : {}) } }, ctx.signal);
      dirty = false;
      // Some servers answer <ok/> to a commit that changed nothing: only a re-read of running proves it.
      const problems = await verify(s, prepared, ctx.signal);
      if (problems.length > 0) {
        throw new VerifyError(`netconf ${s.targetName}: after the confirmed commit running still differs (${problems.join('; ')}); the commit was cancelled and the device is back on its previous configuration`);
      }
      await s.commit(persistId ? { persistId } : {}, ctx.signal);
      pending = undefined;
      output = `committed with a confirmed commit, confirmed after re-reading running (${edits} edit-config in one transaction)`;
    }
    return results();
  } catch (err) {
    if (dirty) await bestEffort(s, ctx, 'netconf discard-changes failed', () => s.discardChanges(cleanupSignal(s)));
    if (pending) {
      const { persistId } = pending;
      // netconfd cannot roll back while running is locked: release the locks first.
      await unlockAll();
      if (s.confirmedCommit === '1.1') {
        await bestEffort(s, ctx, 'netconf cancel-commit failed; the device rolls back by itself at the confirm timeout', () => s.cancelCommit(persistId, cleanupSignal(s)));
      } else {
        // :confirmed-commit:1.0 has no <cancel-commit>: ending the session that sent the commit rolls it back (RFC 6241 8.4.1).
        await bestEffort(s, ctx, 'netconf close-session failed; the device rolls back by itself at the confirm timeout', () => s.close());
      }
    }
    throw err;
  } finally {
    await unlockAll();
  }
}

async function runningTransaction(s: NetconfSession, prepared: Prepared[], ctx: OpContext): Promise<Applied[]> {
  let locked = false;
  try {
    await s.lock('running', ctx.signal);
    locked = true;
    const memos = await createdMemos(s, prepared, ctx.signal);
    const results = (output: string): Applied[] => prepared.map((_, i) => ({ output, ...(memos[i] ? { memo: memos[i] } : {}) }));
    const edits: Array<{ id: string; elements: XmlElement[] }> = [];
    for (const p of prepared) edits.push({ id: p.r.id, elements: await removalEdit(s, p, 'running', ctx.signal) });
    for (const p of prepared) if (!p.item.remove) edits.push({ id: p.r.id, elements: applyEdit(p.d) });
    if (edits.every((e) => e.elements.length === 0)) return results('nothing to change');
    const config = combineEdits(edits.filter((e) => e.elements.length > 0));
    await s.editConfig('running', config, s.rollbackOnError ? { errorOption: 'rollback-on-error' } : {}, ctx.signal);
    return results(`edited running (${edits.length} resources in one edit-config${s.rollbackOnError ? ', rollback-on-error' : ''})`);
  } finally {
    if (locked) await bestEffort(s, ctx, 'netconf unlock running failed', () => s.unlock('running', cleanupSignal(s)));
  }
}
