/** The run stage's data: what the runner writes to the journal, and what each op came to. */
import type { Action, Cause } from '../plan/types.js';
import type { Change } from '../provider.js';
import type { Store } from '../state/store.js';

/** What the run stage reads of the journal: enough for plan mode (`plan --live` with a state dir), which writes nothing. */
export type JournalView = Pick<Store, 'status' | 'appliedRecord' | 'resumeProgress' | 'unknownOutcome' | 'notifications'>;

/** The journal and records the runner writes: the state store's methods for them. */
export type Journal = JournalView &
  Pick<
    Store,
    | 'resolveUnknown'
    | 'journalIntent'
    | 'journalFailed'
    | 'journalDone'
    | 'markConverged'
    | 'markDrifted'
    | 'markFailed'
    | 'tombstoneDone'
    | 'tombstoneFailed'
    | 'attempts'
    | 'markPendingReboot'
    | 'checkpoint'
    | 'recordReleased'
    | 'leftovers'
    | 'clearProgress'
    | 'durable'
    | 'clearNotifications'
  >;

export type OpStatus = 'converged' | 'changed' | 'pending-reboot' | 'drifted' | 'deleted' | 'failed' | 'blocked' | 'cancelled' | 'paused' | 'planned';

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
  /** Why a converged resource still waits (pending reboot), what stays as it is, what is unsettled. */
  note?: string;
  /** Plan mode: an earlier write's outcome is unknown or its work unfinished; apply will settle it first. */
  unsettled?: boolean;
  attempts: number;
  durationMs: number;
}
