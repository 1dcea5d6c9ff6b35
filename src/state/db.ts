import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StateError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';

export const DB_FILE = 'plumb.db';
const LOCK_FILE = 'plumb.lock';

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
 * fight. A lock file holds the writer's pid; a lock left by a dead process (kill -9)
 * is taken over.
 */
export class WriterLock {
  readonly #path: string;

  private constructor(path: string) {
    this.#path = path;
  }

  static acquire(stateDir: string): WriterLock {
    mkdirSync(stateDir, { recursive: true, mode: 0o750 });
    const path = join(stateDir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o640);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return new WriterLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StateError(`cannot create ${path}: ${(err as Error).message}`);
        const holder = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
        if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
          throw new StateError(`another Plumb (pid ${holder}) is already writing to ${stateDir}; stop it or use its control socket`);
        }
        rmSync(path, { force: true }); // stale: its writer died
      }
    }
    throw new StateError(`cannot take the writer lock ${path}`);
  }

  release(): void {
    rmSync(this.#path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
