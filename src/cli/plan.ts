import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { builtinProviderSchemas } from '../daemon/provider-schemas.js';
import { loadDelta, loadFull } from '../load/loader.js';
import { SchemaRegistry } from '../load/schemas.js';
import { diagnosticToJson, formatDiagnostic, targetId, type DesiredSet, type Diagnostic, type LoadedResource } from '../load/types.js';
import { plan as makePlan } from '../plan/planner.js';
import { deltaScope, notifyScope, recordedFromDesired } from '../plan/scope.js';
import type { Op, Plan, RecordedResource } from '../plan/types.js';
import type { Change, TargetSpec } from '../provider.js';
import { ProviderRegistry } from '../run/registry.js';
import { Runner, type OpResult } from '../run/runner.js';
import { SessionPool } from '../run/sessions.js';
import { keyedHasher, loadHashKey } from '../secrets/keyed-hash.js';
import { SecretResolver } from '../secrets/resolve.js';
import { DB_FILE, openReadOnly } from '../state/db.js';
import { Store } from '../state/store.js';
import { resolveContext, type CommonFlags } from './context.js';
import { humanLog } from './human-log.js';
import { batched, printJson, short, type Out } from './output.js';
import { openObjects, openWorktree, PARALLEL_LOAD, refuseRevisionWithWorktree, type RepoReader } from './repo.js';
import { lineDiff } from './text-diff.js';

export interface PlanFlags extends CommonFlags {
  from?: string;
  to?: string;
  live?: boolean;
  all?: boolean;
  /** Plan the working tree (uncommitted files too) against HEAD or --from. */
  worktree?: boolean;
}

const SYMBOL: Record<string, string> = { create: '+', update: '~', delete: '-', noop: '=' };

/**
 * `plumb plan [--from REV] [--to REV] [--live] [--all]`: the ops a commit causes.
 * Without --from, the base is what Plumb last accepted (from --state), or nothing.
 * --live reads the targets through the same code path as apply, minus the writes.
 * Exit 0 no changes, 2 changes, 1 error.
 */
export async function planCommand(flags: PlanFlags, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  refuseRevisionWithWorktree(flags, '--to', flags.to);
  const ctx = resolveContext(flags, env);
  const { objects, defaultRev }: { objects: RepoReader; defaultRev: string } = flags.worktree ? await openWorktree(ctx, env) : openObjects(ctx, env);
  const store = ctx.hasState && existsSync(join(ctx.config.stateDir, DB_FILE)) ? new Store(openReadOnly(ctx.config.stateDir)) : undefined;
  try {
    const schemas = new SchemaRegistry(builtinProviderSchemas());
    const options = { objects, registry: schemas, scope: ctx.config.repo.path, limits: ctx.config.limits, parallel: PARALLEL_LOAD };
    const to = await objects.resolveCommit(flags.to ?? defaultRev);
    // The working tree is planned against the commit it was checked out from, as if that were applied.
    const fromRev = flags.from ?? (flags.worktree ? 'HEAD' : (store?.source().acceptedCommit ?? undefined));
    const from = fromRev ? await objects.resolveCommit(fromRev) : undefined;

    let desired: { get(id: string): LoadedResource | undefined };
    let scope: Set<string>;
    let changedTargets = new Set<string>();
    let recorded: Map<string, RecordedResource>;
    let notify: ReturnType<typeof notifyScope> | undefined;
    let changedFiles = 0;
    if (from) {
      const base = await loadFull(from, options);
      if (base.diagnostics.length > 0) return fail(out, flags, from, base.diagnostics, `the base commit ${short(from)} does not validate`);
      const delta = await loadDelta(base.set, to, options);
      if (delta.diagnostics.length > 0) return fail(out, flags, to, delta.diagnostics);
      changedFiles = delta.changes.length;
      desired = delta;
      ({ scope, changedTargets } = deltaScope(base.set, delta));
      if (flags.all) for (const id of allIds(base.set, delta)) scope.add(id);
      const fromState = !(flags.from || flags.worktree) && store;
      // As the daemon's next pass would: what failed earlier and writes of unknown outcome are looked at again.
      if (fromState) for (const id of [...store.retryDue(Number.MAX_SAFE_INTEGER), ...store.unknownIds()]) if (delta.get(id)) scope.add(id);
      // Subscribers (restartOn) of what changes, as the daemon plans them.
      notify = notifyScope(scope, fromState ? store.notifiedIds() : [], delta, base.set);
      recorded = fromState ? store.recorded(scope) : recordedFromDesired(base.set.resources, scope, (name) => targetSpecOf(base.set, name));
    } else {
      const full = await loadFull(to, options);
      if (full.diagnostics.length > 0) return fail(out, flags, to, full.diagnostics);
      desired = full.set.resources;
      recorded = store?.allRecorded() ?? new Map();
      scope = new Set([...full.set.resources.keys(), ...recorded.keys()]);
      notify = notifyScope(scope, store?.notifiedIds() ?? [], full.set.resources, full.set);
    }
    const plan = makePlan({
      commit: to,
      ...(from ? { base: from } : {}),
      mode: flags.all ? 'full' : 'delta',
      desired,
      scope,
      recorded,
      tombstones: store?.pendingTombstones() ?? [],
      retry: new Set(store?.retryDue(Number.MAX_SAFE_INTEGER) ?? []),
      changedTargets,
      notify,
    });

    let live: Map<string, OpResult> | undefined;
    if (flags.live) live = await readLive(plan, desired, env, ctx.hasState ? loadHashKey(ctx.config.stateDir, { create: false }) : undefined, store);
    // Live: what would change, what failed to read, and what is converged but waits (a BIOS value staged for a reboot).
    const shown = plan.ops.filter((op) => {
      const result = live?.get(op.key);
      return result ? result.action !== 'noop' || result.status === 'failed' || result.note !== undefined : op.action !== 'noop';
    });
    if (flags.json) printJson(out, planJson(plan, shown, live));
    else {
      const lines = batched(out);
      printPlan(lines, plan, shown, live, changedFiles, (kind) => schemas.kinds.get(kind)?.template?.inline);
      lines.flush();
    }
    const failed = live && [...live.values()].some((r) => r.status === 'failed' || r.status === 'blocked');
    if (failed) return 1;
    // Something that only waits (for a reboot) is shown, but it is not a change Plumb would make.
    // An unsettled write (unknown outcome, pending confirmed commit) is work apply will do first: not "no changes".
    return shown.some((op) => (live?.get(op.key)?.action ?? op.action) !== 'noop' || live?.get(op.key)?.unsettled) ? 2 : 0;
  } finally {
    objects.close();
    store?.close();
  }
}

function fail(out: Out, flags: PlanFlags, commit: string, diagnostics: Diagnostic[], headline?: string): number {
  if (flags.json) printJson(out, { valid: false, commit, diagnostics: diagnostics.map(diagnosticToJson) });
  else {
    for (const d of diagnostics) out.write(formatDiagnostic(d) + '\n');
    process.stderr.write(`${headline ?? `${short(commit)}: ${diagnostics.length} error(s)`}; nothing from it would be applied\n`);
  }
  return 1;
}

function allIds(base: DesiredSet, delta: { added: Map<string, LoadedResource>; removed: Set<string> }): string[] {
  return [...base.resources.keys(), ...delta.added.keys()].filter((id) => delta.added.has(id) || !delta.removed.has(id));
}

function targetSpecOf(set: DesiredSet, name: string): TargetSpec | null {
  return (set.resources.get(targetId(name))?.spec as TargetSpec | undefined) ?? null;
}

/**
 * Dry run: read and diff every op's target, no journal writes, no target writes.
 * With the state (`view`), it knows what Plumb last applied (so removed fields
 * show as removals) and which writes are unsettled (an unknown outcome, a
 * pending confirmed commit), and says so instead of showing them converged.
 */
async function readLive(plan: Plan, desired: { get(id: string): LoadedResource | undefined }, env: NodeJS.ProcessEnv, hashKey: Buffer | undefined, view: Store | undefined): Promise<Map<string, OpResult>> {
  // The transports (ssh2) load only here: a plan that reads no target does not pay for them.
  const { builtinProviders } = await import('../daemon/providers.js');
  const providers = builtinProviders();
  const log = humanLog('warn');
  const secrets = new SecretResolver({ env });
  const pool = new SessionPool({ secrets, log, connectTimeoutMs: 15_000, maxConnectFailures: 1 });
  // Without the daemon's key, secrets that can't be read back (account passwords) compare as changed.
  const keyedHash = keyedHasher(hashKey ?? randomBytes(32));
  const runner = new Runner({ registry: new ProviderRegistry(providers), pool, log, secrets, keyedHash, options: { maxAttempts: 1 }, ...(view ? { view } : {}) });
  const never = new AbortController().signal;
  try {
    const report = await runner.run(plan, { mode: 'plan', stop: never, abort: never, targets: (name) => desired.get(targetId(name))?.spec as TargetSpec | undefined });
    return new Map(report.results.map((r) => [r.key, r]));
  } finally {
    await pool.closeAll();
  }
}

function printPlan(out: Out, plan: Plan, shown: Op[], live: Map<string, OpResult> | undefined, changedFiles: number, templateField: (kind: string) => string | undefined): void {
  const header = plan.base ? `Plan ${short(plan.base)}..${short(plan.commit)} (${changedFiles} file(s) changed)` : `Plan for ${short(plan.commit)}`;
  out.write(`${header}${live ? ', read live from the targets' : ''}:\n\n`);
  if (shown.length === 0) {
    out.write(live ? '  No changes: every target already matches.\n' : '  No changes.\n');
    return;
  }
  let idWidth = 0; // (a loop: spreading 100k lengths into Math.max is near the argument limit)
  for (const op of shown) idWidth = Math.max(idWidth, op.id.length);
  const counts: Record<string, number> = {};
  for (const op of shown) {
    const result = live?.get(op.key);
    const action = result?.action ?? op.action;
    const label = result?.unsettled ? 'unsettled' : result?.cause === 'drift' ? 'drift' : action === 'noop' && result?.note ? 'waits' : action;
    counts[label] = (counts[label] ?? 0) + 1;
    const reasons = result?.error ? `${result.error.code}: ${result.error.message}` : [...op.reasons, ...(result?.note ? [result.note] : [])].join('; ');
    out.write(`  ${result?.status === 'failed' || result?.unsettled ? '!' : (SYMBOL[action] ?? '?')} ${label.padEnd(6)} ${op.id.padEnd(idWidth)}  ${(op.target ?? '-').padEnd(12)} ${reasons}\n`);
    for (const change of result?.changes ?? []) out.write(`      ${formatChange(change)}\n`);
    if (op.action === 'update') for (const row of textChanges(op, templateField(op.kind))) out.write(`      ${row}\n`);
  }
  const summary = ['create', 'update', 'delete', 'drift'].map((k) => `${counts[k] ?? 0} to ${k === 'drift' ? 'remediate (drift)' : k}`).join(', ') + (counts.unsettled ? `, ${counts.unsettled} unsettled (settled first by apply)` : '');
  out.write(`\nPlan: ${summary}.\n`);
}

/**
 * The line diff of each text field of the spec that changed, as recorded then and
 * desired now: a template's rendered content, not the template (`skip`), which the reasons name.
 */
function textChanges(op: Op, skip: string | undefined): string[] {
  const before = (op.before ?? {}) as Record<string, unknown>;
  const after = op.after ?? {};
  const rows: string[] = [];
  for (const key of Object.keys(after).sort()) {
    const was = before[key];
    const now = after[key];
    if (key === skip || typeof now !== 'string' || typeof was !== 'string' || was === now) continue;
    rows.push(`${key}:`, ...lineDiff(was, now).map((row) => `  ${row}`));
  }
  return rows;
}

export function formatChange(c: Change): string {
  const show = (v: unknown): string => (v === undefined ? '(absent)' : typeof v === 'string' && v.length > 60 ? JSON.stringify(v.slice(0, 57) + '...') : JSON.stringify(v));
  return `${c.path || '/'}: ${c.note ?? `${show(c.before)} -> ${show(c.after)}`}`;
}

function planJson(plan: Plan, shown: Op[], live: Map<string, OpResult> | undefined): unknown {
  return {
    commit: plan.commit,
    base: plan.base ?? null,
    mode: plan.mode,
    live: Boolean(live),
    ops: shown.map((op) => {
      const result = live?.get(op.key);
      return {
        action: result?.action ?? op.action,
        cause: result?.cause ?? op.cause,
        id: op.id,
        target: op.target,
        reasons: op.reasons,
        ...(result ? { changes: result.changes, status: result.status, ...(result.error ? { error: result.error } : {}), ...(result.note ? { note: result.note } : {}), ...(result.unsettled ? { unsettled: true } : {}) } : {}),
      };
    }),
  };
}
