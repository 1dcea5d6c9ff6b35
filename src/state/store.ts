import { open } from 'node:fs/promises';
import type Database from 'better-sqlite3';
import { StateError } from '../errors.js';
import type { WriteOutcome } from '../errors.js';
import type { Change, Json, ResourceMeta, TargetSpec } from '../provider.js';
import type { Diagnostic } from '../load/types.js';
import { diagnosticToJson } from '../load/types.js';
import type { Acceptance, Cause, PendingTombstone, RecordedResource, ResourceStatus } from '../plan/types.js';
import { redactText } from '../secrets/redact.js';
import type { Db } from './db.js';

const OUTPUT_LIMIT = 4096;

export interface SourceState {
  remote: string | null;
  branch: string | null;
  path: string | null;
  fetchedCommit: string | null;
  fetchedAt: number | null;
  acceptedCommit: string | null;
  acceptedAt: number | null;
  appliedCommit: string | null;
  appliedAt: number | null;
  rejectedCommit: string | null;
  lastError: string | null;
  lastErrorAt: number | null;
  diagnostics: Json[];
}

/** A finished side effect, written in one transaction with its journal entry. */
export interface Outcome {
  opId: number;
  id: string;
  kind: string;
  target: string | null;
  action: 'create' | 'update';
  cause: Cause;
  commit: string;
  specHash: string;
  /** The spec applied: what a later spec's removed fields are computed against. */
  spec: Json;
  changes: Change[];
  observed: Json;
  memo: Json | undefined;
  output: string | undefined;
  adopted: boolean;
}

/** A journaled write whose outcome nobody knows (sent, no answer; or a crash mid-operation). */
export interface UnknownOutcome {
  opId: number;
  at: number;
  /** What happened, in words: the lost connection, the deadline, the crash. */
  why: string;
  specHash: string | null;
}

export interface ResourceView {
  id: string;
  kind: string;
  name: string;
  target: string | null;
  file: string;
  line: number;
  status: ResourceStatus;
  specHash: string;
  acceptedCommit: string;
  appliedCommit: string | null;
  appliedAt: number | null;
  observed: Json | null;
  observedAt: number | null;
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  lastErrorCode: string | null;
  /** Why it is in its status, e.g. which BIOS settings wait for a reboot. */
  statusDetail: string | null;
}

export interface EventView {
  id: number;
  at: number;
  resourceId: string | null;
  kind: string | null;
  target: string | null;
  type: string;
  cause: string | null;
  commit: string | null;
  before: Json | null;
  after: Json | null;
  message: string | null;
  output: string | null;
}

export interface TombstoneView {
  id: number;
  resourceId: string;
  target: string | null;
  policy: string;
  state: string;
  deletedCommit: string;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface PauseView {
  /** A target name, or Kind/name. */
  selector: string;
  reason: string;
  by: string;
  until: number | null;
  since: number;
}

type Row = Record<string, unknown>;

/** What keeps a resource from being converged at the accepted commit. */
const UNSETTLED: readonly ResourceStatus[] = ['pending', 'failed', 'blocked', 'deleting'];
const UNSETTLED_SQL = UNSETTLED.map((s) => `'${s}'`).join(', ');

/** Why an entry left open at start-up has an unknown outcome. */
const CRASHED = 'the Plumb process stopped mid-operation (a crash, kill -9 or power loss)';

const json = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));
const parse = <T>(text: unknown): T | null => (typeof text === 'string' ? (JSON.parse(text) as T) : null);

/**
 * Every read and write of Plumb's state. Writes that belong together (a journal
 * entry and the resource row it settles, a commit and its tombstones) share one
 * transaction, so a crash leaves either both or neither.
 *
 * Durability: the connection commits with synchronous=FULL (an fsync per
 * commit), except the run stage's bookkeeping (`#relaxed`): what a read
 * re-derives after a crash (converged, done, failed, reachable) commits without
 * an fsync of its own, and an intent is made durable by `durable()`, an fsync of
 * the WAL off the event loop that every caller waiting meanwhile shares (group
 * commit). A process crash loses nothing either way (the WAL is written at
 * commit); a power loss may lose relaxed writes since the last fsync, which the
 * next pass reads again (an open intent becomes an unknown outcome and is re-read).
 */
export class Store {
  readonly db: Db;
  readonly #now: () => number;
  readonly #stmts = new Map<string, Database.Statement>();
  #pauseGeneration = 0;
  /** The WAL fsync in flight, and the one queued behind it for callers that wrote after it started. */
  #syncing: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  constructor(db: Db, now: () => number = Date.now) {
    this.db = db;
    this.#now = now;
  }
  /** The clock this store stamps rows with (the engine's): pauses and retries are compared on it. */
  now(): number {
    return this.#now();
  }


  /**
   * Resolves when everything committed before the call survives a power loss:
   * one fsync of the WAL (in the thread pool, so other targets' work goes on),
   * shared by every caller that asks while it runs. Before a side effect, after
   * its intent (invariant 5).
   */
  durable(): Promise<void> {
    if (this.db.memory || this.db.readonly) return Promise.resolve();
    if (!this.#syncing) {
      const syncing = this.#fsyncWal().finally(() => {
        if (this.#syncing === syncing) this.#syncing = undefined;
      });
      this.#syncing = syncing;
      return syncing;
    }
    // The fsync in flight may have started before the caller's commit: the next one covers it.
    this.#queued ??= this.#syncing.then(
      () => this.#afterQueue(),
      () => this.#afterQueue(),
    );
    return this.#queued;
  }

  #afterQueue(): Promise<void> {
    this.#queued = undefined;
    return this.durable();
  }

  /** fsync of the WAL file (Linux flushes a file's pages whichever descriptor wrote them); no WAL: everything is in the database file. */
  async #fsyncWal(): Promise<void> {
    for (const path of [`${this.db.name}-wal`, this.db.name]) {
      let file;
      try {
        file = await open(path, 'r');
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') continue;
        throw new StateError(`cannot make the journal durable: ${(err as Error).message}`, { cause: err, notSent: true });
      }
      try {
        await file.sync();
        return;
      } catch (err) {
        throw new StateError(`cannot make the journal durable: fsync ${path} failed (${(err as Error).message})`, { cause: err, notSent: true });
      } finally {
        await file.close();
      }
    }
  }

  /** A write a read re-derives after a crash: committed without its own fsync (the next durable commit or `durable()` syncs it). */
  #relaxed<T>(write: () => T): T {
    if (this.db.inTransaction || this.db.memory) return write();
    this.db.pragma('synchronous = NORMAL');
    try {
      return write();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  close(): void {
    this.db.close();
  }

  #stmt(sql: string): Database.Statement {
    let stmt = this.#stmts.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#stmts.set(sql, stmt);
    }
    return stmt;
  }

  // ---- source -------------------------------------------------------------

  source(): SourceState {
    const r = this.#stmt('SELECT * FROM source WHERE id = 1').get() as Row;
    return {
      remote: r.remote as string | null,
      branch: r.branch as string | null,
      path: r.path as string | null,
      fetchedCommit: r.fetched_commit as string | null,
      fetchedAt: r.fetched_at as number | null,
      acceptedCommit: r.accepted_commit as string | null,
      acceptedAt: r.accepted_at as number | null,
      appliedCommit: r.applied_commit as string | null,
      appliedAt: r.applied_at as number | null,
      rejectedCommit: r.rejected_commit as string | null,
      lastError: r.last_error as string | null,
      lastErrorAt: r.last_error_at as number | null,
      diagnostics: parse<Json[]>(r.diagnostics) ?? [],
    };
  }

  setSourceConfig(remote: string, branch: string, path: string): void {
    this.#stmt('UPDATE source SET remote = ?, branch = ?, path = ? WHERE id = 1').run(remote, branch, path);
  }

  recordFetched(commit: string): void {
    this.#stmt('UPDATE source SET fetched_commit = ?, fetched_at = ? WHERE id = 1').run(commit, this.#now());
  }

  /** A fetch or git failure: the last good commit stays in force. */
  recordSourceError(message: string): void {
    this.#stmt('UPDATE source SET last_error = ?, last_error_at = ? WHERE id = 1').run(redactText(message), this.#now());
  }

  /** A commit refused for diagnostics: nothing from it is applied or deleted. */
  rejectCommit(commit: string, diagnostics: Diagnostic[]): void {
    const source = this.source();
    if (source.rejectedCommit === commit) return; // already recorded: keep the audit log quiet on every poll
    const first = diagnostics[0];
    const message = `commit ${commit.slice(0, 12)} rejected: ${diagnostics.length} error(s)${first ? `; first: ${first.file}:${first.line}:${first.col}: ${first.message}` : ''}`;
    this.db.transaction(() => {
      this.#stmt('UPDATE source SET rejected_commit = ?, last_error = ?, last_error_at = ?, diagnostics = ? WHERE id = 1').run(
        commit,
        redactText(message),
        this.#now(),
        JSON.stringify(diagnostics.map(diagnosticToJson)),
      );
      this.#event({ type: 'reject', commit, message, after: diagnostics.map(diagnosticToJson) });
    })();
  }

  /**
   * Accepts a commit that loaded and validated completely: it becomes the desired
   * state, and its deletions become tombstones, in the same transaction.
   */
  accept(acceptance: Acceptance, targetSpecs: Map<string, TargetSpec>, options: { quiet?: boolean } = {}): void {
    const now = this.#now();
    const { commit } = acceptance;
    this.db.transaction(() => {
      const previous = this.source().acceptedCommit;
      // Re-accepting the same commit (a retry or sweep pass) keeps a newer rejection on record.
      if (previous !== commit) {
        this.#stmt(
          `UPDATE source SET accepted_commit = ?, accepted_at = ?, rejected_commit = NULL, last_error = NULL,
             last_error_at = NULL, diagnostics = NULL WHERE id = 1`,
        ).run(commit, now);
      }
      if (previous !== commit && !options.quiet) {
        this.#event({
          type: 'accept',
          commit,
          message: `accepted ${commit.slice(0, 12)}${previous ? ` (was ${previous.slice(0, 12)})` : ''}`,
          after: { upserts: acceptance.upserts.length, deletions: acceptance.deletions.length, renames: acceptance.renames.length },
        });
      }

      for (const rename of acceptance.renames) {
        this.#stmt('UPDATE resources SET id = ?, name = ? WHERE id = ?').run(rename.to, rename.to.slice(rename.to.indexOf('/') + 1), rename.from);
        // History and journal follow the resource, so `plumb history NEW` shows its whole life.
        this.#stmt('UPDATE ops SET resource_id = ? WHERE resource_id = ?').run(rename.to, rename.from);
        this.#stmt('UPDATE events SET resource_id = ? WHERE resource_id = ?').run(rename.to, rename.from);
        this.#event({ type: 'rename', resourceId: rename.to, commit, message: `renamed from ${rename.from}`, before: rename.from, after: rename.to });
      }

      const upsert = this.#stmt(
        `INSERT INTO resources (id, kind, name, target, file, line, spec, meta, spec_hash, target_spec, status, accepted_commit)
         VALUES (@id, @kind, @name, @target, @file, @line, @spec, @meta, @spec_hash, @target_spec, 'pending', @commit)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, target = excluded.target, file = excluded.file, line = excluded.line,
           spec = excluded.spec, meta = excluded.meta, spec_hash = excluded.spec_hash, target_spec = excluded.target_spec,
           accepted_commit = excluded.accepted_commit,
           -- A new spec (or a new target) is worked on at once, whatever backoff an older spec was in.
           status = CASE WHEN resources.status = 'deleting' OR resources.spec_hash <> excluded.spec_hash OR resources.target IS NOT excluded.target
                         THEN 'pending' ELSE resources.status END,
           attempts = CASE WHEN resources.spec_hash <> excluded.spec_hash OR resources.target IS NOT excluded.target THEN 0 ELSE resources.attempts END,
           next_attempt_at = CASE WHEN resources.spec_hash <> excluded.spec_hash OR resources.target IS NOT excluded.target THEN NULL ELSE resources.next_attempt_at END,
           -- Moved to another target: nothing has been applied there yet.
           applied_commit = CASE WHEN resources.target IS excluded.target THEN resources.applied_commit END,
           applied_hash = CASE WHEN resources.target IS excluded.target THEN resources.applied_hash END,
           applied_spec = CASE WHEN resources.target IS excluded.target THEN resources.applied_spec END,
           applied_at = CASE WHEN resources.target IS excluded.target THEN resources.applied_at END,
           adopted = CASE WHEN resources.target IS excluded.target THEN resources.adopted ELSE 0 END,
           memo = CASE WHEN resources.target IS excluded.target THEN resources.memo END,
           observed = CASE WHEN resources.target IS excluded.target THEN resources.observed END`,
      );
      for (const r of acceptance.upserts) {
        const target = r.meta.target ?? null;
        upsert.run({
          id: r.id,
          kind: r.kind,
          name: r.name,
          target,
          file: r.file,
          line: r.line,
          spec: JSON.stringify(r.spec),
          meta: JSON.stringify(r.meta),
          spec_hash: r.specHash,
          target_spec: json(target ? targetSpecs.get(target) : null),
          commit,
        });
      }
      const markPending = this.#stmt("UPDATE resources SET status = 'pending' WHERE id = ? AND status <> 'failed'");
      for (const id of acceptance.pending) markPending.run(id);

      for (const tombstoneId of acceptance.resurrected) {
        this.#stmt("UPDATE tombstones SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'pending'").run(now, tombstoneId);
      }

      const insertTombstone = this.#stmt(
        `INSERT INTO tombstones (resource_id, kind, name, target, target_spec, spec, applied_spec, meta, memo, policy, state, deleted_commit, last_error, created_at, updated_at)
         VALUES (@resource_id, @kind, @name, @target, @target_spec, @spec, @applied_spec, @meta, @memo, @policy, @state, @commit, @note, @now, @now)`,
      );
      const live = new Set(acceptance.upserts.map((r) => r.id));
      for (const deletion of acceptance.deletions) {
        const r = deletion.recorded;
        const state = deletion.settledReason ? 'retained' : 'pending';
        // One pending removal per resource and target: an older one on another target (a move) stays.
        if (state === 'pending') this.#stmt("UPDATE tombstones SET state = 'cancelled', updated_at = ? WHERE resource_id = ? AND target IS ? AND state = 'pending'").run(now, r.id, r.target);
        insertTombstone.run({
          resource_id: r.id,
          kind: r.kind,
          name: r.name,
          target: r.target,
          target_spec: json(r.targetSpec),
          spec: JSON.stringify(r.spec),
          applied_spec: json(r.appliedSpec),
          meta: JSON.stringify(r.meta),
          memo: json(r.memo),
          policy: deletion.policy,
          state,
          commit,
          note: deletion.settledReason ?? null,
          now,
        });
        if (live.has(r.id)) {
          // Moved to another target: the row now describes the new one; only the tombstone speaks for the old.
          if (state !== 'pending') this.#event({ type: 'retain', resourceId: r.id, kind: r.kind, target: r.target, cause: 'deletion', commit, message: deletion.settledReason ?? null, before: r.spec });
        } else if (state === 'pending') {
          this.#stmt("UPDATE resources SET status = 'deleting' WHERE id = ?").run(r.id);
        } else {
          this.#stmt('DELETE FROM resources WHERE id = ?').run(r.id);
          this.#event({ type: 'retain', resourceId: r.id, kind: r.kind, target: r.target, cause: 'deletion', commit, message: deletion.settledReason ?? null, before: r.spec });
        }
      }
    })();
  }

  recordApplied(commit: string): void {
    this.#stmt('UPDATE source SET applied_commit = ?, applied_at = ? WHERE id = 1 AND (applied_commit IS NOT ? )').run(commit, this.#now(), commit);
  }

  // ---- resources ----------------------------------------------------------

  recorded(ids: Iterable<string>): Map<string, RecordedResource> {
    const out = new Map<string, RecordedResource>();
    const stmt = this.#stmt(`SELECT r.*, EXISTS (SELECT 1 FROM ops o WHERE o.resource_id = r.id) AS has_journal FROM resources r WHERE r.id = ?`);
    for (const id of ids) {
      const row = stmt.get(id) as Row | undefined;
      if (row) out.set(id, toRecorded(row));
    }
    return out;
  }

  allRecorded(): Map<string, RecordedResource> {
    const rows = this.#stmt(
      `SELECT r.*, EXISTS (SELECT 1 FROM ops o WHERE o.resource_id = r.id) AS has_journal FROM resources r`,
    ).all() as Row[];
    return new Map(rows.map((row) => [row.id as string, toRecorded(row)]));
  }

  /** Resources not converged whose retry time has come: the next pass works on them with the newest spec. */
  retryDue(now: number): string[] {
    return (
      this.#stmt(
        `SELECT id FROM resources WHERE status IN ('pending', 'failed', 'blocked') AND kind <> 'Target'
         AND (next_attempt_at IS NULL OR next_attempt_at <= ?)`,
      ).all(now) as Row[]
    ).map((r) => r.id as string);
  }

  /** When the next retry falls due, for the daemon's timer. */
  nextRetryAt(): number | null {
    const row = this.#stmt("SELECT MIN(next_attempt_at) AS at FROM resources WHERE status IN ('failed', 'blocked') AND next_attempt_at IS NOT NULL").get() as Row;
    return (row.at as number | null) ?? null;
  }

  status(id: string): ResourceStatus | undefined {
    const row = this.#stmt('SELECT status FROM resources WHERE id = ?').get(id) as Row | undefined;
    return row?.status as ResourceStatus | undefined;
  }

  /**
   * A read found the resource converged: refresh what was observed without
   * journaling anything, and record that the target now has this spec (after a
   * crash between apply and its journal entry, this read is what proves it).
   * Something that matched before Plumb ever touched it is marked adopted.
   */
  markConverged(id: string, observed: Json, applied?: { commit: string; specHash: string; spec: Json }): void {
    this.#relaxed(() => {
      const now = this.#now();
      // A sweep over a converged fleet must not cost one fsync per resource: write only what changed.
      const row = this.#stmt('SELECT status, observed, applied_hash FROM resources WHERE id = ?').get(id) as Row | undefined;
      if (row?.status === 'converged' && row.observed === json(observed) && (!applied || row.applied_hash === applied.specHash)) return;
      if (!applied) {
        this.#stmt(
          `UPDATE resources SET status = 'converged', observed = ?, observed_at = ?, attempts = 0, next_attempt_at = NULL,
             last_error = NULL, last_error_code = NULL, status_detail = NULL WHERE id = ?`,
        ).run(json(observed), now, id);
        return;
      }
      this.#stmt(
        `UPDATE resources SET status = 'converged', observed = ?, observed_at = ?, attempts = 0, next_attempt_at = NULL,
           last_error = NULL, last_error_code = NULL, status_detail = NULL,
           adopted = CASE WHEN applied_commit IS NULL AND NOT EXISTS (SELECT 1 FROM ops WHERE ops.resource_id = resources.id) THEN 1 ELSE adopted END,
           applied_commit = CASE WHEN applied_hash IS ? THEN applied_commit ELSE ? END,
           applied_at = CASE WHEN applied_hash IS ? THEN applied_at ELSE ? END,
           applied_hash = ?, applied_spec = ?
         WHERE id = ?`,
      ).run(json(observed), now, applied.specHash, applied.commit, applied.specHash, now, applied.specHash, json(applied.spec), id);
    });
  }

  /**
   * Applied, but taking effect only at the next reboot (and the resource's
   * policy is not to reboot now): recorded as pending-reboot, one event per
   * distinct reason, nothing journaled, nothing re-applied.
   */
  markPendingReboot(input: { id: string; kind: string; target: string | null; reason: string; observed: Json; commit: string; specHash: string; spec: Json }): void {
    this.#relaxed(() => {
      const row = this.#stmt('SELECT status, status_detail, applied_hash FROM resources WHERE id = ?').get(input.id) as Row | undefined;
      if (row?.status === 'pending-reboot' && row.status_detail === input.reason && row.applied_hash === input.specHash) return;
      const now = this.#now();
      this.db.transaction(() => {
        this.#stmt(
          `UPDATE resources SET status = 'pending-reboot', status_detail = ?, observed = ?, observed_at = ?, attempts = 0, next_attempt_at = NULL,
             last_error = NULL, last_error_code = NULL,
             applied_commit = CASE WHEN applied_hash IS ? THEN applied_commit ELSE ? END,
             applied_at = CASE WHEN applied_hash IS ? THEN applied_at ELSE ? END, applied_hash = ?, applied_spec = ?
           WHERE id = ?`,
        ).run(input.reason, json(input.observed), now, input.specHash, input.commit, input.specHash, now, input.specHash, json(input.spec), input.id);
        this.#event({ type: 'pending-reboot', resourceId: input.id, kind: input.kind, target: input.target, cause: 'intent', commit: input.commit, message: input.reason });
      })();
    });
  }

  /** Progress of a journaled long side effect (a reset issued, a firmware task started); null withdraws it (the step was refused). */
  checkpoint(opId: number, progress: Json): void {
    this.#relaxed(() => {
      this.#stmt("UPDATE ops SET progress = ? WHERE id = ? AND state = 'intent'").run(json(progress), opId);
    });
  }

  /**
   * The newest progress an unfinished apply of exactly this spec journaled
   * (its outcome unknown, or refused after it started something) since the last
   * success: a second crash must not fall back to older progress. A step the
   * target refused withdrew its progress (checkpoint null), so it is not here.
   */
  resumeProgress(id: string, specHash: string): { startedAt: number; progress: Json } | undefined {
    const row = this.#stmt(
      `SELECT started_at, progress FROM ops WHERE resource_id = ? AND spec_hash = ? AND state IN ('unknown', 'refused', 'not-sent') AND progress IS NOT NULL
         AND id > COALESCE((SELECT MAX(id) FROM ops WHERE resource_id = ? AND state = 'done'), 0)
       ORDER BY id DESC LIMIT 1`,
    ).get(id, specHash, id) as Row | undefined;
    return row ? { startedAt: row.started_at as number, progress: parse<Json>(row.progress)! } : undefined;
  }

  markTargetReachable(name: string, reachable: boolean, error?: string): void {
    this.#relaxed(() => {
      this.#stmt('UPDATE resources SET status = ?, last_error = ?, observed_at = ? WHERE id = ?').run(
        reachable ? 'converged' : 'failed',
        error ? redactText(error) : null,
        this.#now(),
        `Target/${name}`,
      );
    });
  }

  /** Fields Plumb set before that the new spec leaves out, and that stay on the target: one audit event per spec that let go of them. */
  recordReleased(input: { id: string; kind: string; target: string | null; commit: string; notes: string[] }): void {
    this.#relaxed(() => {
      this.#event({ type: 'release', resourceId: input.id, kind: input.kind, target: input.target, cause: 'intent', commit: input.commit, message: `no longer managed, left as it is: ${input.notes.join('; ')}` });
    });
  }

  /** Drift found on a resource whose policy is `report`: recorded and labelled as drift, the target left alone. */
  markDrifted(id: string, kind: string, target: string | null, changes: Change[], observed: Json, commit: string | null): void {
    this.#relaxed(() => {
      const previous = this.#stmt('SELECT status, observed FROM resources WHERE id = ?').get(id) as Row | undefined;
      this.db.transaction(() => {
        this.#stmt('UPDATE resources SET status = ?, observed = ?, observed_at = ? WHERE id = ?').run('drifted', json(observed), this.#now(), id);
        // Report drift once per distinct observation, not on every sweep.
        if (previous?.status !== 'drifted' || previous.observed !== json(observed)) {
          this.#event({ type: 'drift', resourceId: id, kind, target, cause: 'drift', commit, message: describeChanges(changes), before: changesBefore(changes), after: changesAfter(changes) });
        }
      })();
    });
  }

  markFailed(input: { id: string; kind: string; target: string | null; status: 'failed' | 'blocked'; code: string; message: string; attempts: number; nextAttemptAt: number | null; commit: string | null; cause: Cause }): void {
    this.#relaxed(() => {
      const message = redactText(input.message);
      this.db.transaction(() => {
        const previous = this.#stmt('SELECT status, last_error FROM resources WHERE id = ?').get(input.id) as Row | undefined;
        this.#stmt(
          'UPDATE resources SET status = ?, last_error = ?, last_error_code = ?, attempts = attempts + ?, next_attempt_at = ? WHERE id = ?',
        ).run(input.status, message, input.code, input.attempts, input.nextAttemptAt, input.id);
        // One event per new failure, not one per retry of the same one.
        if (previous?.status !== input.status || previous.last_error !== message) {
          this.#event({ type: 'fail', resourceId: input.id, kind: input.kind, target: input.target, cause: input.cause, commit: input.commit, message: `${input.code}: ${message}` });
        }
      })();
    });
  }

  // ---- the ops journal ----------------------------------------------------

  /** Journals the intent of a side effect before it happens (invariant 5). */
  /**
   * `notify`: resources subscribed to this one (ssh.Service restartOn); each gets a
   * notification in the same transaction, so it is as durable as the intent.
   */
  journalIntent(input: { id: string; kind: string; target: string | null; action: string; cause: Cause; commit: string | null; specHash: string | null; changes: Change[]; notify?: string[] }): number {
    return this.#relaxed(() => {
      const write = (): number => {
        const now = this.#now();
        const result = this.#stmt(
          `INSERT INTO ops (resource_id, kind, target, action, cause, commit_sha, spec_hash, changes, state, started_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'intent', ?)`,
        ).run(input.id, input.kind, input.target, input.action, input.cause, input.commit, input.specHash, redactText(JSON.stringify(input.changes)).slice(0, 64 * 1024), now);
        const opId = Number(result.lastInsertRowid);
        for (const subscriber of input.notify ?? []) {
          this.#stmt('INSERT INTO notifications (resource_id, source_id, op_id, commit_sha, created_at) VALUES (?, ?, ?, ?, ?)').run(subscriber, input.id, opId, input.commit, now);
        }
        return opId;
      };
      return input.notify && input.notify.length > 0 ? this.db.transaction(write)() : write();
    });
  }

  /** Notifications a subscriber has not acted on yet: who changed (sorted), and the newest row (to settle up to). */
  notifications(id: string): { sources: string[]; upTo: number } | undefined {
    const rows = this.#stmt('SELECT id, source_id FROM notifications WHERE resource_id = ? ORDER BY id').all(id) as Row[];
    if (rows.length === 0) return undefined;
    return { sources: [...new Set(rows.map((r) => r.source_id as string))].sort(), upTo: rows[rows.length - 1]!.id as number };
  }

  /** The subscriber acted (restarted) or had nothing to act on: its notifications up to `upTo` are settled. */
  clearNotifications(id: string, upTo: number): void {
    this.#relaxed(() => {
      this.#stmt('DELETE FROM notifications WHERE resource_id = ? AND id <= ?').run(id, upTo);
    });
  }

  /** Subscribers with notifications to act on: every pass works on them until they do. */
  notifiedIds(): string[] {
    return (this.#stmt('SELECT DISTINCT resource_id FROM notifications').all() as Row[]).map((r) => r.resource_id as string);
  }

  /**
   * The side effect did not succeed: the entry is closed with what happened.
   * `refused` (the target answered with an error) and `not-sent` (it never left
   * Plumb) may be retried as new; `unknown` (sent, no answer) is settled only by
   * a read that proves the resource converged, or by an operator (`plumb resolve`).
   */
  journalFailed(opId: number, message: string, outcome: WriteOutcome): void {
    this.#relaxed(() => {
      const closed = this.#stmt("UPDATE ops SET state = ?, finished_at = ?, error = ? WHERE id = ? AND state = 'intent'").run(outcome, this.#now(), redactText(message), opId);
      // A write that was refused or never sent changed nothing: nobody restarts for it. An unknown one may have.
      if (closed.changes > 0 && outcome !== 'unknown') this.#stmt('DELETE FROM notifications WHERE op_id = ?').run(opId);
    });
  }

  /** The spec (and its hash) Plumb last applied successfully; nulls if it never did (or moved it to another target since). */
  appliedRecord(id: string): { hash: string | null; spec: Json | null } {
    const row = this.#stmt('SELECT applied_hash, applied_spec FROM resources WHERE id = ?').get(id) as Row | undefined;
    return { hash: (row?.applied_hash as string | null | undefined) ?? null, spec: parse<Json>(row?.applied_spec) };
  }

  /** Settles a journaled create/update: the journal entry, the resource row and the audit event in one transaction. */
  journalDone(outcome: Outcome): void {
    this.#relaxed(() => {
      const now = this.#now();
      this.db.transaction(() => {
        this.#stmt("UPDATE ops SET state = 'done', finished_at = ? WHERE id = ?").run(now, outcome.opId);
        // Any older entry of unknown outcome for this resource is settled by this successful apply.
        this.#stmt("UPDATE ops SET state = 'resolved', finished_at = ? WHERE resource_id = ? AND state IN ('intent', 'unknown') AND id <> ?").run(now, outcome.id, outcome.opId);
        this.#stmt(
          `UPDATE resources SET status = 'converged', applied_commit = ?, applied_hash = ?, applied_spec = ?, applied_at = ?,
             adopted = CASE WHEN applied_commit IS NULL THEN ? ELSE adopted END,
             observed = ?, observed_at = ?, memo = COALESCE(?, memo), attempts = 0, next_attempt_at = NULL, last_error = NULL, last_error_code = NULL
           WHERE id = ?`,
        ).run(outcome.commit, outcome.specHash, json(outcome.spec), now, outcome.adopted ? 1 : 0, json(outcome.observed), now, json(outcome.memo), outcome.id);
        this.#event({
          type: outcome.action,
          resourceId: outcome.id,
          kind: outcome.kind,
          target: outcome.target,
          cause: outcome.cause,
          commit: outcome.commit,
          message: describeChanges(outcome.changes) + (outcome.adopted ? ' (adopted: it existed before Plumb)' : ''),
          before: changesBefore(outcome.changes),
          after: changesAfter(outcome.changes),
          output: outcome.output,
        });
      })();
    });
  }

  /** A read proved the resource converged after a side effect of unknown outcome: settle the old journal entries. */
  resolveUnknown(id: string): void {
    this.#relaxed(() => {
      if (!this.#stmt("SELECT 1 FROM ops WHERE resource_id = ? AND state IN ('intent', 'unknown') LIMIT 1").get(id)) return;
      this.#stmt("UPDATE ops SET state = 'resolved', finished_at = ? WHERE resource_id = ? AND state IN ('intent', 'unknown')").run(this.#now(), id);
    });
  }

  /** At start-up: intents left by a crash have an unknown outcome (returns how many); their resources are re-read before anything else happens. */
  markInterrupted(): number {
    const open = this.#stmt("SELECT resource_id, action FROM ops WHERE state = 'intent'").all() as Row[];
    if (open.length === 0) return 0;
    this.db.transaction(() => {
      this.#stmt("UPDATE ops SET state = 'unknown', finished_at = ?, error = ? WHERE state = 'intent'").run(this.#now(), CRASHED);
      for (const row of open) {
        this.#event({ type: 'interrupt', resourceId: row.resource_id as string, message: `a ${row.action as string} was interrupted: ${CRASHED}; re-reading before acting again` });
      }
    })();
    return open.length;
  }

  /** The newest side effect for exactly this spec whose outcome nobody knows (no read has proved it since). */
  unknownOutcome(id: string, specHash: string): UnknownOutcome | undefined {
    const row = this.#stmt("SELECT id, started_at, error, spec_hash FROM ops WHERE resource_id = ? AND spec_hash = ? AND state = 'unknown' ORDER BY id DESC LIMIT 1").get(id, specHash) as Row | undefined;
    return row ? { opId: row.id as number, at: row.started_at as number, why: (row.error as string | null) ?? CRASHED, specHash: row.spec_hash as string | null } : undefined;
  }

  /**
   * An operator settles unknown outcomes (`plumb resolve`): it ran (remember
   * `memo` as if Plumb had seen it finish) or it did not (the next pass may run
   * it as new). Audited with who and why; the resource is worked on again now.
   */
  resolveOutcome(input: { id: string; ran: boolean; by: string; reason: string; memo?: Json }): number {
    let settled = 0;
    this.db.transaction(() => {
      const open = this.#stmt("SELECT id, spec_hash FROM ops WHERE resource_id = ? AND state = 'unknown'").all(input.id) as Row[];
      settled = open.length;
      if (settled === 0) return;
      const verdict = input.ran ? 'it ran' : 'it did not run';
      const note = redactText(`resolved by ${input.by}: ${verdict}: ${input.reason}`);
      this.#stmt("UPDATE ops SET state = ?, finished_at = ?, error = COALESCE(error || '; ', '') || ? WHERE resource_id = ? AND state = 'unknown'").run(input.ran ? 'done' : 'resolved', this.#now(), note, input.id);
      // It did not run: it changed nothing, so nobody restarts for it.
      if (!input.ran) for (const row of open) this.#stmt('DELETE FROM notifications WHERE op_id = ?').run(row.id);
      if (input.ran && input.memo !== undefined) this.#stmt('UPDATE resources SET memo = ? WHERE id = ?').run(json(input.memo), input.id);
      this.#stmt("UPDATE resources SET status = CASE WHEN status IN ('failed', 'blocked') THEN 'pending' ELSE status END, next_attempt_at = NULL WHERE id = ?").run(input.id);
      this.#event({ type: 'resolve', resourceId: input.id, message: note });
    })();
    return settled;
  }

  /** Journaled progress of unfinished writes (a temporary file's name) that a kind's cleanup may remove after a crash. */
  leftovers(id: string): Array<{ opId: number; progress: Json }> {
    const rows = this.#stmt("SELECT id, progress FROM ops WHERE resource_id = ? AND progress IS NOT NULL AND state NOT IN ('intent', 'done')").all(id) as Row[];
    return rows.map((r) => ({ opId: r.id as number, progress: parse<Json>(r.progress)! }));
  }

  /** The leftovers of these entries are gone (cleaned up): their progress no longer describes anything on the target. */
  clearProgress(opIds: number[]): void {
    this.#relaxed(() => {
      const clear = this.#stmt('UPDATE ops SET progress = NULL WHERE id = ?');
      this.db.transaction(() => opIds.forEach((id) => clear.run(id)))();
    });
  }

  // ---- tombstones ---------------------------------------------------------

  pendingTombstones(): PendingTombstone[] {
    return (this.#stmt("SELECT * FROM tombstones WHERE state = 'pending' ORDER BY id").all() as Row[]).map((row) => ({
      tombstoneId: row.id as number,
      resourceId: row.resource_id as string,
      kind: row.kind as string,
      name: row.name as string,
      target: row.target as string | null,
      targetSpec: parse<TargetSpec>(row.target_spec),
      spec: parse<Json>(row.spec)!,
      appliedSpec: parse<Json>(row.applied_spec),
      meta: parse<ResourceMeta>(row.meta)!,
      memo: parse<Json>(row.memo),
      policy: row.policy as 'Delete' | 'Retain',
      deletedCommit: row.deleted_commit as string,
      attempts: row.attempts as number,
      updatedAt: row.updated_at as number,
    }));
  }

  /** The provider confirmed removal (or found it already absent): the tombstone is settled. */
  tombstoneDone(input: { tombstoneId: number; resourceId: string; kind: string; target: string | null; opId?: number; commit: string | null; before: Json; message: string }): void {
    this.#relaxed(() => {
      const now = this.#now();
      this.db.transaction(() => {
        this.#stmt("UPDATE tombstones SET state = 'done', updated_at = ?, last_error = NULL WHERE id = ? AND state = 'pending'").run(now, input.tombstoneId);
        if (input.opId !== undefined) this.#stmt("UPDATE ops SET state = 'done', finished_at = ? WHERE id = ?").run(now, input.opId);
        this.#stmt("UPDATE ops SET state = 'resolved', finished_at = ? WHERE resource_id = ? AND target IS ? AND state IN ('intent', 'unknown') AND action = 'delete'").run(now, input.resourceId, input.target);
        // Only the row of the very thing removed: a resource moved to another target keeps its row.
        this.#stmt("DELETE FROM resources WHERE id = ? AND status = 'deleting' AND target IS ?").run(input.resourceId, input.target);
        // A subscriber that is gone has nothing left to restart.
        this.#stmt('DELETE FROM notifications WHERE resource_id = ? AND NOT EXISTS (SELECT 1 FROM resources WHERE id = ?)').run(input.resourceId, input.resourceId);
        this.#event({ type: 'delete', resourceId: input.resourceId, kind: input.kind, target: input.target, cause: 'deletion', commit: input.commit, before: input.before, message: input.message });
      })();
    });
  }

  tombstoneFailed(input: { tombstoneId: number; resourceId: string; kind: string; target: string | null; code: string; message: string; commit: string | null }): void {
    this.#relaxed(() => {
      const now = this.#now();
      const message = redactText(input.message);
      this.db.transaction(() => {
        const previous = this.#stmt('SELECT last_error FROM tombstones WHERE id = ?').get(input.tombstoneId) as Row | undefined;
        this.#stmt("UPDATE tombstones SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ? AND state = 'pending'").run(`${input.code}: ${message}`, now, input.tombstoneId);
        if (previous?.last_error !== `${input.code}: ${message}`) {
          this.#event({ type: 'fail', resourceId: input.resourceId, kind: input.kind, target: input.target, cause: 'deletion', commit: input.commit, message: `${input.code}: ${message}` });
        }
      })();
    });
  }

  /** The pending tombstone for a resource on a target (ops of a new deletion learn theirs after accept). */
  pendingTombstoneId(resourceId: string, target: string | null): number | undefined {
    const row = this.#stmt("SELECT id FROM tombstones WHERE resource_id = ? AND target IS ? AND state = 'pending'").get(resourceId, target) as Row | undefined;
    return row?.id as number | undefined;
  }

  /** Resources with a side effect of unknown outcome not yet settled by a read: re-read every pass until it is. */
  unknownIds(): string[] {
    return (this.#stmt("SELECT DISTINCT resource_id FROM ops WHERE state = 'unknown'").all() as Row[]).map((r) => r.resource_id as string);
  }

  /** Failures recorded so far for a resource (its retry delay grows with them). */
  attempts(id: string): number {
    const row = this.#stmt('SELECT attempts FROM resources WHERE id = ?').get(id) as Row | undefined;
    return (row?.attempts as number | undefined) ?? 0;
  }

  // ---- pauses ---------------------------------------------------------------

  /** Bumped by every pause and resume, so a pass in flight can cheaply notice one. */
  get pauseGeneration(): number {
    return this.#pauseGeneration;
  }

  pause(input: { selector: string; reason: string; by: string; until: number | null }): void {
    this.#pauseGeneration++;
    const now = this.#now();
    this.db.transaction(() => {
      this.#stmt('INSERT INTO pauses (selector, reason, paused_by, until_at, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (selector) DO UPDATE SET reason = excluded.reason, paused_by = excluded.paused_by, until_at = excluded.until_at, created_at = excluded.created_at').run(
        input.selector,
        redactText(input.reason),
        input.by,
        input.until,
        now,
      );
      this.#event({ type: 'pause', resourceId: input.selector.includes('/') ? input.selector : null, target: input.selector.includes('/') ? null : input.selector, message: `paused by ${input.by}${input.until ? ` until ${new Date(input.until).toISOString()}` : ''}: ${input.reason}` });
    })();
  }

  /** Returns whether something was paused. */
  resume(selector: string, by: string): boolean {
    this.#pauseGeneration++;
    let found = false;
    this.db.transaction(() => {
      found = this.#stmt('DELETE FROM pauses WHERE selector = ?').run(selector).changes > 0;
      if (found) this.#event({ type: 'resume', resourceId: selector.includes('/') ? selector : null, target: selector.includes('/') ? null : selector, message: `resumed by ${by}` });
    })();
    return found;
  }

  /** Pauses in force now (expired ones are ignored, not deleted: the history says when they ended). */
  pauses(now: number = this.#now()): PauseView[] {
    return (this.#stmt('SELECT * FROM pauses WHERE until_at IS NULL OR until_at > ? ORDER BY created_at').all(now) as Row[]).map((r) => ({
      selector: r.selector as string,
      reason: r.reason as string,
      by: r.paused_by as string,
      until: r.until_at as number | null,
      since: r.created_at as number,
    }));
  }

  // ---- queries for the CLI ------------------------------------------------

  resources(filter: { target?: string; id?: string } = {}): ResourceView[] {
    let rows: Row[];
    if (filter.id) rows = this.#stmt('SELECT * FROM resources WHERE id = ?').all(filter.id) as Row[];
    else if (filter.target) rows = this.#stmt('SELECT * FROM resources WHERE target = ? OR id = ? ORDER BY kind, name').all(filter.target, `Target/${filter.target}`) as Row[];
    else rows = this.#stmt('SELECT * FROM resources ORDER BY target, kind, name').all() as Row[];
    return rows.map(toView);
  }

  /** Whether a target name or Kind/name is recorded (the control API refuses selectors that name nothing). */
  isKnown(selector: string): boolean {
    const row = selector.includes('/')
      ? this.#stmt('SELECT 1 FROM resources WHERE id = ? LIMIT 1').get(selector)
      : this.#stmt('SELECT 1 FROM resources WHERE id = ? OR target = ? LIMIT 1').get(`Target/${selector}`, selector);
    return row !== undefined;
  }

  /** Resources (Targets aside) kept from being converged at the accepted commit: pending, failed, blocked, deleting. */
  unsettledCount(): number {
    return this.#stmt(`SELECT COUNT(*) FROM resources WHERE status IN (${UNSETTLED_SQL}) AND kind <> 'Target'`).pluck().get() as number;
  }

  pendingTombstoneCount(): number {
    return this.#stmt("SELECT COUNT(*) FROM tombstones WHERE state = 'pending'").pluck().get() as number;
  }

  /** Every Target's name (a range of the primary key). */
  targetNames(): string[] {
    return this.#stmt("SELECT name FROM resources WHERE id >= 'Target/' AND id < 'Target0'").pluck().all() as string[];
  }

  /** Targets with something unsettled: a resource pending, failed, blocked or being deleted, or a pending removal. */
  laggingTargets(): string[] {
    return this.#stmt(
      `SELECT target FROM resources WHERE status IN (${UNSETTLED_SQL}) AND target IS NOT NULL
       UNION SELECT target FROM tombstones WHERE state = 'pending' AND target IS NOT NULL`,
    )
      .pluck()
      .all() as string[];
  }

  statusCounts(): Record<string, number> {
    const rows = this.#stmt("SELECT status, COUNT(*) AS n FROM resources INDEXED BY resources_status WHERE kind <> 'Target' GROUP BY status").all() as Row[];
    return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
  }

  events(filter: { resourceId?: string; limit?: number } = {}): EventView[] {
    const limit = filter.limit ?? 50;
    const rows = filter.resourceId
      ? (this.#stmt('SELECT * FROM events WHERE resource_id = ? ORDER BY id DESC LIMIT ?').all(filter.resourceId, limit) as Row[])
      : (this.#stmt('SELECT * FROM events ORDER BY id DESC LIMIT ?').all(limit) as Row[]);
    return rows.map((r) => ({
      id: r.id as number,
      at: r.at as number,
      resourceId: r.resource_id as string | null,
      kind: r.kind as string | null,
      target: r.target as string | null,
      type: r.type as string,
      cause: r.cause as string | null,
      commit: r.commit_sha as string | null,
      before: parse<Json>(r.before),
      after: parse<Json>(r.after),
      message: r.message as string | null,
      output: r.output as string | null,
    }));
  }

  tombstones(filter: { all?: boolean } = {}): TombstoneView[] {
    const rows = filter.all
      ? (this.#stmt('SELECT * FROM tombstones ORDER BY id DESC').all() as Row[])
      : (this.#stmt("SELECT * FROM tombstones WHERE state = 'pending' ORDER BY id").all() as Row[]);
    return rows.map((r) => ({
      id: r.id as number,
      resourceId: r.resource_id as string,
      target: r.target as string | null,
      policy: r.policy as string,
      state: r.state as string,
      deletedCommit: r.deleted_commit as string,
      attempts: r.attempts as number,
      lastError: r.last_error as string | null,
      createdAt: r.created_at as number,
      updatedAt: r.updated_at as number,
    }));
  }

  // ---- events -------------------------------------------------------------

  #event(e: { type: string; resourceId?: string | null; kind?: string | null; target?: string | null; cause?: string | null; commit?: string | null; before?: unknown; after?: unknown; message?: string | null; output?: string | undefined }): void {
    const output = e.output === undefined ? null : redactText(e.output.length > OUTPUT_LIMIT ? '…' + e.output.slice(-OUTPUT_LIMIT) : e.output);
    this.#stmt(
      `INSERT INTO events (at, resource_id, kind, target, type, cause, commit_sha, before, after, message, output)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      this.#now(),
      e.resourceId ?? null,
      e.kind ?? (e.resourceId ? e.resourceId.slice(0, e.resourceId.indexOf('/')) : null),
      e.target ?? null,
      e.type,
      e.cause ?? null,
      e.commit ?? null,
      e.before === undefined ? null : redactText(JSON.stringify(e.before)),
      e.after === undefined ? null : redactText(JSON.stringify(e.after)),
      e.message == null ? null : redactText(e.message),
      output,
    );
  }
}

function toRecorded(row: Row): RecordedResource {
  return {
    id: row.id as string,
    kind: row.kind as string,
    name: row.name as string,
    target: row.target as string | null,
    file: row.file as string,
    spec: parse<Json>(row.spec)!,
    meta: parse<ResourceMeta>(row.meta)!,
    specHash: row.spec_hash as string,
    targetSpec: parse<TargetSpec>(row.target_spec),
    status: row.status as ResourceStatus,
    appliedCommit: row.applied_commit as string | null,
    appliedHash: row.applied_hash as string | null,
    appliedSpec: parse<Json>(row.applied_spec),
    memo: parse<Json>(row.memo),
    hasJournal: Boolean(row.has_journal),
  };
}

function toView(r: Row): ResourceView {
  return {
    id: r.id as string,
    kind: r.kind as string,
    name: r.name as string,
    target: r.target as string | null,
    file: r.file as string,
    line: r.line as number,
    status: r.status as ResourceStatus,
    specHash: r.spec_hash as string,
    acceptedCommit: r.accepted_commit as string,
    appliedCommit: r.applied_commit as string | null,
    appliedAt: r.applied_at as number | null,
    observed: parse<Json>(r.observed),
    observedAt: r.observed_at as number | null,
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number | null,
    lastError: r.last_error as string | null,
    lastErrorCode: r.last_error_code as string | null,
    statusDetail: (r.status_detail as string | null | undefined) ?? null,
  };
}

function describeChanges(changes: Change[]): string {
  if (changes.length === 0) return 'no changes';
  return changes.map((c) => (c.note ? `${c.path || '/'}: ${c.note}` : (c.path || '/'))).join(', ');
}

function changesBefore(changes: Change[]): Json {
  return Object.fromEntries(changes.map((c) => [c.path || '/', c.before ?? null]));
}

function changesAfter(changes: Change[]): Json {
  return Object.fromEntries(changes.map((c) => [c.path || '/', c.after ?? null]));
}
