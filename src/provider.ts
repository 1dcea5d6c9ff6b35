/**
 * The provider contract: the one file every provider imports from src/.
 *
 * A provider knows how to open a session to one kind of target (ssh, redfish,
 * netconf) and, per resource kind, how to read actual state, diff it against the
 * desired spec, apply changes and remove. It knows nothing of Git, YAML, SQLite
 * or the queue: the engine hands it plain data and an AbortSignal.
 */
import { CancelledError, TimeoutError, type PlumbError } from './errors.js';
import type { Secret } from './secrets/secret.js';
import { pointerCovers } from './util/json-pointer.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Structured logger (pino-compatible subset). Log constant messages with fields. */
export interface Log {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
  child(fields: object): Log;
}

/** Common metadata of every resource, with defaults applied by the loader. */
export interface ResourceMeta {
  name: string;
  /** The Target this resource is converged on (absent only for kind Target). */
  target?: string;
  /** Identities (`Kind/name`) that must be converged before this one. */
  dependsOn: string[];
  /** Delete (default): remove from the target when removed from Git. Retain: forget, leave it. */
  deletionPolicy: 'Delete' | 'Retain';
  /** Earlier names of this resource: a rename is not a delete + create. */
  previousNames: string[];
  /** JSON pointers into spec that Plumb sets on create but never fights over afterwards. */
  ignore: string[];
  /** remediate (default): fix drift. report: record it, leave the target alone. */
  drift: 'remediate' | 'report';
  /**
   * Identities whose change in a pass makes this resource act once after them
   * (KindHandler.subscribes, e.g. ssh.Service restartOn). Set by the loader, which
   * also adds them to dependsOn; absent when there are none.
   */
  subscribes?: string[];
}

/** A file of the config repo that a spec field refers to, resolved at the same commit. */
export interface Attachment {
  /** Path inside the config repo. */
  path: string;
  /** Git blob id: part of the resource's spec hash, so editing the file is a change. */
  oid: string;
  size: number;
  read(): Promise<Buffer>;
}

export interface Resource<Spec = unknown> {
  /** `kind/name`: the identity, unique across the repo. */
  id: string;
  kind: string;
  name: string;
  meta: ResourceMeta;
  spec: Spec;
  /** Repo files referenced by spec fields, keyed by the field's JSON pointer (e.g. `/source`). */
  attachments: Record<string, Attachment>;
  /** What the provider remembered from its last apply of this resource (see Applied.memo). */
  memo?: Json;
  /**
   * Set when an apply of exactly this spec was interrupted (a crash) after it
   * journaled progress through OpContext.checkpoint: lets a long operation
   * (a reset, a firmware update) wait for what it already started instead of
   * starting it again.
   */
  resume?: { startedAt: number; progress: Json };
  /**
   * The spec Plumb last applied (and verified) on this target; undefined when
   * it never applied one here. What it had and the spec no longer has was set
   * by Plumb: the kind's diff removes it (a three-way diff: last applied,
   * desired, actual), or, when the target cannot unset it, `released` says so.
   * Whatever someone else set is in neither, and is left alone.
   */
  lastApplied?: Spec;
  /**
   * Set when resources this one subscribes to (ResourceMeta.subscribes) were
   * written since it last acted: their identities. Journaled when each write was,
   * so a crash between their write and this resource's action loses nothing;
   * settled when this resource's apply is verified (or it is converged).
   */
  notified?: string[];
}

/** A target as declared by a `kind: Target` document. Secret fields hold references, never values. */
export interface TargetSpec {
  provider: string;
  address: string;
  port?: number;
  user?: string;
  [field: string]: unknown;
}

export interface Target {
  name: string;
  spec: TargetSpec;
}

/**
 * A Target's settings minus its template `vars`: what a session is opened
 * with. Vars only feed templates at load (a changed render changes the
 * resource's own spec), so changing only them neither reconnects nor re-reads
 * the target's other resources.
 */
export function connectionSettings(spec: TargetSpec): TargetSpec {
  if (!('vars' in spec)) return spec;
  const { vars: _vars, ...rest } = spec;
  return rest as TargetSpec;
}

/** Resolves secret references (`file:PATH`, `env:NAME`) at dispatch time only. */
export interface Secrets {
  resolve(ref: string): Promise<Secret>;
}

export interface OpenContext {
  secrets: Secrets;
  signal: AbortSignal;
  log: Log;
  /** Connect/handshake deadline in ms. */
  connectTimeoutMs: number;
}

/** Per-operation context: every network call must honour `signal`. */
export interface OpContext {
  signal: AbortSignal;
  /**
   * When the operation's deadline passes (epoch ms; `signal` then aborts with a
   * TimeoutError); unset when the caller set none. A wait that would outlast it
   * (a target's Retry-After) fails at once instead.
   */
  deadlineAt?: number;
  log: Log;
  /** Resolves secret references a resource's spec holds (e.g. a BMC account's password). */
  secrets: Secrets;
  /**
   * A keyed hash (HMAC-SHA256 with a key private to this Plumb installation) of a
   * value that can't be read back from the target, such as a password: remember
   * the hash in Applied.memo, compare it on the next read. Never the value itself.
   */
  keyedHash(value: Buffer | string): string;
  /**
   * Journals progress of a long side effect before the next step (apply only):
   * after a crash the next apply of the same spec sees it as Resource.resume.
   * A step the target clearly refused was not performed: checkpoint the
   * progress as it was before that step (null: nothing under way), so nothing
   * resumes a side effect that never happened. Await it: progress is durable
   * (survives a power loss) when the promise resolves, and only then may the
   * step it describes begin.
   */
  checkpoint?(progress: Json): void | Promise<void>;
  /**
   * Set on the read that verifies this op's own write, a moment after it. A kind
   * may then trust what its write just established and the target acknowledged
   * (e.g. the bytes of a file it renamed into place) instead of reading it back,
   * as long as it still reads what others could have changed meanwhile.
   */
  afterWrite?: boolean;
}

/** A live connection to one target. Pooled: one per target, reused across operations and passes. */
export interface Session {
  /** False once the underlying connection is known to be gone; the pool then opens a new one. */
  readonly alive: boolean;
  close(): Promise<void>;
}

/**
 * One field that differs. `path` is a JSON pointer into spec (so `ignore:` can
 * filter it generically); `before` is actual, `after` is desired.
 */
export interface Change {
  path: string;
  before: Json | undefined;
  after: Json | undefined;
  /** Optional human note, e.g. "content differs (412 bytes -> 418 bytes)". */
  note?: string;
}

export interface Applied {
  /**
   * Remembered and handed back as Resource.memo: e.g. the spec hash a one-shot
   * command ran for. Never a secret. It replaces the whole previous memo (start
   * from r.memo to keep parts of it); undefined keeps the previous one.
   */
  memo?: Json;
  /** Output worth keeping in the event log (truncated by the engine). */
  output?: string;
}

/**
 * Something a resource owns on its target, in a normalised form shared by the
 * kinds of one provider: `['path', '/etc/app/x.conf']`, a NETCONF element path,
 * `['system', 'bios', 'ProcTurboMode']`. Two resources on one target whose
 * claims overlap are a validation error, so plan and apply never see two
 * owners of one object.
 */
export interface Claim {
  /** Segments, outermost first. Claims overlap when their keys are equal, or one is `whole` and the other lies below it. */
  key: string[];
  /** The claim covers everything below its key too (a replace-mode subtree, a whole account). */
  whole?: boolean;
  /** How a person would name it, e.g. `file /etc/app/x.conf`. */
  label: string;
  /** Spec field (JSON pointer) the claim comes from, for the diagnostic's position. */
  pointer?: string;
}

/** How one kind is converged. One file per kind. */
export interface KindHandler<Spec = unknown, Actual = unknown, S extends Session = Session> {
  /** `<provider>.<Kind>`, e.g. `ssh.File`. */
  kind: string;
  /** Schema file name under schemas/, e.g. `ssh.file.schema.json`. */
  schema: string;
  /** Spec fields (JSON pointers) that name files of the config repo; the loader resolves them into attachments. */
  fileRefs?: string[];
  /**
   * Top-level spec fields of a template (`inline` text or a repo `file`, also in
   * fileRefs) that the loader renders from the Target's vars into `into`; the
   * kind sees the rendered text there (src/load/template.ts).
   */
  template?: { inline: string; file: string; into: string };
  /**
   * Pure: the canonical form of a spec that passed its schema (e.g. a lexically
   * normal path). Plan, apply and claims see only this form. May throw a
   * SpecError (with `pointer`) for a spec the schema cannot express as invalid.
   */
  normalize?(spec: Spec): Spec;
  /**
   * Pure: what the resource (spec, metadata.name) owns on its target (see Claim). Every kind that
   * changes the target declares its claims; one that owns nothing (ssh.Command)
   * returns none. May throw a SpecError (with `pointer`), reported at load.
   */
  claims?(spec: Spec, name: string): Claim[];
  /**
   * Pure: resources (`Kind/name`, on the same target) whose change makes this one
   * act once after them in the same pass: Puppet's subscribe, Ansible's handlers
   * (ssh.Service restartOn). The loader checks they exist on the same target and
   * orders this resource after them; the runner journals a notification with
   * each of their writes and hands the pending ones to this kind as
   * Resource.notified, which its diff turns into a change (a restart).
   */
  subscribes?(spec: Spec): Array<{ id: string; pointer: string }>;
  /** Read actual state. `undefined` means absent. Reads only: never changes the target. */
  read(s: S, r: Resource<Spec>, ctx: OpContext): Promise<Actual | undefined>;
  /** Pure and cheap: what apply would change. `[]` means converged. */
  diff(r: Resource<Spec>, actual: Actual | undefined): Change[];
  /**
   * Make the changes. Idempotent: applying twice is the same as once. `actual`
   * is what the read before it found (undefined: absent), the state the
   * changes were planned against: e.g. what the write will create, not find.
   */
  apply(s: S, r: Resource<Spec>, changes: Change[], ctx: OpContext, actual?: Actual): Promise<Applied | void>;
  /**
   * Remove what this resource created. Absent is success. Optional: a kind that
   * leaves nothing behind to undo (ssh.Command) has no remove, and its deletion
   * settles without touching the target.
   */
  remove?(s: S, r: Resource<Spec>, ctx: OpContext): Promise<void>;
  /**
   * The spec is applied but takes effect only at the next reboot (BIOS settings
   * staged in a settings object): returns why, and the resource is recorded as
   * `pending-reboot`, a status beside converged and drifted, not as a change to
   * make again. Called only when diff is empty.
   */
  pendingReboot?(r: Resource<Spec>, actual: Actual): string | undefined;
  /**
   * How long one operation on this resource may take when that is longer than
   * the daemon's `run.opTimeout` (a reboot to apply BIOS settings, a firmware
   * update). The runner uses the larger of the two; every operation still has one.
   */
  deadlineMs?(r: Resource<Spec>): number | undefined;
  /** Small JSON summary of actual state for `plumb status` and the event log. Optional. */
  summarize?(actual: Actual | undefined): Json;
  /**
   * Whether repeating an interrupted apply is safe without a re-read proving the
   * outcome (e.g. ssh.Command without a guard). Default true: read-before-act is enough.
   */
  safeToRetryAfterCrash?(r: Resource<Spec>): boolean;
  /**
   * What to remember when an operator says an apply of unknown outcome did
   * finish (`plumb resolve KIND/NAME --ran`), e.g. a guardless command's
   * ran-spec hash. Only for kinds whose read cannot tell by itself.
   */
  ranMemo?(r: Resource<Spec>): Json;
  /**
   * Fields Plumb set before (r.lastApplied) that the spec no longer has and
   * that stay as they are on the target, with why (a BIOS attribute cannot be
   * unset; a file keeps its mode): shown in plan and the audit log, never a change.
   */
  released?(r: Resource<Spec>): Array<{ path: string; note: string }>;
  /**
   * Removes what an unfinished write left behind (a temporary file), described
   * by the progress it journaled through OpContext.checkpoint. Called in apply
   * mode before the next read of the resource (and before its removal), after
   * a crash or a write that failed half way. Idempotent; true when nothing of it is left.
   */
  cleanup?(s: S, r: Resource<Spec>, progress: Json, ctx: OpContext): Promise<boolean>;
  /**
   * Optional: this kind's writes on one target are made by one call per pass
   * (every package a pass changes on a host, in one package-manager run). The
   * runner groups the kind's ops of one target into one unit, as it does for
   * Provider.applyBatch: each member is still read, diffed, journaled and
   * verified on its own; this call makes the writes, items in dependency order.
   * Unlike a device transaction it need not be all or nothing: when it throws,
   * every member's write is settled by the error's outcome (refused, unknown)
   * and the next read finds out what happened. Returns one Applied per item.
   */
  applyBatch?(s: S, items: BatchItem[], ctx: OpContext): Promise<Array<Applied | void>>;
  /**
   * Optional, with applyBatch: reads many resources in one round trip (one
   * dpkg-query for every package of the unit): the answers read would give, in
   * order. The runner uses it for a unit's reads before and after its writes.
   */
  readMany?(s: S, rs: Resource<Spec>[], ctx: OpContext): Promise<Array<Actual | undefined>>;
  /**
   * Journaled progress of an unfinished write, in words, for `plumb plan`
   * (which never resumes anything): "a confirmed commit may still be pending".
   */
  describeProgress?(progress: Json): string | undefined;
}

/** One resource's share of a per-target transaction: its changes, or its removal. */
export interface BatchItem {
  r: Resource;
  changes: Change[];
  /** Remove what the resource owns instead of applying changes. */
  remove: boolean;
  /** What the read before the transaction found (undefined: absent), as for KindHandler.apply. */
  actual?: unknown;
}

/** A provider plugin: how to reach one kind of target, and the kinds it converges there. */
export interface Provider<S extends Session = Session> {
  /** The `provider:` value of Target specs, e.g. `ssh`. */
  name: string;
  /** Schema file for this provider's Target spec, under schemas/. */
  targetSchema: string;
  kinds: KindHandler<unknown, unknown, S>[];
  open(target: Target, ctx: OpenContext): Promise<S>;
  /**
   * Operations one session takes at once (default 1). Claims keep them on different
   * objects and dependsOn orders them; the session must then be safe to share.
   * `run.perTarget` in the config overrides it for every provider.
   */
  perTarget?: number;
  /**
   * Optional, for transactional devices (NETCONF candidate + commit): applies
   * everything one pass changes on one target as a single transaction, items in
   * dependency order. All or nothing: if it throws, the device must be as before.
   * Returns one Applied per item. The runner still reads, diffs, journals and
   * verifies each resource; only the writes are batched.
   */
  applyBatch?(s: S, items: BatchItem[], ctx: OpContext): Promise<Array<Applied | void>>;
}

/**
 * A provider without its transport: its name, Target schema and kinds. What parsing
 * needs (parse workers, `plumb validate`), from each provider's `schema.ts`, which
 * does not load the SSH or HTTP client.
 */
export type ProviderSchema<S extends Session = Session> = Pick<Provider<S>, 'name' | 'targetSchema' | 'kinds'>;

// ---- aborts: every provider call honours OpContext.signal the same way -------------------

/** True when an abort reason means "the deadline passed" rather than "the pass was superseded". */
export function isTimeoutReason(reason: unknown): boolean {
  if (reason instanceof TimeoutError) return true;
  return typeof reason === 'object' && reason !== null && (reason as { name?: unknown }).name === 'TimeoutError';
}

/**
 * The typed error an aborted call rejects with: TimeoutError for deadlines,
 * CancelledError otherwise. `notSent`: the abort was noticed before anything
 * went to the target, so the journal records the write as not sent.
 */
export function abortError(signal: AbortSignal, what: string, options: { notSent?: boolean } = {}): PlumbError {
  const reason: unknown = signal.reason;
  const notSent = options.notSent === true;
  if ((reason instanceof TimeoutError || reason instanceof CancelledError) && reason.notSent === notSent) return reason;
  if (isTimeoutReason(reason)) return new TimeoutError(reason instanceof TimeoutError ? reason.message : `${what}: deadline passed, cancelled`, { cause: reason, notSent });
  return new CancelledError(reason instanceof CancelledError ? reason.message : `${what}: cancelled`, { cause: reason, notSent });
}

/** Before a step starts: an abort here means the step was never sent. */
export function throwIfAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw abortError(signal, what, { notSent: true });
}

/** Waits for `promise` unless `signal` aborts first (the underlying work is left to finish on its own). */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Waits `ms`, or rejects with the signal's typed error as soon as it aborts (polls of long operations). */
export function delay(ms: number, signal: AbortSignal, what: string): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal, what));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A diff minus what the resource's `ignore:` pointers hand to someone else, once
 * the thing exists (ignored fields are still set on create). The runner and a
 * transactional provider's own verification apply the same rule.
 */
export function withoutIgnored(r: Resource, actual: unknown, changes: Change[]): Change[] {
  if (actual === undefined || r.meta.ignore.length === 0) return changes;
  return changes.filter((c) => !r.meta.ignore.some((pointer) => pointerCovers(pointer, c.path)));
}
