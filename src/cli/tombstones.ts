import type { CommonFlags } from './context.js';
import { printJson, printTable, short, when, type Out } from './output.js';
import { openState } from './status.js';

/** `plumb tombstones [--all]`: deletions waiting for the provider to confirm removal (and, with --all, settled ones). */
export function tombstonesCommand(flags: CommonFlags & { all?: boolean }, out: Out, env: NodeJS.ProcessEnv): number {
  const store = openState(flags, env);
  try {
    const rows = store.tombstones({ all: Boolean(flags.all) });
    if (flags.json) {
      printJson(out, rows);
      return 0;
    }
    if (rows.length === 0) {
      out.write(flags.all ? 'no tombstones\n' : 'no deletions pending\n');
      return 0;
    }
    printTable(
      out,
      ['STATE', 'RESOURCE', 'TARGET', 'POLICY', 'DELETED IN', 'SINCE', 'ATTEMPTS', 'DETAIL'],
      rows.map((t) => [t.state, t.resourceId, t.target ?? '-', t.policy, short(t.deletedCommit), when(out, t.createdAt), String(t.attempts), t.lastError ?? '']),
    );
    return 0;
  } finally {
    store.close();
  }
}
