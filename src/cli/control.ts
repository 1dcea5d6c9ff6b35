import { UsageError } from '../errors.js';
import type { DoneEvent } from '../daemon/control.js';
import type { PassEvent } from '../daemon/daemon.js';
import type { OpResult } from '../run/runner.js';
import { parseDuration } from '../util/duration.js';
import { resolveContext, type CommonFlags } from './context.js';
import { callDaemon, DaemonNotRunning, requester } from './control-client.js';
import { printJson, type Out } from './output.js';
import { Progress } from './progress.js';

type Event = PassEvent | DoneEvent;

function socketOf(flags: CommonFlags, env: NodeJS.ProcessEnv): string {
  return resolveContext(flags, env, { state: true }).config.control.socket;
}

function failed(status: number, body: unknown): never {
  throw new UsageError((body as { error?: string } | null)?.error ?? `the daemon answered ${status}`);
}

/**
 * `plumb sync [TARGET|KIND/NAME ...] [--all] [--wait]`: fetch and converge the
 * new commit now; selections are re-read as well; `--all` re-reads everything (a drift sweep).
 */
export async function syncCommand(selectors: string[], flags: CommonFlags & { wait?: boolean; all?: boolean }, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  if (flags.all && selectors.length > 0) throw new UsageError('--all re-reads everything: give selections or --all, not both');
  const socket = socketOf(flags, env);
  const body = { only: selectors, all: Boolean(flags.all), wait: Boolean(flags.wait), by: requester(env) };
  if (!flags.wait) {
    const res = await callDaemon(socket, '/v1/sync', body);
    if (res.status !== 202) failed(res.status, res.body);
    if (!flags.json) out.write(`sync requested${selectors.length ? ` for ${selectors.join(', ')}` : ''}; follow it with plumb status\n`);
    else printJson(out, res.body);
    return 0;
  }
  const progress = new Progress(out);
  let results: OpResult[] = [];
  let done: DoneEvent | undefined;
  const res = await callDaemon(socket, '/v1/sync', body, (line) => {
    const event = line as Event;
    if (event.type === 'plan') {
      // A superseded pass is followed by the one that serves the request: only the last one counts.
      results = [];
      if (!flags.json) progress.plan(event.commit, event.total);
    }
    if (event.type === 'result') {
      results.push(event.result);
      if (!flags.json) progress.result(event.result);
    }
    if (event.type === 'done') done = event;
  });
  progress.finish();
  if (res.status !== 200) failed(res.status, res.body);
  const bad = results.filter((r) => r.status === 'failed' || r.status === 'blocked').length;
  if (flags.json) printJson(out, { ...done, results });
  else if (done?.stopped) out.write('the daemon is stopping; the sync did not run\n');
  else if (done?.error) out.write(`the pass failed: ${done.error} (the daemon log has more)\n`);
  else out.write(`${(done?.commit ?? '').slice(0, 12)}: ${results.filter((r) => r.status === 'changed').length} changed, ${bad} failed or blocked, ${results.filter((r) => r.status === 'paused').length} paused${done?.fetchError ? `; fetch failed: ${done.fetchError}` : ''}\n`);
  return !done || done.stopped || done.error || bad > 0 || done.rejected || done.fetchError ? 1 : 0;
}

/** `plumb pause TARGET|KIND/NAME --reason TEXT [--for 2h]`: the break-glass path during an incident. */
export async function pauseCommand(selector: string, flags: CommonFlags & { reason?: string; for?: string }, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  if (!flags.reason) throw new UsageError('say why: plumb pause SELECTOR --reason "hotfix for INC-1234"');
  let untilMs: number | undefined;
  if (flags.for) {
    try {
      untilMs = parseDuration(flags.for);
    } catch (err) {
      throw new UsageError(`--for ${(err as Error).message}`);
    }
  }
  const res = await callDaemon(socketOf(flags, env), '/v1/pause', { selector, reason: flags.reason, by: requester(env), ...(untilMs ? { untilMs } : {}) });
  if (res.status !== 200) failed(res.status, res.body);
  if (flags.json) printJson(out, res.body);
  else out.write(`paused ${selector}${untilMs ? ` for ${flags.for}` : ' until resumed'}: Plumb will neither change nor remediate it\n`);
  return 0;
}

export async function resumeCommand(selector: string, flags: CommonFlags, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  const res = await callDaemon(socketOf(flags, env), '/v1/resume', { selector, by: requester(env) });
  if (res.status !== 200) failed(res.status, res.body);
  if (flags.json) printJson(out, res.body);
  else out.write(`resumed ${selector}; a sync of it is on its way\n`);
  return 0;
}

export async function reloadCommand(flags: CommonFlags, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  const res = await callDaemon(socketOf(flags, env), '/v1/reload', { by: requester(env) });
  if (res.status !== 200) failed(res.status, res.body);
  const changed = (res.body as { reloaded: string[] }).reloaded;
  if (flags.json) printJson(out, res.body);
  else out.write(changed.length ? `reloaded: ${changed.join(', ')}\n` : 'reloaded: nothing changed\n');
  return 0;
}

/**
 * `plumb resolve KIND/NAME --ran | --not-run --reason TEXT`: settles a write
 * whose outcome nobody knows (a command cut off mid-run) on the operator's
 * word, audited. Through the running daemon; without one, directly in the
 * state (taking the writer lock).
 */
export async function resolveCommand(id: string, flags: CommonFlags & { ran?: boolean; notRun?: boolean; reason?: string }, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  if (Boolean(flags.ran) === Boolean(flags.notRun)) throw new UsageError('say what you found on the target: --ran or --not-run (one of them)');
  if (!flags.reason?.trim()) throw new UsageError('say how you know: plumb resolve KIND/NAME --ran --reason "checked /var/log/app-migrate.log"');
  const ctx = resolveContext(flags, env, { state: true });
  const input = { id, ran: Boolean(flags.ran), by: requester(env), reason: flags.reason };
  let settled: number;
  try {
    const res = await callDaemon(ctx.config.control.socket, '/v1/resolve', input);
    if (res.status !== 200) failed(res.status, res.body);
    settled = (res.body as { settled: number }).settled;
  } catch (err) {
    if (!(err instanceof DaemonNotRunning)) throw err;
    // No daemon: write the answer into the state directly (the writer lock keeps a starting daemon out meanwhile).
    const { Engine } = await import('../daemon/engine.js');
    const { builtinProviders } = await import('../daemon/providers.js');
    const { humanLog } = await import('./human-log.js');
    const engine = await Engine.open({ config: ctx.config, providers: builtinProviders(), log: humanLog('error'), env });
    try {
      settled = engine.resolve(input);
    } finally {
      await engine.close();
    }
  }
  if (flags.json) printJson(out, { resolved: id, ran: input.ran, settled });
  else out.write(`${id}: ${settled} write(s) of unknown outcome resolved as ${input.ran ? 'ran' : 'not run'}; ${input.ran ? 'it will not run again for this spec' : 'the next pass may run it again'}\n`);
  return 0;
}
