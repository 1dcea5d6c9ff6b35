/**
 * ssh.Command: the imperative escape hatch. Guards (`creates`, `unless`, `onlyIf`)
 * decide whether it must run; without any guard it runs once per change of its
 * spec, remembered through Applied.memo. It has no remove(): nothing to undo.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { CommandFailedError, SpecError } from '../../../src/errors.js';
import type { Json, KindHandler, Resource } from '../../../src/provider.js';
import { redactText } from '../../../src/secrets/redact.js';
import { isObject } from '../../../src/util/object.js';
import { specHash } from '../../canonical.js';
import { shellQuote, stat } from '../remote.js';
import type { ExecResult, SshSession } from '../session.js';

export interface CommandSpec {
  run: string;
  creates?: string;
  unless?: string;
  onlyIf?: string;
  env?: Record<string, string>;
  cwd?: string;
}

export interface CommandActual {
  /** Whether apply would run the command now. */
  pending: boolean;
  /** Why, in words: "creates /x is absent", "unless check exited 1", "spec changed since last run". */
  reason: string;
}

const OUTPUT_LIMIT = 4 * 1024;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function hasGuard(spec: CommandSpec): boolean {
  return spec.creates !== undefined || spec.unless !== undefined || spec.onlyIf !== undefined;
}

/** `export K='v'; cd '/dir' || exit 1; <cmd>` for the remote user's POSIX shell. */
export function shellLine(spec: CommandSpec, command: string): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(spec.env ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!ENV_NAME.test(name)) throw new SpecError(`env name "${name}" is not a valid shell variable name`);
    parts.push(`export ${name}=${shellQuote(String(value))};`);
  }
  if (spec.cwd !== undefined) parts.push(`cd ${shellQuote(spec.cwd)} || exit 1;`);
  parts.push(command);
  return parts.join(' ');
}

function ranSpecHash(memo: Json | undefined): string | undefined {
  if (memo !== null && typeof memo === 'object' && !Array.isArray(memo) && typeof memo.ranSpecHash === 'string') return memo.ranSpecHash;
  return undefined;
}

function exitText(res: ExecResult): string {
  return res.code !== null ? String(res.code) : `by signal ${res.signal ?? 'unknown'}`;
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return (lines[lines.length - 1] ?? '').slice(0, 500);
}

function tail(text: string, limit: number): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= limit ? text : bytes.subarray(bytes.length - limit).toString('utf8');
}

async function check(s: SshSession, r: Resource<CommandSpec>, command: string, signal: AbortSignal): Promise<ExecResult> {
  return s.exec(shellLine(r.spec, command), signal, { maxOutput: OUTPUT_LIMIT });
}

export const commandKind: KindHandler<CommandSpec, CommandActual, SshSession> = {
  kind: 'ssh.Command',
  schema: 'ssh.command.schema.json',

  // Imperative: it owns nothing on the host, so it overlaps with nothing.
  claims: () => [],

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    const spec = r.spec;
    if (!hasGuard(spec)) {
      const ran = ranSpecHash(r.memo);
      if (ran === specHash(spec)) return { pending: false, reason: 'ran for this spec' };
      return { pending: true, reason: ran === undefined ? 'not run yet' : 'spec changed since last run' };
    }
    // Run only if every guard allows it; the cheapest guard goes first.
    const reasons: string[] = [];
    if (spec.creates !== undefined) {
      if (await stat(s, spec.creates, ctx.signal)) return { pending: false, reason: `creates ${spec.creates} exists` };
      reasons.push(`creates ${spec.creates} is absent`);
    }
    if (spec.unless !== undefined) {
      const res = await check(s, r, spec.unless, ctx.signal);
      if (res.code === 0) return { pending: false, reason: 'unless check exited 0' };
      reasons.push(`unless check exited ${exitText(res)}`);
    }
    if (spec.onlyIf !== undefined) {
      const res = await check(s, r, spec.onlyIf, ctx.signal);
      if (res.code !== 0) return { pending: false, reason: `onlyIf check exited ${exitText(res)}` };
      reasons.push('onlyIf check exited 0');
    }
    return { pending: true, reason: reasons.join('; ') };
  },

  diff(r, actual) {
    const spec = r.spec;
    let pending: boolean;
    let reason: string;
    if (!hasGuard(spec)) {
      // Pure: whether this exact spec already ran is known from the memo alone.
      const ran = ranSpecHash(r.memo);
      pending = ran !== specHash(spec);
      reason = ran === undefined ? 'not run yet' : 'spec changed since last run';
    } else {
      pending = actual?.pending ?? true;
      reason = actual?.reason ?? 'guards not checked';
    }
    return pending ? [{ path: '/run', before: null, after: spec.run, note: reason }] : [];
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const res = await s.exec(shellLine(r.spec, r.spec.run), ctx.signal);
    const output = tail(redactText(res.output), OUTPUT_LIMIT);
    if (res.code !== 0) {
      const detail = lastLine(redactText(res.stderr)) || lastLine(output);
      throw new CommandFailedError(`${r.id}: run exited ${exitText(res)}${detail ? `: ${detail}` : ''}`);
    }
    return hasGuard(r.spec) ? { output } : { memo: { ranSpecHash: specHash(r.spec) }, output };
  },

  // No remove(): what a command did is not Plumb's to reverse, so deleting one touches nothing.

  summarize(actual) {
    return actual ? { pending: actual.pending, reason: actual.reason } : null;
  },

  safeToRetryAfterCrash(r) {
    return hasGuard(r.spec);
  },

  // `plumb resolve --ran`: remembered exactly as a run Plumb saw finish.
  ranMemo(r) {
    return { ...(isObject(r.memo) ? r.memo : {}), ranSpecHash: specHash(r.spec) };
  },
};
