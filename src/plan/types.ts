import type { Change, Json, JsonObject, ResourceMeta, Resource, TargetSpec } from '../provider.js';
import type { Diagnostic, LoadedResource } from '../load/types.js';

/** What an op does to its target. Terraform's vocabulary, so it reads familiar. */
export type Action = 'create' | 'update' | 'delete' | 'noop';

/**
 * Why: `intent` (the commit changed it), `drift` (the commit didn't, the target did),
 * `deletion` (gone from Git), `retry` (failed earlier, trying the newest spec again),
 * `sweep` (periodic full read).
 */
export type Cause = 'intent' | 'drift' | 'deletion' | 'retry' | 'sweep';

/** What Plumb last recorded about a resource: plain data from the state store. */
export interface RecordedResource {
  id: string;
  kind: string;
  name: string;
  target: string | null;
  file: string;
  spec: Json;
  meta: ResourceMeta;
  specHash: string;
  targetSpec: TargetSpec | null;
  status: ResourceStatus;
  appliedCommit: string | null;
  appliedHash: string | null;
  /** The spec as Plumb last applied it (null: never, or before Plumb recorded it). */
  appliedSpec: Json | null;
  memo: Json | null;
  /** Plumb ever journaled a side effect for it: even if never recorded as applied, a deletion must read and remove. */
  hasJournal: boolean;
}

export type ResourceStatus = 'pending' | 'converged' | 'pending-reboot' | 'drifted' | 'failed' | 'blocked' | 'deleting';

/** A deletion carried across passes until the provider confirms removal. */
export interface PendingTombstone {
  tombstoneId: number;
  resourceId: string;
  kind: string;
  name: string;
  target: string | null;
  targetSpec: TargetSpec | null;
  spec: Json;
  /** What the resource had applied on the target: its removal takes that away. */
  appliedSpec: Json | null;
  meta: ResourceMeta;
  memo: Json | null;
  policy: 'Delete' | 'Retain';
  deletedCommit: string;
  /** Failed removal attempts so far, and when the last one was: retries back off. */
  attempts: number;
  updatedAt: number;
}

export interface Op {
  /** Unique within a plan: the resource id, or `delete:<id>` for removals. */
  key: string;
  /** kind/name */
  id: string;
  kind: string;
  name: string;
  target: string | null;
  action: Action;
  cause: Cause;
  /** Desired resource for create/update/noop; the last known one for delete. */
  resource: Resource | LoadedResource;
  /** For deletes: how to reach the target even when its Target document is gone. */
  targetSpec?: TargetSpec;
  /** For deletes: the tombstone this op settles. */
  tombstoneId?: number;
  /** Recorded (or, after a live read, actual) summary. */
  before: Json | null;
  /** Desired spec. */
  after: JsonObject | null;
  reasons: string[];
  /** Field-level changes, once a live read has diffed the target. */
  changes?: Change[];
  /** Keys of ops in this plan that must finish successfully first. */
  waitFor: string[];
}

export interface Rename {
  from: string;
  to: string;
}

/** What accepting a commit writes to the state store, in one transaction. */
export interface Acceptance {
  commit: string;
  /** Desired resources whose recorded row must be created or refreshed. */
  upserts: LoadedResource[];
  /** Ids whose row should become `pending` (they have a create/update op). */
  pending: string[];
  renames: Rename[];
  /** New tombstones: recorded resources that are gone from Git. */
  deletions: NewTombstone[];
  /** Pending tombstones whose resource came back (same target): nothing to remove any more. */
  resurrected: number[];
}

export interface NewTombstone {
  recorded: RecordedResource;
  /** Delete: remove from the target. Retain: forget it. */
  policy: 'Delete' | 'Retain';
  /** Why it settles without a removal (Retain, never applied, handed over), if it does. */
  settledReason?: string;
}

export interface Plan {
  commit: string;
  /** The commit the delta was computed from, when mode is delta. */
  base?: string;
  mode: 'delta' | 'full';
  /** Topologically ordered by dependsOn; deletions in reverse. */
  ops: Op[];
  acceptance: Acceptance;
  diagnostics: Diagnostic[];
}
