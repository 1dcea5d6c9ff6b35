/** diff is pure, deterministic and speaks JSON pointers into spec: no session, no I/O. */
import { describe, expect, it } from 'vitest';
import { commandKind, type CommandActual, type CommandSpec } from '../../../providers/ssh/kinds/command.js';
import { shellLine } from '../../../providers/ssh/kinds/command.js';
import { directoryKind, type DirectoryActual, type DirectorySpec } from '../../../providers/ssh/kinds/directory.js';
import { desiredContent, fileKind, type FileActual, type FileSpec } from '../../../providers/ssh/kinds/file.js';
import { canonicalJson, specHash } from '../../../providers/canonical.js';
import { normalizeMode } from '../../../providers/ssh/metadata.js';
import { gitBlobId } from '../../../src/util/git-blob.js';
import type { Attachment, Change, Resource } from '../../../src/provider.js';
import { makeResource } from '../../helpers/resources.js';

const HELLO_OID = 'b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0'; // printf hello | git hash-object --stdin

function fileActual(overrides: Partial<FileActual> = {}): FileActual {
  return { type: 'file', size: 5, mode: '0644', uid: 0, gid: 0, owner: 'root', group: 'root', contentOid: HELLO_OID, ...overrides };
}

function applyIgnore(changes: Change[], r: Resource): Change[] {
  // What the engine does with metadata.ignore: drop changes at or under an ignored pointer.
  return changes.filter((c) => !r.meta.ignore.some((p) => c.path === p || c.path.startsWith(`${p}/`)));
}

describe('ssh.File diff', () => {
  const spec: FileSpec = { path: '/etc/motd', content: 'hello', mode: '0644', owner: 'root', group: 'root' };

  it('computes the git blob id of inline content', () => {
    expect(gitBlobId(Buffer.from('hello'))).toBe(HELLO_OID);
    expect(desiredContent(makeResource('ssh.File', 'm', spec))).toMatchObject({ pointer: '/content', size: 5, oid: HELLO_OID, algo: 'sha1' });
  });

  it('uses the attachment oid (sha1 or sha256) for source, without reading it', () => {
    let reads = 0;
    const att = (oid: string): Attachment => ({ path: 'files/motd', oid, size: 5, read: async () => (reads++, Buffer.from('hello')) });
    const r1 = makeResource<FileSpec>('ssh.File', 'm', { path: '/etc/motd', source: 'files/motd' }, { attachments: { '/source': att(HELLO_OID) } });
    expect(fileKind.diff(r1, fileActual())).toEqual([]);
    const sha256 = gitBlobId(Buffer.from('hello'), 'sha256');
    const r2 = makeResource<FileSpec>('ssh.File', 'm', { path: '/etc/motd', source: 'files/motd' }, { attachments: { '/source': att(sha256) } });
    expect(desiredContent(r2)?.algo).toBe('sha256');
    expect(fileKind.diff(r2, fileActual({ contentOid: sha256 }))).toEqual([]);
    expect(fileKind.diff(r2, fileActual())).toMatchObject([{ path: '/source' }]);
    expect(reads).toBe(0);
  });

  it('converged → []; each drifted field is one change at its own pointer, before = actual, after = desired', () => {
    const r = makeResource('ssh.File', 'm', spec);
    expect(fileKind.diff(r, fileActual())).toEqual([]);
    const drifted = fileActual({ size: 7, contentOid: undefined, mode: '0600', uid: 33, owner: 'www-data', gid: 33, group: 'www-data' });
    expect(fileKind.diff(r, drifted)).toEqual([
      { path: '/content', before: { size: 7, oid: null }, after: { size: 5, oid: HELLO_OID }, note: 'content differs (7 bytes -> 5 bytes)' },
      { path: '/mode', before: '0600', after: '0644' },
      { path: '/owner', before: 'www-data', after: 'root' },
      { path: '/group', before: 'www-data', after: 'root' },
    ]);
  });

  it('same size, different blob id → a content change', () => {
    const r = makeResource('ssh.File', 'm', spec);
    expect(fileKind.diff(r, fileActual({ contentOid: 'f'.repeat(40) }))).toMatchObject([{ path: '/content', note: 'content differs (same size, 5 bytes)' }]);
  });

  it('modes compare normalised; numeric owners compare with uids', () => {
    const r = makeResource<FileSpec>('ssh.File', 'm', { path: '/etc/motd', content: 'hello', mode: '644', owner: 0, group: '0' });
    expect(fileKind.diff(r, fileActual())).toEqual([]);
    expect(fileKind.diff(r, fileActual({ uid: 5, owner: 'games' }))).toEqual([{ path: '/owner', before: 5, after: 0 }]);
    expect(normalizeMode('755')).toBe('0755');
    expect(normalizeMode('04755')).toBe('4755');
  });

  it('unmanaged fields (no mode/owner/group in spec) never show as changes', () => {
    const r = makeResource<FileSpec>('ssh.File', 'm', { path: '/etc/motd', content: 'hello' });
    expect(fileKind.diff(r, fileActual({ mode: '0777', owner: 'nobody', uid: 65534 }))).toEqual([]);
  });

  it('changes are ignore-friendly: filtering /mode leaves the rest', () => {
    const r = makeResource('ssh.File', 'm', spec, { meta: { ignore: ['/mode'] } });
    const changes = fileKind.diff(r, fileActual({ mode: '0600', owner: 'www-data', uid: 33 }));
    expect(applyIgnore(changes, r)).toEqual([{ path: '/owner', before: 'www-data', after: 'root' }]);
  });

  it('create, absent, wrong type', () => {
    const r = makeResource('ssh.File', 'm', spec);
    expect(fileKind.diff(r, undefined)).toEqual([{ path: '/state', before: 'absent', after: 'present', note: 'create /etc/motd' }]);
    expect(fileKind.diff(r, fileActual({ type: 'directory' }))).toMatchObject([{ path: '/type', before: 'directory', after: 'file' }]);
    expect(fileKind.diff(r, fileActual({ type: 'symlink' }))).toMatchObject([{ path: '/type', before: 'symlink', after: 'file' }]);
    const absent = makeResource<FileSpec>('ssh.File', 'm', { path: '/etc/motd', state: 'absent' });
    expect(fileKind.diff(absent, undefined)).toEqual([]);
    expect(fileKind.diff(absent, fileActual())).toMatchObject([{ path: '/state', before: 'present', after: 'absent' }]);
    expect(fileKind.diff(absent, fileActual({ type: 'directory' }))).toMatchObject([{ path: '/type', before: 'directory', after: 'absent' }]);
  });

  it('is deterministic and does not mutate its inputs', () => {
    const r = makeResource('ssh.File', 'm', spec);
    const actual = fileActual({ size: 9, mode: '0600' });
    const [rCopy, aCopy] = [structuredClone(r), structuredClone(actual)];
    expect(fileKind.diff(r, actual)).toEqual(fileKind.diff(rCopy, aCopy));
    expect(r).toEqual(rCopy);
    expect(actual).toEqual(aCopy);
  });

  it('summarize is small', () => {
    expect(fileKind.summarize?.(fileActual())).toEqual({ type: 'file', size: 5, mode: '0644', owner: 'root', group: 'root' });
    expect(fileKind.summarize?.(undefined)).toEqual({ present: false });
  });
});

describe('ssh.Directory diff', () => {
  const actual: DirectoryActual = { type: 'directory', size: 4096, mode: '0755', uid: 0, gid: 0, owner: 'root', group: 'root' };
  it('create, converged, drift, remove, wrong type', () => {
    const r = makeResource<DirectorySpec>('ssh.Directory', 'd', { path: '/srv/app', mode: '0750', owner: 'root' });
    expect(directoryKind.diff(r, undefined)).toMatchObject([{ path: '/state', before: 'absent', after: 'present' }]);
    expect(directoryKind.diff(r, { ...actual, mode: '0750' })).toEqual([]);
    expect(directoryKind.diff(r, actual)).toEqual([{ path: '/mode', before: '0755', after: '0750' }]);
    expect(directoryKind.diff(r, { ...actual, type: 'file' })).toMatchObject([{ path: '/type', before: 'file', after: 'directory' }]);
    const gone = makeResource<DirectorySpec>('ssh.Directory', 'd', { path: '/srv/app', state: 'absent' });
    expect(directoryKind.diff(gone, undefined)).toEqual([]);
    expect(directoryKind.diff(gone, actual)).toMatchObject([{ path: '/state', before: 'present', after: 'absent' }]);
  });
});

describe('ssh.Command diff', () => {
  it('guarded: follows what read found, with its reason as the note', () => {
    const r = makeResource<CommandSpec>('ssh.Command', 'c', { run: 'make install', creates: '/usr/local/bin/app' });
    const pending: CommandActual = { pending: true, reason: 'creates /usr/local/bin/app is absent' };
    expect(commandKind.diff(r, pending)).toEqual([{ path: '/run', before: null, after: 'make install', note: 'creates /usr/local/bin/app is absent' }]);
    expect(commandKind.diff(r, { pending: false, reason: 'creates /usr/local/bin/app exists' })).toEqual([]);
    expect(commandKind.diff(r, undefined)).toHaveLength(1);
    expect(commandKind.safeToRetryAfterCrash?.(r)).toBe(true);
  });

  it('guardless: pending unless the memo holds this exact spec hash', () => {
    const spec: CommandSpec = { run: 'systemctl daemon-reload', env: { B: '2', A: '1' } };
    const r = makeResource('ssh.Command', 'c', spec);
    expect(commandKind.diff(r, undefined)).toMatchObject([{ path: '/run', note: 'not run yet' }]);
    const ran = { ...r, memo: { ranSpecHash: specHash(spec) } };
    expect(commandKind.diff(ran, undefined)).toEqual([]);
    const reordered = { ...ran, spec: { env: { A: '1', B: '2' }, run: 'systemctl daemon-reload' } };
    expect(commandKind.diff(reordered, undefined)).toEqual([]);
    const edited = { ...ran, spec: { ...spec, run: 'systemctl daemon-reexec' } };
    expect(commandKind.diff(edited, undefined)).toMatchObject([{ path: '/run', note: 'spec changed since last run' }]);
    expect(commandKind.safeToRetryAfterCrash?.(r)).toBe(false);
  });

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
  });

  it('canonical JSON keeps the bytes of stored hashes: integer-like keys by code unit, __proto__ kept', () => {
    // Both are valid in specs (BIOS attribute names, env names); a changed hash would re-run a Command.
    expect(canonicalJson({ bios: { '9': 1, '10': 2, A: 3 } })).toBe('{"bios":{"10":2,"9":1,"A":3}}');
    expect(canonicalJson(JSON.parse('{"env":{"__proto__":"x","B":"y"}}'))).toBe('{"env":{"B":"y","__proto__":"x"}}');
    expect(specHash({ run: 'true' })).toBe('98dc0d61f34692d1b2b36b24bf272cbcc95c4f81aa817a971f6b700d6857c9cf');
  });

  it('env and cwd are single-quoted for the shell', () => {
    expect(shellLine({ run: 'x', env: { V: "it's" }, cwd: '/a b' }, 'make')).toBe(`export V='it'\\''s'; cd '/a b' || exit 1; make`);
    expect(() => shellLine({ run: 'x', env: { 'A;rm': 'v' } }, 'make')).toThrow(/not a valid shell variable/);
  });
});
