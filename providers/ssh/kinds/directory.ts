/**
 * ssh.Directory: a directory's existence, mode and ownership. Missing parents are
 * created like `mkdir -p`; removal only ever deletes an empty directory.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { posix } from 'node:path';
import { SpecError } from '../../../src/errors.js';
import type { KindHandler, OpContext, Resource } from '../../../src/provider.js';
import type { NodeActual, OwnedSpec } from '../metadata.js';
import { metadataChanges, readNode, releasedMetadata, specMode, summarizeNode, wantedAttributes, wantedIds } from '../metadata.js';
import type { FileType } from '../remote.js';
import { lstat, mkdir, rmdir, setAttributes, stat } from '../remote.js';
import { normalPath, pathClaim } from '../paths.js';
import type { SshSession } from '../session.js';

export type DirectorySpec = OwnedSpec;
export type DirectoryActual = NodeActual;

const DEFAULT_DIR_MODE = 0o755;
const PARENT_MODE = 0o755;

function refuseType(r: Resource<DirectorySpec>, type: FileType): SpecError {
  return new SpecError(`${r.id}: ${r.spec.path} is a ${type}, not a directory; Plumb will not replace it. Remove it yourself or choose another path`);
}

function notEmpty(r: Resource<DirectorySpec>, entries: number): SpecError {
  return new SpecError(
    `${r.id}: ${r.spec.path} is not empty (at least ${entries} entries); Plumb removes only empty directories and never deletes contents it does not manage. Remove them or manage them with resources`,
  );
}

/** Creates missing ancestors (mode 0755, following symlinked parents like mkdir -p), outermost first. */
async function createParents(s: SshSession, r: Resource<DirectorySpec>, signal: AbortSignal): Promise<void> {
  const missing: string[] = [];
  for (let dir = posix.dirname(r.spec.path); ; dir = posix.dirname(dir)) {
    const st = await stat(s, dir, signal);
    if (st?.type === 'directory') break;
    if (st) throw new SpecError(`${r.id}: parent ${dir} of ${r.spec.path} exists and is a ${st.type}, not a directory`);
    missing.unshift(dir);
    if (dir === '/') break;
  }
  for (const dir of missing) {
    await mkdir(s, dir, PARENT_MODE, signal);
    const st = await lstat(s, dir, signal);
    // mkdir's mode passes through the server's umask; parents are promised 0755.
    if (st && st.mode !== PARENT_MODE) await setAttributes(s, dir, { mode: PARENT_MODE }, st, signal);
  }
}

export const directoryKind: KindHandler<DirectorySpec, DirectoryActual, SshSession> = {
  kind: 'ssh.Directory',
  schema: 'ssh.directory.schema.json',

  normalize(spec) {
    return { ...spec, path: normalPath(spec.path) };
  },

  claims(spec) {
    return [pathClaim(spec.path, false)];
  },

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    return (await readNode(s, r.spec.path, ctx))?.actual;
  },

  diff(r, actual) {
    const spec = r.spec;
    if ((spec.state ?? 'present') === 'absent') {
      if (!actual) return [];
      if (actual.type !== 'directory') {
        return [{ path: '/type', before: actual.type, after: 'absent', note: `${spec.path} is a ${actual.type}; ssh.Directory only removes directories` }];
      }
      return [{ path: '/state', before: 'present', after: 'absent', note: `remove empty directory ${spec.path}` }];
    }
    if (!actual) return [{ path: '/state', before: 'absent', after: 'present', note: `create ${spec.path}` }];
    if (actual.type !== 'directory') {
      return [{ path: '/type', before: actual.type, after: 'directory', note: `${spec.path} is a ${actual.type}; Plumb will not replace it` }];
    }
    return metadataChanges(spec, actual);
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const { spec } = r;
    const signal = ctx.signal;
    let st = await lstat(s, spec.path, signal);
    if ((spec.state ?? 'present') === 'absent') {
      if (!st) return;
      if (st.type !== 'directory') throw refuseType(r, st.type);
      const res = await rmdir(s, spec.path, signal);
      if (res.notEmpty !== undefined) throw notEmpty(r, res.notEmpty);
      return;
    }
    if (st && st.type !== 'directory') throw refuseType(r, st.type);
    const mode = specMode(spec);
    let paths = new Set(changes.map((c) => c.path));
    if (!st) {
      await createParents(s, r, signal);
      await mkdir(s, spec.path, mode ?? DEFAULT_DIR_MODE, signal);
      st = await lstat(s, spec.path, signal);
      if (!st || st.type !== 'directory') throw refuseType(r, st?.type ?? 'other');
      paths = new Set(['/mode', '/owner', '/group']);
      const ids = await wantedIds(s, spec, paths, signal);
      const want = mode ?? DEFAULT_DIR_MODE;
      await setAttributes(s, spec.path, { ...ids, ...(st.mode !== want ? { mode: want } : {}) }, st, signal);
      return;
    }
    if (paths.has('/state') || paths.has('/type')) paths = new Set(['/mode', '/owner', '/group']);
    await setAttributes(s, spec.path, await wantedAttributes(s, spec, paths, signal), st, signal);
  },

  async remove(s, r, ctx: OpContext) {
    throwIfAborted(ctx.signal, `${r.id}: remove`);
    if ((r.spec.state ?? 'present') === 'absent') return;
    const st = await lstat(s, r.spec.path, ctx.signal);
    if (!st) return;
    if (st.type !== 'directory') {
      ctx.log.warn({ resource: r.id, path: r.spec.path, type: st.type }, 'not a directory any more; left in place');
      return;
    }
    const res = await rmdir(s, r.spec.path, ctx.signal);
    if (res.notEmpty !== undefined) throw notEmpty(r, res.notEmpty);
  },

  released(r) {
    return releasedMetadata(r.spec, r.lastApplied);
  },

  summarize(actual) {
    return summarizeNode(actual);
  },
};
