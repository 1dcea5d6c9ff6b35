import type { Json } from '../provider.js';
import { openReadOnly } from '../state/db.js';
import { Store, type ResourceView } from '../state/store.js';
import { resolveContext, type CommonFlags } from './context.js';
import { printJson, printTable, short, when, type Out } from './output.js';

/** Opens the state read-only: these commands answer while the daemon works, or hangs. */
export function openState(flags: CommonFlags, env: NodeJS.ProcessEnv): Store {
  const ctx = resolveContext(flags, env, { state: true });
  return new Store(openReadOnly(ctx.config.stateDir));
}

/**
 * `plumb status [TARGET|KIND/NAME] [--all]`: the source (fetched, accepted,
 * applied, rejected with its errors), counts by status, and the resources that
 * need attention (all of them with --all or a filter).
 */
export function statusCommand(filter: string | undefined, flags: CommonFlags & { all?: boolean }, out: Out, env: NodeJS.ProcessEnv): number {
  const store = openState(flags, env);
  try {
    const source = store.source();
    const counts = store.statusCounts();
    const tombstones = store.tombstones();
    const all = filter ? store.resources(filter.includes('/') ? { id: filter } : { target: filter }) : store.resources();
    const pauses = store.pauses();
    const pausedBy = new Map(pauses.map((p) => [p.selector, p]));
    const pauseOf = (r: ResourceView) => pausedBy.get(r.id) ?? (r.target ? pausedBy.get(r.target) : undefined) ?? (r.kind === 'Target' ? pausedBy.get(r.name) : undefined);
    const shown = filter || flags.all ? all : all.filter((r) => (r.status !== 'converged' && r.kind !== 'Target') || pauseOf(r));
    if (flags.json) {
      printJson(out, { source, counts, pendingTombstones: tombstones.length, pauses, resources: shown.map((r) => ({ ...r, paused: pauseOf(r) ?? null })) });
      return filter && all.length === 0 ? 1 : 0;
    }
    if (filter && all.length === 0) {
      out.write(`nothing called ${filter} is recorded (a target name, or Kind/name)\n`);
      return 1;
    }
    out.write(`Source    ${source.remote ?? '-'}  branch ${source.branch ?? '-'}${source.path ? `  path ${source.path}` : ''}\n`);
    out.write(`Fetched   ${short(source.fetchedCommit)}  ${when(out, source.fetchedAt)}\n`);
    out.write(`Accepted  ${short(source.acceptedCommit)}  ${when(out, source.acceptedAt)}\n`);
    out.write(`Applied   ${short(source.appliedCommit)}  ${when(out, source.appliedAt)}${source.appliedCommit && source.appliedCommit === source.acceptedCommit ? '  (converged)' : ''}\n`);
    if (source.rejectedCommit) {
      out.write(`Rejected  ${short(source.rejectedCommit)}: ${source.diagnostics.length} error(s); the accepted commit stays in force\n`);
      for (const d of source.diagnostics as Array<{ file: string; line: number; col: number; message: string }>) out.write(`          ${d.file}:${d.line}:${d.col}: ${d.message}\n`);
    } else if (source.lastError) {
      out.write(`Error     ${source.lastError}  ${when(out, source.lastErrorAt)}\n`);
    }
    const order = ['converged', 'pending-reboot', 'pending', 'drifted', 'failed', 'blocked', 'deleting'];
    const summary = order.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(', ') || 'none';
    out.write(`Resources ${summary}${tombstones.length ? `; ${tombstones.length} deletion(s) pending` : ''}\n`);
    for (const p of pauses) {
      out.write(`Paused    ${p.selector} by ${p.by} ${when(out, p.since)}${p.until ? `, until ${new Date(p.until).toISOString()}` : ', until resumed'}: ${p.reason}\n`);
    }
    if (shown.length > 0) {
      out.write('\n');
      printTable(
        out,
        ['STATUS', 'KIND/NAME', 'TARGET', 'FILE', 'APPLIED', 'DETAIL'],
        shown.map((r) => [pauseOf(r) ? `paused/${r.status}` : r.status, r.id, r.target ?? '-', `${r.file}:${r.line}`, when(out, r.appliedAt), pauseOf(r) ? `paused by ${pauseOf(r)!.by}: ${pauseOf(r)!.reason}` : detail(r)]),
      );
    }
    return 0;
  } finally {
    store.close();
  }
}

function detail(r: ResourceView): string {
  if (r.statusDetail) return r.statusDetail;
  if (r.lastError) return `${r.lastErrorCode ? r.lastErrorCode + ': ' : ''}${r.lastError}${r.nextAttemptAt ? ` (retry ${new Date(r.nextAttemptAt).toISOString()})` : ''}`;
  if (r.kind === 'Target') return r.status === 'converged' ? 'reachable' : r.status === 'pending' ? 'not contacted yet' : 'unreachable';
  return summary(r.observed);
}

function summary(observed: Json | null): string {
  if (observed === null) return '';
  const text = JSON.stringify(observed);
  return text.length > 80 ? text.slice(0, 77) + '...' : text;
}
