import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { openReadOnly } from '../state/db.js';
import type { CommonFlags } from './context.js';
import { resolveContext } from './context.js';
import type { Out } from './output.js';

/**
 * `plumb backup FILE`: a consistent copy of the state, online, while the daemon
 * runs (SQLite's backup API through a read-only connection: the writer is never
 * stopped). Restore: stop the daemon, put FILE in place as plumb.db, remove
 * plumb.db-wal and plumb.db-shm, start it.
 */
export async function backupCommand(file: string, flags: CommonFlags, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  const ctx = resolveContext(flags, env, { state: true });
  const destination = resolve(file);
  if (existsSync(destination)) throw new UsageError(`${destination} exists; give a new file name`);
  const db = openReadOnly(ctx.config.stateDir);
  try {
    const { totalPages } = await db.backup(destination);
    out.write(`backed up ${ctx.config.stateDir}/plumb.db to ${destination} (${totalPages} pages); keep hash.key with it\n`);
    return 0;
  } finally {
    db.close();
  }
}
