import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StateError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';

export const DB_FILE = 'plumb.db';
const LOCK_FILE = 'plumb.lock';
const LOCK_PID_FILE = 'plumb.lock.pid';

export type Db = Database.Database;

/**
 * Opens the state database for writing: WAL (readers never block the writer, so
 * `plumb status` answers while the daemon works or hangs), synchronous=FULL (a
 * committed journal entry survives power loss), migrations applied.
 */
export function openWritable(stateDir: string): Db {
  mkdirSync(stateDir, { recursive: true, mode: 0o750 });
  let db: Db;
  try {
    db = new Database(join(stateDir, DB_FILE));
  } catch (err) {
    throw new StateError(`cannot open the state database in ${stateDir}: ${(err as Error).message}`, { cause: err });
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** Opens the state database read-only, for the CLI's status/history/tombstones. */
export function openReadOnly(stateDir: string): Db {
  let db: Db;
  try {
    db = new Database(join(stateDir, DB_FILE), { readonly: true, fileMustExist: true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_CANTOPEN') {
      throw new StateError(`no Plumb state in ${stateDir} yet: run \`plumb apply --once\` or start the daemon first`);
    }
    throw new StateError(`cannot open the state database in ${stateDir}: ${(err as Error).message}`, { cause: err });
  }
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new StateError(`the state in ${stateDir} was written by a newer Plumb (schema ${version}); upgrade this binary`);
  }
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new StateError(`the state database has schema ${current}, newer than this Plumb knows (${MIGRATIONS.length}); upgrade Plumb`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

/**
 * One writer per state directory: two daemons acting on the same targets would
 * fight. The lock is an exclusive SQLite lock on `plumb.lock`, held by an open
 * transaction for the life of the process: the OS drops it when the process
 * dies however it dies (kill -9, power loss), so there is no stale lock to take
 * over and no pid that could have been reused. The holder's pid sits beside it,
 * for the error message only.
 */
export class WriterLock {
  readonly #db: Db;
  readonly #pidFile: string;

  private constructor(db: Db, pidFile: string) {
    this.#db = db;
    this.#pidFile = pidFile;
  }

  static acquire(stateDir: string): WriterLock {
    mkdirSync(stateDir, { recursive: true, mode: 0o750 });
    const pidFile = join(stateDir, LOCK_PID_FILE);
    const db = new Database(join(stateDir, LOCK_FILE), { timeout: 0 });
    try {
      db.pragma('journal_mode = DELETE');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        const holder = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : 'unknown';
        throw new StateError(`another Plumb (pid ${holder}) is already writing to ${stateDir}; stop it first (status, history and plan work meanwhile)`);
      }
      throw new StateError(`cannot take the writer lock in ${stateDir}: ${(err as Error).message}`, { cause: err });
    }
    writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o640 });
    return new WriterLock(db, pidFile);
  }

  release(): void {
    rmSync(this.#pidFile, { force: true });
    try {
      this.#db.exec('ROLLBACK');
    } finally {
      this.#db.close();
    }
  }
}
