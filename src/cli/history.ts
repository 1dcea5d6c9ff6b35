import type { CommonFlags } from './context.js';
import { printJson, printTable, short, when, type Out } from './output.js';
import { openState } from './status.js';

/** `plumb history [KIND/NAME] [--limit N]`: the audit log, newest first. */
export function historyCommand(id: string | undefined, flags: CommonFlags & { limit?: string }, out: Out, env: NodeJS.ProcessEnv): number {
  const store = openState(flags, env);
  try {
    const limit = flags.limit ? Math.max(1, Number.parseInt(flags.limit, 10) || 50) : 50;
    const events = store.events({ ...(id ? { resourceId: id } : {}), limit });
    if (flags.json) {
      printJson(out, events);
      return 0;
    }
    if (events.length === 0) {
      out.write(id ? `no history for ${id}\n` : 'no history yet\n');
      return 0;
    }
    printTable(
      out,
      ['WHEN', 'EVENT', 'CAUSE', 'RESOURCE', 'TARGET', 'COMMIT', 'DETAIL'],
      events.map((e) => [when(out, e.at), e.type, e.cause ?? '-', e.resourceId ?? '-', e.target ?? '-', short(e.commit), [e.message, e.output ? `output: ${e.output.split('\n').filter(Boolean).slice(-1)[0] ?? ''}` : ''].filter(Boolean).join('  ')]),
    );
    return 0;
  } finally {
    store.close();
  }
}
