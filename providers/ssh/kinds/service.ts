/**
 * ssh.Service: a systemd unit, enabled or not, running or stopped, and
 * restarted once after what `restartOn` lists changed in a pass (Ansible's
 * handlers, Puppet's subscribe). The notification is journaled with each of
 * those writes (src/run), so a crash between a config write and the restart
 * still restarts after resume. Deleting the resource leaves the unit as it is.
 */
import { CommandFailedError, ProviderError } from '../../../src/errors.js';
import { throwIfAborted } from '../../../src/provider.js';
import type { Change, Claim, Json, KindHandler, Resource } from '../../../src/provider.js';
import { redactText } from '../../../src/secrets/redact.js';
import { shellQuote } from '../remote.js';
import type { SshSession } from '../session.js';

export interface ServiceSpec {
  /** The unit: `nginx` means nginx.service. */
  name: string;
  enabled?: boolean;
  state?: 'running' | 'stopped';
  /** Resources (`Kind/name`, on this target) whose change restarts the unit once, after all of them. */
  restartOn?: string[];
  /** restart (default), or reload: `systemctl reload-or-restart`, for units that reread their config on reload. */
  onChange?: 'restart' | 'reload';
}

/** What `systemctl show` says of the unit. */
export interface ServiceActual {
  unit: string;
  /** loaded, masked, error, bad-setting (not-found is read as absent). */
  load: string;
  /** active, reloading, inactive, failed, activating, deactivating. */
  active: string;
  sub: string;
  /** enabled, disabled, static, masked, indirect, generated, ... ('' for a transient unit). */
  unitFile: string;
}

const PROPERTIES = 'Id,LoadState,ActiveState,SubState,UnitFileState';
const UNIT_TYPES = /\.(service|socket|timer|target|mount|automount|path|slice|scope|swap|device)$/;
/** States `systemctl is-enabled` exits 0 for: enabled, or started some other way that needs no enabling. */
const ENABLED = new Set(['enabled', 'enabled-runtime', 'static', 'indirect', 'generated', 'alias', 'transient']);
const RUNNING = new Set(['active', 'reloading', 'activating']);
const STOPPED = new Set(['inactive', 'failed', 'deactivating']);
/** A start or stop waits for its job; systemd gives each 90 s by default, a restart is both. */
const OPERATION_MS = 4 * 60_000;

/** The full unit name: a name without a unit type is a .service. */
export function unitName(name: string): string {
  return UNIT_TYPES.test(name) ? name : `${name}.service`;
}

/** `systemctl show -p ...` output: Key=Value lines (one unit). */
export function parseShow(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.replace(/\r$/, ''));
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

async function readUnit(s: SshSession, unit: string, signal: AbortSignal): Promise<ServiceActual | undefined> {
  const res = await s.exec(`LC_ALL=C systemctl show --property=${PROPERTIES} ${shellQuote(unit)} 2>&1`, signal, { maxOutput: 16 * 1024 });
  const props = parseShow(res.output);
  if (res.code !== 0 || props.LoadState === undefined) {
    const why = res.code === 127 ? 'systemctl is not installed: ssh.Service manages systemd units' : redactText(res.output.trim().split('\n').slice(-3).join(' ')) || `systemctl show exited ${res.code ?? res.signal ?? 'abnormally'}`;
    throw new ProviderError(`ssh ${s.targetName}: cannot read ${unit}: ${why}`);
  }
  if (props.LoadState === 'not-found') return undefined;
  return { unit, load: props.LoadState, active: props.ActiveState ?? '', sub: props.SubState ?? '', unitFile: props.UnitFileState ?? '' };
}

/** The systemctl verbs the changes call for, in order: enable/disable first, then start, stop, restart or reload. */
export function serviceVerbs(changes: Change[]): string[] {
  const verbs: string[] = [];
  for (const c of changes) if (c.path === '/enabled') verbs.push(c.after === true ? 'enable' : 'disable');
  for (const c of changes) if (c.path === '/state') verbs.push(c.after === 'running' ? 'start' : 'stop');
  for (const c of changes) if (c.path === '/restart') verbs.push(c.after === 'reload' ? 'reload-or-restart' : 'restart');
  return verbs;
}

function serviceChanges(r: Resource<ServiceSpec>, actual: ServiceActual | undefined): Change[] {
  const spec = r.spec;
  const unit = unitName(spec.name);
  const changes: Change[] = [];
  const missing = actual === undefined ? ' (not installed yet)' : '';
  if (spec.enabled !== undefined) {
    const enabled = actual !== undefined && ENABLED.has(actual.unitFile);
    const disabled = actual === undefined || !(actual.unitFile === 'enabled' || actual.unitFile === 'enabled-runtime');
    if (spec.enabled && !enabled) changes.push({ path: '/enabled', before: actual?.unitFile ?? null, after: true, note: `enable ${unit}${missing}` });
    if (!spec.enabled && !disabled) changes.push({ path: '/enabled', before: actual?.unitFile ?? null, after: false, note: `disable ${unit}` });
  }
  const running = actual !== undefined && RUNNING.has(actual.active);
  if (spec.state === 'running' && !running) changes.push({ path: '/state', before: actual?.active ?? null, after: 'running', note: `start ${unit}${missing}` });
  if (spec.state === 'stopped' && actual !== undefined && !STOPPED.has(actual.active)) changes.push({ path: '/state', before: actual.active, after: 'stopped', note: `stop ${unit}` });
  // Notified: a running unit restarts (a start just now reads the new config anyway; a stopped one stays stopped).
  const starting = changes.some((c) => c.path === '/state');
  if (r.notified && running && spec.state !== 'stopped' && !starting) {
    const verb = spec.onChange === 'reload' ? 'reload' : 'restart';
    changes.push({ path: '/restart', before: null, after: verb, note: `${verb}: ${r.notified.join(', ')} changed` });
  }
  return changes;
}

export const serviceKind: KindHandler<ServiceSpec, ServiceActual, SshSession> = {
  kind: 'ssh.Service',
  schema: 'ssh.service.schema.json',

  normalize(spec) {
    return { ...spec, name: unitName(spec.name) };
  },

  claims(spec): Claim[] {
    const unit = unitName(spec.name);
    return [{ key: ['service', unit], label: `service ${unit}`, pointer: '/name' }];
  },

  subscribes(spec) {
    return (spec.restartOn ?? []).map((id, i) => ({ id, pointer: `/restartOn/${i}` }));
  },

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    return readUnit(s, unitName(r.spec.name), ctx.signal);
  },

  diff(r, actual) {
    return serviceChanges(r, actual);
  },

  async apply(s, r, changes, ctx, actual) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    const verbs = serviceVerbs(changes);
    if (verbs.length === 0) return;
    const unit = unitName(r.spec.name);
    if (!actual) throw new ProviderError(`${r.id}: ${unit} is not installed on ${s.targetName}; install the package that provides it first (an ssh.Package in dependsOn)`, { notSent: true });
    if (actual.load === 'masked' && verbs.some((v) => v !== 'disable' && v !== 'stop')) {
      throw new ProviderError(`${r.id}: ${unit} is masked on ${s.targetName}; Plumb does not unmask units: \`systemctl unmask ${unit}\` if it should run`, { notSent: true });
    }
    // One exec: the verbs in order, stopping at the first that fails.
    const command = verbs.map((v) => `systemctl ${v} -- ${shellQuote(unit)}`).join(' && ');
    const res = await s.exec(`export LC_ALL=C; { ${command}; } 2>&1`, ctx.signal, { maxOutput: 64 * 1024 });
    const output = redactText(res.output);
    if (res.code !== 0) {
      const lines = output.trim().split('\n').slice(-10).join('\n');
      throw new CommandFailedError(`${r.id}: systemctl ${verbs.join(', ')} ${unit} on ${s.targetName} exited ${res.code ?? `by signal ${res.signal ?? 'unknown'}`}${lines ? `:\n${lines}` : ''}\n(\`journalctl -u ${unit}\` on the host says why)`);
    }
    return output.trim() ? { output } : undefined;
  },

  // No remove(): deleting the resource leaves the unit as it is. Stopping a service because its
  // document left Git is too easy to do by accident; say state: stopped (and enabled: false) instead.

  deadlineMs() {
    return OPERATION_MS;
  },

  released(r) {
    const last = r.lastApplied;
    if (!last) return [];
    const out: Array<{ path: string; note: string }> = [];
    if (last.enabled !== undefined && r.spec.enabled === undefined) out.push({ path: '/enabled', note: `no longer managed; stays ${last.enabled ? 'enabled' : 'disabled'}` });
    if (last.state !== undefined && r.spec.state === undefined) out.push({ path: '/state', note: `no longer managed; stays ${last.state}` });
    return out;
  },

  summarize(actual): Json {
    return actual ? { unit: actual.unit, active: actual.active, sub: actual.sub, unitFile: actual.unitFile } : { present: false };
  },
};
