import { Engine, type PassReport } from '../daemon/engine.js';
import { builtinProviders } from '../daemon/providers.js';
import { formatDiagnostic } from '../load/types.js';
import { UsageError } from '../errors.js';
import type { Provider } from '../provider.js';
import type { OpResult } from '../run/runner.js';
import type { Store } from '../state/store.js';
import { resolveContext, type CommonFlags } from './context.js';
import { humanLog } from './human-log.js';
import { printJson, short, type Out } from './output.js';
import { Progress } from './progress.js';

export interface ApplyFlags extends CommonFlags {
  once?: boolean;
  all?: boolean;
  verbose?: boolean;
}

/** Results of a pass that leave their resource not converged. */
const NOT_DONE = new Set<string>(['failed', 'blocked', 'cancelled']);
/** Resource statuses that keep the fleet from being converged (pending deletions are counted from their tombstones). */
const UNSETTLED = ['failed', 'blocked', 'pending'] as const;

/**
 * Where everything stands after a pass, from the state: not only this pass's
 * results (a resource that failed earlier and is not due for a retry yet is not
 * in them), and what waits by design.
 */
export interface Standing {
  /** Not converged, and not worked on by this pass: left by earlier passes, by status. */
  earlier: Record<(typeof UNSETTLED)[number], number>;
  /** Removals not confirmed yet that this pass did not work on. */
  earlierDeletions: number;
  /** Not converged, and held by a pause this pass. */
  paused: number;
  /** Applied, waiting for a reboot the spec does not allow Plumb to make: converged for the exit code, but shown. */
  pendingReboot: number;
  /** Drift on `drift: report` resources, as last read: reported, left alone, not a failure. */
  drifted: number;
}

export function standing(store: Store, results: OpResult[]): Standing {
  const worked = new Map(results.map((r) => [r.key, r]));
  const s: Standing = { earlier: { failed: 0, blocked: 0, pending: 0 }, earlierDeletions: 0, paused: 0, pendingReboot: 0, drifted: 0 };
  const leftOver = (key: string): 'earlier' | 'paused' | undefined => {
    const result = worked.get(key);
    if (!result) return 'earlier';
    return result.status === 'paused' ? 'paused' : undefined; // this pass's own failures are counted from its results
  };
  for (const r of store.resources()) {
    if (r.kind === 'Target') continue;
    if (r.status === 'pending-reboot') s.pendingReboot++;
    else if (r.status === 'drifted') s.drifted++;
    else if (r.status === 'failed' || r.status === 'blocked' || r.status === 'pending') {
      const why = leftOver(r.id);
      if (why === 'earlier') s.earlier[r.status]++;
      else if (why === 'paused') s.paused++;
    }
  }
  for (const t of store.pendingTombstones()) {
    const why = leftOver(`delete:${t.resourceId}`);
    if (why === 'earlier') s.earlierDeletions++;
    else if (why === 'paused') s.paused++;
  }
  return s;
}

/** The summary line: this pass's work, then what is still not converged, then what waits by design. */
export function summaryLine(report: PassReport, results: OpResult[], s: Standing): string {
  const count = (status: string): number => results.filter((r) => r.status === status).length;
  const notDone = results.filter((r) => NOT_DONE.has(r.status)).length;
  const pass = `${short(report.commit)}: ${count('changed')} changed, ${count('deleted')} deleted, ${count('converged')} already converged, ${notDone} not done in ${((report.run?.durationMs ?? 0) / 1000).toFixed(1)}s`;
  const left = [
    ...UNSETTLED.filter((status) => s.earlier[status] > 0).map((status) => `${s.earlier[status]} ${status} from earlier passes`),
    ...(s.earlierDeletions > 0 ? [`${s.earlierDeletions} deletion(s) pending from earlier passes`] : []),
    ...(s.paused > 0 ? [`${s.paused} held by a pause`] : []),
  ];
  const waits = [...(s.pendingReboot > 0 ? [`${s.pendingReboot} pending reboot`] : []), ...(s.drifted > 0 ? [`${s.drifted} drifted (reported)`] : [])];
  return [pass, ...(left.length > 0 ? [`not converged: ${left.join(', ')} (plumb status lists them)`] : []), ...(waits.length > 0 ? [waits.join(', ')] : [])].join('; ');
}

/**
 * `plumb apply --once [--all]`: one convergence pass toward the newest valid
 * commit, then exit. Without --all only what changed (and what failed earlier
 * and is due for a retry) is worked on; with --all every resource is read (a
 * drift sweep). Exit 0 when everything Plumb manages is converged afterwards
 * (pending reboots and reported drift included), 1 otherwise: a resource that
 * failed in an earlier pass and is not due yet keeps the exit code 1.
 */
export async function applyCommand(flags: ApplyFlags, out: Out, env: NodeJS.ProcessEnv, deps: { providers?: Provider[] } = {}): Promise<number> {
  if (!flags.once) throw new UsageError('apply needs --once (the long-running loop is `plumb daemon`)');
  const ctx = resolveContext(flags, env, { state: true });
  const log = humanLog(flags.verbose ? 'debug' : 'warn');
  const engine = await Engine.open({ config: ctx.config, providers: deps.providers ?? builtinProviders(), log, env });
  const stop = new AbortController();
  const abort = new AbortController();
  const onSignal = (): void => {
    if (!stop.signal.aborted) {
      process.stderr.write('stopping: finishing operations in flight (again to abort them)\n');
      stop.abort();
    } else abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const progress = new Progress(out);
  try {
    const report = await engine.pass({
      sweep: Boolean(flags.all),
      stop: stop.signal,
      abort: abort.signal,
      onPlan: (plan) => {
        if (!flags.json) progress.plan(plan.commit, plan.ops.length);
      },
      onResult: (r) => {
        if (!flags.json) progress.result(r);
      },
    });
    progress.finish();
    const results = report.run?.results ?? [];
    const notDone = results.some((r) => NOT_DONE.has(r.status));
    const stand = standing(engine.store, results);
    if (flags.json) {
      printJson(out, {
        commit: report.commit,
        fetched: report.fetched,
        converged: report.converged,
        standing: stand,
        rejected: report.rejected ? { commit: report.rejected.commit, diagnostics: report.rejected.diagnostics } : null,
        fetchError: report.fetchError ?? null,
        results,
        timings: report.timings,
      });
    } else {
      if (report.fetchError) out.write(`fetch failed: ${report.fetchError}\n`);
      if (report.rejected) {
        out.write(`commit ${short(report.rejected.commit)} rejected; nothing from it is applied:\n`);
        for (const d of report.rejected.diagnostics) out.write(`  ${formatDiagnostic(d)}\n`);
        if (report.commit) out.write(`working from the last accepted commit ${short(report.commit)}\n`);
      }
      out.write(summaryLine(report, results, stand) + '\n');
    }
    // Anything Plumb manages left unconverged fails the run, whichever pass left it; so does a broken remote (cron must notice it).
    return !report.converged || notDone || report.rejected || report.fetchError ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await engine.close();
  }
}
