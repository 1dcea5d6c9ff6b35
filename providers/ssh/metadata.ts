/** Mode/owner/group handling shared by ssh.File and ssh.Directory. */
import type { Change, Json, OpContext } from '../../src/provider.js';
import type { FileType, RemoteStat } from './remote.js';
import { idName, lstat, numericId, resolveId } from './remote.js';
import type { SshSession } from './session.js';

export interface OwnedSpec {
  path: string;
  mode?: string;
  owner?: string | number;
  group?: string | number;
  state?: 'present' | 'absent';
}

/** What read() reports for a path: lstat facts plus names for uid/gid. */
export interface NodeActual {
  type: FileType;
  size: number;
  /** Four octal digits, e.g. "0644". */
  mode: string;
  uid: number;
  gid: number;
  /** User name via getent, or the uid as a string when the target has no entry. */
  owner: string;
  group: string;
}

/** "644", "0644" → "0644"; "4755" stays. */
export function normalizeMode(mode: string): string {
  return (parseInt(mode, 8) & 0o7777).toString(8).padStart(4, '0');
}

export function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

export async function readNode(s: SshSession, path: string, ctx: OpContext): Promise<{ stat: RemoteStat; actual: NodeActual } | undefined> {
  const st = await lstat(s, path, ctx.signal);
  if (!st) return undefined;
  const owner = await idName(s, 'passwd', st.uid, ctx.signal);
  const group = await idName(s, 'group', st.gid, ctx.signal);
  return { stat: st, actual: { type: st.type, size: st.size, mode: modeString(st.mode), uid: st.uid, gid: st.gid, owner, group } };
}

function idChange(path: '/owner' | '/group', desired: string | number | undefined, id: number, name: string): Change | undefined {
  if (desired === undefined) return undefined;
  const n = numericId(desired);
  if (n !== undefined) return n === id ? undefined : { path, before: id, after: desired };
  return desired === name ? undefined : { path, before: name, after: desired };
}

/** /mode, /owner, /group changes; fields the spec leaves out are not managed. */
export function metadataChanges(spec: OwnedSpec, actual: NodeActual): Change[] {
  const changes: Change[] = [];
  if (spec.mode !== undefined && normalizeMode(spec.mode) !== actual.mode) {
    changes.push({ path: '/mode', before: actual.mode, after: normalizeMode(spec.mode) });
  }
  const owner = idChange('/owner', spec.owner, actual.uid, actual.owner);
  if (owner) changes.push(owner);
  const group = idChange('/group', spec.group, actual.gid, actual.group);
  if (group) changes.push(group);
  return changes;
}

/** The spec's mode as permission bits, or undefined when the mode is not managed. */
export function specMode(spec: OwnedSpec): number | undefined {
  return spec.mode !== undefined ? parseInt(normalizeMode(spec.mode), 8) : undefined;
}

/** uid/gid the spec asks for, resolved on the target; only for the paths that are to change. */
export async function wantedIds(
  s: SshSession,
  spec: OwnedSpec,
  paths: ReadonlySet<string>,
  signal: AbortSignal,
): Promise<{ uid?: number; gid?: number }> {
  const out: { uid?: number; gid?: number } = {};
  if (spec.owner !== undefined && paths.has('/owner')) out.uid = await resolveId(s, 'passwd', spec.owner, signal);
  if (spec.group !== undefined && paths.has('/group')) out.gid = await resolveId(s, 'group', spec.group, signal);
  return out;
}

/** uid, gid and mode the spec asks for, only for the paths that are to change (none: nothing to set). */
export async function wantedAttributes(s: SshSession, spec: OwnedSpec, paths: ReadonlySet<string>, signal: AbortSignal): Promise<{ uid?: number; gid?: number; mode?: number }> {
  const ids = await wantedIds(s, spec, paths, signal);
  const mode = paths.has('/mode') ? specMode(spec) : undefined;
  return { ...ids, ...(mode !== undefined ? { mode } : {}) };
}

/** `{ size, mode, owner, group }` for status lines. */
export function summarizeNode(actual: NodeActual | undefined): Json {
  if (!actual) return { present: false };
  return { type: actual.type, size: actual.size, mode: actual.mode, owner: actual.owner, group: actual.group };
}

/** Mode, owner or group the last applied spec set and this one leaves out: there is no "unset" for them, so they keep their value. */
export function releasedMetadata(spec: OwnedSpec, lastApplied: OwnedSpec | undefined): Array<{ path: string; note: string }> {
  if (!lastApplied) return [];
  return (['mode', 'owner', 'group'] as const)
    .filter((f) => lastApplied[f] !== undefined && spec[f] === undefined)
    .map((f) => ({ path: `/${f}`, note: `no longer managed; keeps ${JSON.stringify(lastApplied[f])} (a file's ${f} cannot be unset)` }));
}
