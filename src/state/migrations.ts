/**
 * Versioned schema migrations. PRAGMA user_version holds the number of
 * migrations applied; each runs in its own transaction. Never edit a released
 * migration: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the initial schema.
  `
  CREATE TABLE source (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    remote           TEXT,
    branch           TEXT,
    path             TEXT,
    fetched_commit   TEXT,
    fetched_at       INTEGER,
    accepted_commit  TEXT,     -- last commit that loaded and validated completely: the desired state
    accepted_at      INTEGER,
    applied_commit   TEXT,     -- last commit every resource converged at
    applied_at       INTEGER,
    rejected_commit  TEXT,     -- newest commit refused for diagnostics (null once a newer one is accepted)
    last_error       TEXT,
    last_error_at    INTEGER,
    diagnostics      TEXT      -- JSON array of the rejected commit's diagnostics
  );
  INSERT INTO source (id) VALUES (1);

  CREATE TABLE resources (
    id               TEXT PRIMARY KEY,        -- kind/name
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    target           TEXT,                    -- null for kind Target
    file             TEXT NOT NULL,
    line             INTEGER NOT NULL,
    spec             TEXT NOT NULL,           -- desired spec (JSON) as accepted; secret fields hold references only
    meta             TEXT NOT NULL,           -- metadata (JSON) with defaults
    spec_hash        TEXT NOT NULL,
    target_spec      TEXT,                    -- the Target spec it was accepted with, so a deletion can still reach it
    status           TEXT NOT NULL,           -- pending | converged | drifted | failed | blocked | deleting
    accepted_commit  TEXT NOT NULL,
    applied_commit   TEXT,
    applied_hash     TEXT,
    applied_at       INTEGER,
    adopted          INTEGER NOT NULL DEFAULT 0,  -- it existed before Plumb first applied it
    observed         TEXT,                    -- last observed summary (JSON)
    observed_at      INTEGER,
    memo             TEXT,                    -- provider memory (JSON), never a secret
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_error       TEXT,
    last_error_code  TEXT
  );
  CREATE INDEX resources_target ON resources (target);
  CREATE INDEX resources_file ON resources (file);
  CREATE INDEX resources_status ON resources (status) WHERE status <> 'converged';

  CREATE TABLE ops (
    id           INTEGER PRIMARY KEY,
    resource_id  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    target       TEXT,
    action       TEXT NOT NULL,               -- create | update | delete
    cause        TEXT NOT NULL,               -- intent | drift | deletion | retry
    commit_sha   TEXT,
    spec_hash    TEXT,
    changes      TEXT,                        -- JSON Change[]
    state        TEXT NOT NULL,               -- intent | done | failed | interrupted | resolved
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    error        TEXT
  );
  CREATE INDEX ops_open ON ops (state) WHERE state IN ('intent', 'interrupted');
  CREATE INDEX ops_resource ON ops (resource_id, id);

  CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    resource_id  TEXT,
    kind         TEXT,
    target       TEXT,
    type         TEXT NOT NULL,               -- accept | reject | create | update | delete | retain | rename | drift | fail | interrupt
    cause        TEXT,                        -- intent | drift | deletion | retry
    commit_sha   TEXT,
    before       TEXT,
    after        TEXT,
    message      TEXT,
    output       TEXT
  );
  CREATE INDEX events_resource ON events (resource_id, id);

  CREATE TABLE tombstones (
    id               INTEGER PRIMARY KEY,
    resource_id      TEXT NOT NULL,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    target           TEXT,
    target_spec      TEXT,                    -- how to reach the target even if its Target was deleted too
    spec             TEXT NOT NULL,           -- the last accepted spec
    meta             TEXT NOT NULL,
    memo             TEXT,
    policy           TEXT NOT NULL,           -- Delete | Retain: the policy of the resource it replaced
    state            TEXT NOT NULL,           -- pending | done | retained | cancelled
    deleted_commit   TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX tombstones_one_pending ON tombstones (resource_id) WHERE state = 'pending';
  CREATE INDEX tombstones_state ON tombstones (state);
  `,
  // 2: progress of long side effects (resets, firmware updates), so a crash never repeats one;
  //    and the reason for a status such as pending-reboot.
  `
  ALTER TABLE ops ADD COLUMN progress TEXT;
  ALTER TABLE resources ADD COLUMN status_detail TEXT;  -- why a resource is in its status (e.g. what waits for a reboot)
  `,
  // 3: a resource moved between targets can have a pending removal on each (one per resource and target);
  //    the per-poll status queries (retry due, counts) are answered from an index, not a table scan.
  `
  DROP INDEX tombstones_one_pending;
  CREATE UNIQUE INDEX tombstones_one_pending ON tombstones (resource_id, COALESCE(target, '')) WHERE state = 'pending';
  DROP INDEX resources_status;
  CREATE INDEX resources_status ON resources (status, next_attempt_at, kind);
  `,
  // 4: pauses — the break-glass path: a paused target or resource is neither changed nor remediated.
  `
  CREATE TABLE pauses (
    selector    TEXT PRIMARY KEY,   -- a target name, or Kind/name
    reason      TEXT NOT NULL,
    paused_by   TEXT NOT NULL,
    until_at    INTEGER,            -- null: until resumed
    created_at  INTEGER NOT NULL
  );
  `,
  // 5: exact outcomes (DESIGN: not sent, refused, unknown, done) instead of failed/interrupted; and the spec
  //    Plumb last applied, so a field removed from the spec is removed from the target (a three-way diff).
  `
  UPDATE ops SET state = 'unknown' WHERE state = 'interrupted';
  UPDATE ops SET state = 'refused' WHERE state = 'failed';
  DROP INDEX ops_open;
  CREATE INDEX ops_open ON ops (state) WHERE state IN ('intent', 'unknown');
  ALTER TABLE resources ADD COLUMN applied_spec TEXT;   -- the spec as last applied and verified (JSON)
  UPDATE resources SET applied_spec = spec WHERE applied_hash IS NOT NULL AND applied_hash = spec_hash;
  ALTER TABLE tombstones ADD COLUMN applied_spec TEXT;  -- what the deleted resource had applied: its removal takes that away
  `,
  // 6: notifications (ssh.Service restartOn): a write to a resource others subscribe to leaves one row per
  //    subscriber, journaled with the write's intent, until the subscriber acts (a restart), so a crash between
  //    the write and the restart still restarts once after resume.
  `
  CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL,      -- the subscriber (the service to restart)
    source_id   TEXT NOT NULL,      -- what was written (the config file)
    op_id       INTEGER NOT NULL,   -- the source's journal entry: a refused or unsent write withdraws it
    commit_sha  TEXT,
    created_at  INTEGER NOT NULL
  );
  CREATE INDEX notifications_resource ON notifications (resource_id);
  CREATE INDEX notifications_op ON notifications (op_id);
  `,
];
