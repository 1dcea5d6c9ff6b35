import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { GitError } from '../../src/errors.js';
import { loadDelta, loadFull, type LoadOptions } from '../../src/load/loader.js';
import { SchemaRegistry } from '../../src/load/schemas.js';
import type { Diagnostic } from '../../src/load/types.js';
import { GitObjects, MODE_SUBMODULE, MODE_SYMLINK } from '../../src/source/git.js';
import { WORKTREE, WorktreeObjects } from '../../src/source/worktree.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { blobProvider } from '../load/blob-provider.js';

const registry = new SchemaRegistry([fakeProvider(new FakeWorld()), blobProvider()]);

const target = (name: string, provider = 'fake'): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: ${provider}, address: ${name} }\n`;
const item = (name: string, on: string, value: string): string => `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${name}, target: ${on} }\nspec: { value: "${value}" }\n`;
const blob = (name: string, on: string, source: string): string => `apiVersion: plumb/v1\nkind: blob.File\nmetadata: { name: ${name}, target: ${on} }\nspec: { source: "${source}" }\n`;
const brief = (diagnostics: Diagnostic[]): string[] => diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);

describe('WorktreeObjects: the working tree as the loader sees a commit', () => {
  let repo: TempRepo;
  let worktree: WorktreeObjects;
  const options = (scope = ''): LoadOptions => ({ objects: worktree, registry, scope });
  const ids = async (scope = ''): Promise<string[]> => {
    const loaded = await loadFull(WORKTREE, options(scope));
    expect(brief(loaded.diagnostics)).toEqual([]);
    return [...loaded.set.resources.keys()].sort();
  };

  beforeEach(async () => {
    repo = new TempRepo();
    repo.write('targets.yaml', `${target('t1')}---\n${target('b1', 'blob')}`);
    repo.write('items/a.yaml', item('a', 't1', 'A1'));
    repo.write('items/b.yaml', item('b', 't1', 'B1'));
    repo.write('files/motd.txt', 'hello\n');
    repo.write('files.yaml', blob('motd', 'b1', 'files/motd.txt'));
    repo.write('.gitignore', 'scratch*.yaml\n');
    repo.commit('A');
    worktree = (await WorktreeObjects.open(repo.dir, new GitObjects(repo.dir, { env: process.env }), { env: process.env }))!;
  });

  afterEach(() => {
    worktree.close();
    repo.cleanup();
  });

  test('a clean working tree lists exactly what its commit lists: paths, modes, sizes and blob ids as git computes them', async () => {
    repo.write('bin/run.sh', '#!/bin/sh\necho hi\n');
    chmodSync(join(repo.dir, 'bin/run.sh'), 0o755);
    repo.write('odd/star*.yaml', item('star', 't1', 'S'));
    repo.write('empty.txt', '');
    repo.symlink('link.txt', 'files/motd.txt');
    const head = repo.commit('B');
    const fresh = (await WorktreeObjects.open(repo.dir, new GitObjects(repo.dir, { env: process.env }), { env: process.env }))!;
    try {
      expect(await fresh.listTree(WORKTREE, '')).toEqual(await fresh.listTree(head, ''));
      expect(await fresh.diff(head, WORKTREE, '')).toEqual([]);
    } finally {
      fresh.close();
    }
  });

  test('an uncommitted edit that breaks a file is reported at file:line:col; the commit itself still loads', async () => {
    repo.write('items/a.yaml', 'apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: a, target: t1 }\nspec: { value: 42 }\n');
    const loaded = await loadFull(WORKTREE, options());
    expect(brief(loaded.diagnostics)).toEqual(['items/a.yaml:4:16: "value" must be a string, not number 42']);
    expect(brief((await loadFull(repo.head(), { ...options(), objects: new GitObjects(repo.dir, { env: process.env }) })).diagnostics)).toEqual([]);
  });

  test('an untracked new file is loaded, an ignored one is not, a file deleted from the working tree is gone', async () => {
    repo.write('items/c.yaml', item('c', 't1', 'C1')); // untracked, not ignored
    repo.write('scratch-notes.yaml', 'this: [is not valid'); // ignored by .gitignore
    repo.remove('items/b.yaml'); // deleted, not yet committed
    expect(await ids()).toEqual(['Target/b1', 'Target/t1', 'blob.File/motd', 'fake.Item/a', 'fake.Item/c']);
  });

  test('symlinks and submodules are refused the same way as in a commit', async () => {
    repo.symlink('items/link.yaml', 'a.yaml');
    const nested = new TempRepo();
    try {
      nested.write('x.yaml', item('x', 't1', 'X'));
      nested.commit('nested');
      rmSync(join(repo.dir, 'vendor'), { recursive: true, force: true });
      repo.git('clone', '-q', nested.dir, 'vendor');
      const entries = await worktree.listTree(WORKTREE, '');
      expect(entries.filter((e) => e.mode === MODE_SYMLINK || e.mode === MODE_SUBMODULE).map((e) => `${e.mode} ${e.path}`)).toEqual([`${MODE_SYMLINK} items/link.yaml`, `${MODE_SUBMODULE} vendor`]);
      const loaded = await loadFull(WORKTREE, options());
      expect(brief(loaded.diagnostics)).toEqual([
        'items/link.yaml:1:1: symlinks are not allowed in the config repo (they could point anywhere); commit the file itself',
        'vendor:1:1: submodules are not allowed in the config repo; vendor the files instead',
      ]);
    } finally {
      nested.cleanup();
    }
  });

  test('a file under a folder replaced by a symlink is not read through it (git calls it beyond a symbolic link)', async () => {
    const outside = tempDir('plumb-outside-');
    writeFileSync(join(outside, 'a.yaml'), 'not: [yaml');
    rmSync(join(repo.dir, 'items'), { recursive: true });
    repo.symlink('items', outside);
    const loaded = await loadFull(WORKTREE, options());
    expect(brief(loaded.diagnostics)).toEqual(['items:1:1: symlinks are not allowed in the config repo (they could point anywhere); commit the file itself']);
    expect((await worktree.listTree(WORKTREE, '')).map((e) => e.path)).not.toContain('items/a.yaml');
    rmSync(outside, { recursive: true, force: true });
  });

  test('--path scoping: only files inside the scope are listed and loaded', async () => {
    repo.write('elsewhere/broken.yaml', 'kind: [');
    repo.write('items/targets.yaml', target('t1'));
    repo.remove('targets.yaml');
    expect((await worktree.listTree(WORKTREE, 'items')).map((e) => e.path)).toEqual(['items/a.yaml', 'items/b.yaml', 'items/targets.yaml']);
    expect(await ids('items')).toEqual(['Target/t1', 'fake.Item/a', 'fake.Item/b']);
  });

  test('the delta from HEAD to the working tree is what changed, and loads like a full load of the working tree', async () => {
    const head = repo.head();
    repo.write('items/a.yaml', item('a', 't1', 'A2')); // modified
    repo.write('items/c.yaml', item('c', 't1', 'C1')); // untracked
    repo.remove('items/b.yaml'); // deleted
    repo.write('files/motd.txt', 'hello, world\n'); // an attachment edited
    const changes = await worktree.diff(head, WORKTREE, '');
    expect(changes.map((c) => `${c.status} ${c.oldPath ?? '-'} ${c.newPath ?? '-'}`).sort()).toEqual(['A - items/c.yaml', 'D items/b.yaml -', 'M files/motd.txt files/motd.txt', 'M items/a.yaml items/a.yaml']);

    const git = new GitObjects(repo.dir, { env: process.env });
    const base = await loadFull(head, { ...options(), objects: git });
    const committedMotd = base.set.resources.get('blob.File/motd')!.specHash; // apply() turns the base set into the new one
    const delta = await loadDelta(base.set, WORKTREE, options());
    expect(brief(delta.diagnostics)).toEqual([]);
    const full = await loadFull(WORKTREE, options());
    const after = delta.apply();
    expect([...after.resources.keys()].sort()).toEqual([...full.set.resources.keys()].sort());
    for (const [id, r] of full.set.resources) expect(after.resources.get(id)?.specHash, id).toBe(r.specHash);
    expect(full.set.resources.get('fake.Item/a')?.spec).toEqual({ value: 'A2' });
    const motd = full.set.resources.get('blob.File/motd')!;
    expect((await motd.attachments['/source']!.read()).toString()).toBe('hello, world\n');
    expect(motd.specHash).not.toBe(committedMotd);
    git.close();
  });

  test('a file that changes after it was listed is refused, not read as a mix of two versions', async () => {
    const loaded = await loadFull(WORKTREE, options());
    const attachment = loaded.set.resources.get('blob.File/motd')!.attachments['/source']!;
    repo.write('files/motd.txt', 'edited meanwhile\n');
    await expect(attachment.read()).rejects.toThrow(GitError);
    await expect(attachment.read()).rejects.toThrow(/files\/motd\.txt changed while Plumb was reading the working tree/);
  });

  test('a bare repository has no working tree', async () => {
    const bare = tempDir('plumb-bare-');
    repo.git('clone', '-q', '--bare', repo.dir, bare);
    const objects = new GitObjects(bare, { env: process.env });
    expect(await WorktreeObjects.open(bare, objects, { env: process.env })).toBeUndefined();
    objects.close();
    rmSync(bare, { recursive: true, force: true });
  });
});
