/**
 * ssh.File: a regular file's content, mode and ownership. Content is compared by
 * git blob id, so a converged file costs one lstat (plus a read when sizes match)
 * and desired bytes are never loaded to plan.
 */
import { posix } from 'node:path';
import { throwIfAborted } from '../../../src/provider.js';
import { SpecError } from '../../../src/errors.js';
import type { Change, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import type { NodeActual, OwnedSpec } from '../metadata.js';
import { metadataChanges, readNode, releasedMetadata, specMode, summarizeNode, wantedAttributes, wantedIds } from '../metadata.js';
import type { Content, FileType, RemoteStat } from '../remote.js';
import { gitBlobId } from '../../../src/util/git-blob.js';
import { isTempOf, lstat, removeJournaledTemp, readDirNames, remoteBlobId, setAttributes, unlink, writeFileAtomic, tempJournal } from '../remote.js';
import { normalPath, pathClaim } from '../paths.js';
import type { SshSession } from '../session.js';

export interface FileSpec extends OwnedSpec {
  content?: string;
  /** Path of a file in the config repo; resolved by the loader into attachments['/source']. */
  source?: string;
  /** A template, rendered by the loader from the Target's vars into `content`. */
  template?: string;
  /** Path of a template file in the config repo; rendered by the loader into `content` (attachments['/templateFile'] is the template). */
  templateFile?: string;
}

export interface FileActual extends NodeActual {
  /** Git blob id of the current bytes; only computed when the size equals the desired size. */
  contentOid?: string;
}

const DEFAULT_FILE_MODE = 0o644;

interface DesiredContent {
  pointer: '/content' | '/source';
  size: number;
  oid: string;
  algo: 'sha1' | 'sha256';
  bytes: Content;
}

/** Pure: the desired content's size and blob id, from the inline string or the attachment's metadata. */
export function desiredContent(r: Resource<FileSpec>): DesiredContent | undefined {
  const { content, source } = r.spec;
  // A template's rendered text is `content` (src/load/template.ts); without it, it was never rendered.
  if (content === undefined && (r.spec.template !== undefined || r.spec.templateFile !== undefined)) throw new SpecError(`${r.id}: its template was not rendered (templates are rendered when the config is loaded)`);
  if (content !== undefined) {
    const bytes = Buffer.from(content, 'utf8');
    return { pointer: '/content', size: bytes.length, oid: gitBlobId(bytes, 'sha1'), algo: 'sha1', bytes };
  }
  if (source !== undefined) {
    const att = r.attachments['/source'];
    if (!att) throw new SpecError(`${r.id}: source ${source} was not resolved from the config repo`);
    const algo = /^[0-9a-f]{64}$/i.test(att.oid) ? 'sha256' : 'sha1';
    const oid = att.oid.toLowerCase();
    const read = async (): Promise<Buffer> => {
      const bytes = await att.read();
      // The plan compared blob ids: write only bytes that really have the planned id.
      if (gitBlobId(bytes, algo) !== oid) throw new SpecError(`${r.id}: source ${att.path} does not match its blob id ${oid}`);
      return bytes;
    };
    return { pointer: '/source', size: att.size, oid, algo, bytes: read };
  }
  return undefined;
}

/** The lstat facts a read reported, as the remote stat they came from. */
function statOf(actual: FileActual): RemoteStat {
  return { type: actual.type, size: actual.size, mode: parseInt(actual.mode, 8), uid: actual.uid, gid: actual.gid };
}

function refuseType(r: Resource<FileSpec>, type: FileType): SpecError {
  return new SpecError(
    `${r.id}: ${r.spec.path} is a ${type}, not a regular file; ssh.File never replaces or follows it. Remove it yourself or choose another path`,
  );
}

export const fileKind: KindHandler<FileSpec, FileActual, SshSession> = {
  kind: 'ssh.File',
  schema: 'ssh.file.schema.json',
  fileRefs: ['/source', '/templateFile'],
  template: { inline: 'template', file: 'templateFile', into: 'content' },

  normalize(spec) {
    return { ...spec, path: normalPath(spec.path) };
  },

  claims(spec) {
    return [pathClaim(spec.path, true)];
  },

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    // What this op just renamed into place, if it did: taken by every read, so only its verify can use it.
    const written = s.takeWritten(r.spec.path);
    const node = await readNode(s, r.spec.path, ctx);
    if (!node) return undefined;
    const actual: FileActual = { ...node.actual };
    if ((r.spec.state ?? 'present') === 'present' && node.stat.type === 'file') {
      const d = desiredContent(r);
      // Different size already proves different content: no need to read a byte. Right after
      // Plumb's own atomic rename the bytes are the ones it wrote; type, size, mode and owner are still read.
      if (d && d.size === node.stat.size) actual.contentOid = ctx.afterWrite && written === d.oid ? d.oid : await remoteBlobId(s, r.spec.path, node.stat.size, d.algo, ctx.signal);
    }
    return actual;
  },

  diff(r, actual) {
    const spec = r.spec;
    if ((spec.state ?? 'present') === 'absent') {
      if (!actual) return [];
      if (actual.type === 'directory' || actual.type === 'other') {
        return [{ path: '/type', before: actual.type, after: 'absent', note: `${spec.path} is a ${actual.type}; ssh.File only removes files` }];
      }
      return [{ path: '/state', before: 'present', after: 'absent', note: `remove ${spec.path}` }];
    }
    if (!actual) return [{ path: '/state', before: 'absent', after: 'present', note: `create ${spec.path}` }];
    if (actual.type !== 'file') {
      return [{ path: '/type', before: actual.type, after: 'file', note: `${spec.path} is a ${actual.type}; Plumb will not replace it` }];
    }
    const changes: Change[] = [];
    const d = desiredContent(r);
    if (d) {
      if (d.size !== actual.size) {
        changes.push({
          path: d.pointer,
          before: { size: actual.size, oid: null },
          after: { size: d.size, oid: d.oid },
          note: `content differs (${actual.size} bytes -> ${d.size} bytes)`,
        });
      } else if (actual.contentOid !== d.oid) {
        changes.push({
          path: d.pointer,
          before: { size: actual.size, oid: actual.contentOid ?? null },
          after: { size: d.size, oid: d.oid },
          note: `content differs (same size, ${d.size} bytes)`,
        });
      }
    }
    return changes.concat(metadataChanges(spec, actual));
  },

  async apply(s, r, changes, ctx, actual) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const { spec } = r;
    const signal = ctx.signal;
    // This op's read a moment ago (the temp file is created exclusively and renamed atomically either way).
    const st = actual ? statOf(actual) : await lstat(s, spec.path, signal);
    if ((spec.state ?? 'present') === 'absent') {
      if (!st) return;
      // unlink never follows a symlink: it removes the link, not what it points to.
      if (st.type === 'file' || st.type === 'symlink') return unlink(s, spec.path, signal);
      throw refuseType(r, st.type);
    }
    if (st && st.type !== 'file') throw refuseType(r, st.type);
    const d = desiredContent(r);
    const journal = tempJournal(ctx);
    if (!st) {
      const ids = await wantedIds(s, spec, new Set(['/owner', '/group']), signal);
      await writeFileAtomic(s, spec.path, d?.bytes ?? Buffer.alloc(0), { mode: specMode(spec) ?? DEFAULT_FILE_MODE, ...ids }, signal, journal);
      if (d) s.noteWritten(spec.path, d.oid);
      return;
    }
    let paths = new Set(changes.map((c) => c.path));
    // Planned as a create or a type change but a regular file is there now: converge every field.
    if (paths.has('/state') || paths.has('/type')) paths = new Set(['/content', '/source', '/mode', '/owner', '/group']);
    const want = await wantedAttributes(s, spec, paths, signal);
    if (d && paths.has(d.pointer)) {
      // Fields not being changed keep their current values on the replacement file.
      await writeFileAtomic(s, spec.path, d.bytes, { mode: want.mode ?? st.mode, uid: want.uid ?? st.uid, gid: want.gid ?? st.gid }, signal, journal);
      s.noteWritten(spec.path, d.oid);
      return;
    }
    // Only metadata differs: setstat, no rewrite.
    await setAttributes(s, spec.path, want, st, signal);
  },

  async remove(s, r, ctx: OpContext) {
    throwIfAborted(ctx.signal, `${r.id}: remove`);
    if ((r.spec.state ?? 'present') === 'absent') return; // it never created anything
    const st = await lstat(s, r.spec.path, ctx.signal);
    if (!st) return;
    if (st.type !== 'file') {
      ctx.log.warn({ resource: r.id, path: r.spec.path, type: st.type }, 'not a regular file any more; left in place');
      return;
    }
    await unlink(s, r.spec.path, ctx.signal);
    // Temporary files of this path that older runs left without journaling them: ours by name, and in the way of removing the directory.
    const dir = posix.dirname(r.spec.path);
    for (const name of await readDirNames(s, dir, ctx.signal)) {
      const path = posix.join(dir, name);
      if (isTempOf(r.spec.path, path)) await unlink(s, path, ctx.signal);
    }
  },

  /** A temporary file journaled before a write that never finished (a kill -9 mid-write). */
  cleanup(s, r, progress, ctx) {
    return removeJournaledTemp(s, r.id, progress, ctx.signal);
  },

  released(r) {
    return releasedMetadata(r.spec, r.lastApplied);
  },

  summarize(actual) {
    return summarizeNode(actual);
  },
};
