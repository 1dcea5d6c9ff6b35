import { Engine } from '../daemon/engine.js';
import { builtinProviders } from '../daemon/providers.js';
import { formatDiagnostic } from '../load/types.js';
import { UsageError } from '../errors.js';
import { resolveContext, type CommonFlags } from './context.js';
import { humanLog } from './human-log.js';
import { printJson, short, type Out } from './output.js';
import { Progress } from './progress.js';

export interface ApplyFlags extends CommonFlags {
  once?: boolean;
  all?: boolean;
  verbose?: boolean;
}

/**
 * `plumb apply --once [--all]`: one convergence pass toward the newest valid
 * commit, then exit. Without --all only what changed (and what failed earlier)
 * is worked on; with --all every resource is read (a drift sweep).
 * Exit 0 when everything this pass touched converged, 1 otherwise.
 */
export async function applyCommand(flags: ApplyFlags, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  if (!flags.once) throw new UsageError('apply needs --once (the long-running loop is `plumb daemon`)');
  const ctx = resolveContext(flags, env, { state: true });
  const log = humanLog(flags.verbose ? 'debug' : 'warn');
  const engine = await Engine.open({ config: ctx.config, providers: builtinProviders(), log, env });
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
    const bad = results.filter((r) => r.status === 'failed' || r.status === 'blocked' || r.status === 'cancelled');
    if (flags.json) {
      printJson(out, {
        commit: report.commit,
        fetched: report.fetched,
        converged: report.converged,
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
      const count = (s: string): number => results.filter((r) => r.status === s).length;
      out.write(
        `${short(report.commit)}: ${count('changed')} changed, ${count('deleted')} deleted, ${count('converged')} already converged, ` +
          `${count('drifted')} drifted (reported), ${bad.length} not done` +
          ` in ${((report.run?.durationMs ?? 0) / 1000).toFixed(1)}s\n`,
      );
    }
    // A broken remote is a failure even when the last accepted commit is converged: cron must notice it.
    return bad.length > 0 || report.rejected || report.fetchError ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await engine.close();
  }
}
