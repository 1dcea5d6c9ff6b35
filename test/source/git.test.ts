import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { GitError, RevisionError } from '../../src/errors.js';
import { GitMirror, GitObjects, gitEnv, MODE_SUBMODULE, MODE_SYMLINK, type FileChange } from '../../src/source/git.js';
import { redactUrl } from '../../src/source/remote.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

const bareGit = (dir: string, ...args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

describe('GitMirror', () => {
  let repo: TempRepo;
  let dir: string;
  let mirror: GitMirror;

  const open = (options: { url?: string; branch?: string; path?: string } = {}): GitMirror =>
    new GitMirror({ url: options.url ?? repo.dir, branch: options.branch ?? 'main', path: options.path ?? '', mirrorDir: join(dir, 'mirror.git'), env: process.env, timeoutMs: 30_000 });

  beforeEach(() => {
    repo = new TempRepo();
    dir = tempDir('plumb-mirror-');
    repo.write('a.yaml', 'a: 1\n');
    repo.commit('A');
    mirror = open();
  });

  afterEach(() => {
    mirror.close();
    repo.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the first fetch clones a bare mirror (no working tree) and returns the branch head', async () => {
    expect(await mirror.fetch()).toBe(repo.head());
    expect(bareGit(mirror.mirrorDir, 'rev-parse', '--is-bare-repository')).toBe('true');
    expect(existsSync(join(mirror.mirrorDir, 'a.yaml'))).toBe(false);
    expect(readdirSync(dir)).toEqual(['mirror.git']); // no .partial left behind
    expect(await mirror.head()).toBe(repo.head());
  });

  test('later fetches pick up new commits; concurrent calls share one fetch', async () => {
    await mirror.fetch();
    repo.write('b.yaml', 'b: 1\n');
    const b = repo.commit('B');
    const [x, y] = await Promise.all([mirror.fetch(), mirror.fetch()]);
    expect(x).toBe(b);
    expect(y).toBe(b);
    expect((await mirror.objects.listTree(b, '')).map((e) => e.path)).toEqual(['a.yaml', 'b.yaml']);
  });

  test('a force-push (rewritten history) still resolves the new head; the pinned old commit stays readable', async () => {
    repo.write('b.yaml', 'b: 1\n');
    const old = repo.commit('B');
    await mirror.fetch();
    await mirror.pin(old);

    repo.git('reset', '-q', '--hard', 'HEAD~1');
    repo.write('c.yaml', 'c: 1\n');
    const rewritten = repo.commit('C instead of B');
    expect(await mirror.fetch()).toBe(rewritten);
    expect(await mirror.objects.isAncestor(old, rewritten)).toBe(false);
    expect(await mirror.objects.hasCommit(old)).toBe(true);
    bareGit(mirror.mirrorDir, 'gc', '--quiet', '--prune=now');
    expect(await mirror.objects.hasCommit(old)).toBe(true); // refs/plumb/accepted keeps it
    expect((await mirror.objects.diff(old, rewritten, '')).map((c) => [c.status, c.oldPath ?? c.newPath])).toEqual([
      ['D', 'b.yaml'],
      ['A', 'c.yaml'],
    ]);
  });

  test('a missing branch is a RevisionError naming it; an unreachable remote a GitError', async () => {
    mirror.close();
    mirror = open({ branch: 'does-not-exist' });
    // A fresh clone already holds every branch (no fetch after it): the branch is named as missing.
    await expect(mirror.fetch()).rejects.toThrow(RevisionError);
    await expect(mirror.head()).rejects.toThrow(/branch "does-not-exist" does not exist/);
    // An existing mirror fetches the branch, and git refuses the refspec.
    await expect(mirror.fetch()).rejects.toBeInstanceOf(GitError);
    mirror.close();
    rmSync(join(dir, 'mirror.git'), { recursive: true, force: true });
    mirror = open({ url: join(dir, 'nowhere') });
    await expect(mirror.fetch()).rejects.toThrow(/cloning .*nowhere failed/);
    expect(existsSync(join(dir, 'mirror.git'))).toBe(false);
    expect(existsSync(join(dir, 'mirror.git.partial'))).toBe(false);
    await expect(open().head()).rejects.toBeInstanceOf(RevisionError);
  });

  test('the constructor checks url, branch and path', () => {
    expect(() => open({ url: 'ext::sh -c touch% /tmp/pwned' })).toThrow(/remote helper/);
    expect(() => open({ branch: '--upload-pack=x' })).toThrow(/not a valid branch/);
    expect(() => open({ path: '../elsewhere' })).toThrow(/relative folder/);
    expect(open({ path: './envs/prod/' }).scope).toBe('envs/prod');
  });

  test('ext:: is refused by git itself even if a crafted remote got past checkRemote and the config allows it', async () => {
    await mirror.fetch();
    const marker = join(dir, 'pwned');
    // What an attacker would need: the mirror's origin rewritten to ext::, and ext allowed by git config.
    bareGit(mirror.mirrorDir, 'config', 'remote.origin.url', `ext::sh -c touch% ${marker}`);
    bareGit(mirror.mirrorDir, 'config', 'protocol.ext.allow', 'always');
    await expect(mirror.fetch()).rejects.toThrow(/transport 'ext' not allowed/);
    expect(existsSync(marker)).toBe(false);

    // Control: the same fetch without GIT_ALLOW_PROTOCOL does run the command, so the guard above is what stopped it.
    const { GIT_ALLOW_PROTOCOL: _unset, ...unguarded } = gitEnv(process.env);
    try {
      execFileSync('git', ['fetch', '--quiet', 'origin'], { cwd: mirror.mirrorDir, env: unguarded, stdio: 'ignore' });
    } catch {
      // the helper "fails" (touch speaks no git protocol), but it ran
    }
    expect(existsSync(marker)).toBe(true);
  });

  test('git children get a minimal environment with the protocol guard', () => {
    const env = gitEnv({ PATH: '/bin', HOME: '/home/x', GIT_SSH_COMMAND: 'evil', GIT_CONFIG_GLOBAL: '/tmp/x', GIT_DIR: '/tmp/y', SECRET_TOKEN: 'abc' });
    expect(env).toEqual({ PATH: '/bin', HOME: '/home/x', GIT_ALLOW_PROTOCOL: 'file:https:http:ssh:git', GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' });
  });

  test('credentials in a URL are kept out of messages', () => {
    expect(redactUrl('https://user:pa55@example.com/repo.git')).toBe('https://***@example.com/repo.git');
    expect(redactUrl('/srv/repo.git')).toBe('/srv/repo.git');
  });
});

describe('GitObjects', () => {
  let repo: TempRepo;
  let objects: GitObjects;

  beforeEach(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
  });

  afterEach(() => {
    objects.close();
    repo.cleanup();
  });

  test('listTree gives modes, types and sizes, symlinks and submodules included, limited to the scope', async () => {
    repo.write('top.yaml', 'x: 1\n');
    repo.write('envs/prod/a.yaml', 'abc\n');
    repo.write('envs/prod/with space ü.yaml', 'é\n');
    repo.write('envs/dev/b.yaml', 'b\n');
    repo.symlink('envs/prod/link.yaml', '../dev/b.yaml');
    const first = repo.commit('files');
    repo.git('update-index', '--add', '--cacheinfo', `160000,${first},envs/prod/vendor`);
    repo.git('commit', '-q', '-m', 'submodule');
    const commit = repo.head();

    const all = await objects.listTree(commit, '');
    expect(all.map((e) => e.path)).toEqual(['envs/dev/b.yaml', 'envs/prod/a.yaml', 'envs/prod/link.yaml', 'envs/prod/vendor', 'envs/prod/with space ü.yaml', 'top.yaml']);
    const byPath = new Map(all.map((e) => [e.path, e]));
    expect(byPath.get('envs/prod/a.yaml')).toMatchObject({ mode: '100644', type: 'blob', size: 4 });
    expect(byPath.get('envs/prod/with space ü.yaml')).toMatchObject({ mode: '100644', type: 'blob', size: 3 });
    expect(byPath.get('envs/prod/link.yaml')).toMatchObject({ mode: MODE_SYMLINK, type: 'blob', size: '../dev/b.yaml'.length });
    expect(byPath.get('envs/prod/vendor')).toMatchObject({ mode: MODE_SUBMODULE, type: 'commit', oid: first, size: 0 });

    expect((await objects.listTree(commit, 'envs/prod')).map((e) => e.path)).toEqual(['envs/prod/a.yaml', 'envs/prod/link.yaml', 'envs/prod/vendor', 'envs/prod/with space ü.yaml']);
    expect(await objects.listTree(commit, 'envs/none')).toEqual([]);
  });

  test('diff parses A, M, D, R (with -M), T and odd paths (spaces, tabs, newlines, unicode) from -z output', async () => {
    const body = (n: number): string => `line ${n}\n`.repeat(20);
    repo.write('modify.yaml', 'a: 1\n');
    repo.write('delete.yaml', 'd: 1\n');
    repo.write('rename me.yaml', body(1));
    repo.write('type.yaml', 't: 1\n');
    repo.write('exec.sh', '#!/bin/sh\n');
    const from = repo.commit('before');

    repo.write('modify.yaml', 'a: 2\n');
    repo.remove('delete.yaml');
    repo.move('rename me.yaml', 'dir/tab\there/new\nline ü.yaml');
    repo.remove('type.yaml');
    repo.symlink('type.yaml', 'modify.yaml');
    repo.write('added "quoted" \\ back.yaml', 'n: 1\n');
    repo.git('update-index', '--chmod=+x', 'exec.sh');
    repo.git('add', '-A');
    repo.git('update-index', '--chmod=+x', 'exec.sh');
    repo.git('commit', '-q', '-m', 'after');
    const to = repo.head();

    const changes = await objects.diff(from, to, '');
    const brief = (c: FileChange): [string, string | undefined, string | undefined, string, string] => [c.status, c.oldPath, c.newPath, c.oldMode, c.newMode];
    expect(changes.map(brief)).toEqual([
      ['A', undefined, 'added "quoted" \\ back.yaml', '000000', '100644'],
      ['D', 'delete.yaml', undefined, '100644', '000000'],
      ['R', 'rename me.yaml', 'dir/tab\there/new\nline ü.yaml', '100644', '100644'], // sorted by new path
      ['M', 'exec.sh', 'exec.sh', '100644', '100755'],
      ['M', 'modify.yaml', 'modify.yaml', '100644', '100644'],
      ['T', 'type.yaml', 'type.yaml', '100644', MODE_SYMLINK],
    ]);
    const byStatus = new Map(changes.map((c) => [c.status + (c.newPath ?? c.oldPath), c]));
    expect(byStatus.get('Ddelete.yaml')).toMatchObject({ newOid: '' });
    expect(byStatus.get('Aadded "quoted" \\ back.yaml')).toMatchObject({ oldOid: '' });
    const renamed = changes.find((c) => c.status === 'R')!;
    expect(renamed.oldOid).toBe(renamed.newOid);
    expect(renamed.newOid).toMatch(/^[0-9a-f]{40}$/);

    // Scoped, and empty when nothing changed.
    expect((await objects.diff(from, to, 'dir')).map(brief)).toEqual([['A', undefined, 'dir/tab\there/new\nline ü.yaml', '000000', '100644']]);
    expect(await objects.diff(to, to, '')).toEqual([]);
    await expect(objects.diff('0'.repeat(40), to, '')).rejects.toBeInstanceOf(GitError);
  });

  test('the cat-file reader answers 200 concurrent reads correctly, large blobs included', async () => {
    const contents = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const size = i % 50 === 0 ? 300_000 + i : i * 37;
      const text = `file ${i}\n${'x'.repeat(size)}\n`;
      contents.set(`f/${String(i).padStart(3, '0')}.txt`, text);
      repo.write(`f/${String(i).padStart(3, '0')}.txt`, text);
    }
    const commit = repo.commit('many');
    const entries = await objects.listTree(commit, 'f');
    expect(entries).toHaveLength(200);

    const reads = entries.map(async (e) => [e.path, (await objects.readBlob(e.oid)).toString('utf8')] as const);
    const infos = entries.map((e) => objects.pathInfo(commit, e.path));
    const missing = Array.from({ length: 20 }, (_, i) => objects.pathInfo(commit, `f/missing-${i}.txt`));
    const [got, gotInfos, gotMissing] = await Promise.all([Promise.all(reads), Promise.all(infos), Promise.all(missing)]);
    for (const [path, text] of got) expect(text === contents.get(path), path).toBe(true);
    gotInfos.forEach((info, i) => expect(info).toEqual({ oid: entries[i]!.oid, type: 'blob', size: entries[i]!.size }));
    expect(gotMissing.every((m) => m === undefined)).toBe(true);

    // Closing kills the process; the next call starts a new one.
    objects.close();
    expect((await objects.readBlob(entries[1]!.oid)).toString('utf8')).toBe(contents.get(entries[1]!.path));
  });

  test('missing objects and bad names are reported, never hang', async () => {
    repo.write('a.yaml', 'a\n');
    const commit = repo.commit('A');
    await expect(objects.readBlob('0123456789012345678901234567890123456789')).rejects.toThrow(/missing/);
    expect(await objects.pathInfo(commit, 'nope.yaml')).toBeUndefined();
    await expect(objects.resolveCommit('no-such-branch')).rejects.toBeInstanceOf(RevisionError);
    await expect(objects.resolveCommit('--output=/tmp/x')).rejects.toBeInstanceOf(RevisionError);
    await expect(objects.resolveCommit('HEAD\nHEAD')).rejects.toBeInstanceOf(RevisionError);
    expect(await objects.resolveCommit('HEAD')).toBe(commit);
    expect(await objects.resolveCommit(commit.slice(0, 12))).toBe(commit);
    expect(await objects.hasCommit('0'.repeat(40))).toBe(false);
    // A blob id is not a commit.
    const blob = (await objects.pathInfo(commit, 'a.yaml'))!.oid;
    await expect(objects.resolveCommit(blob)).rejects.toBeInstanceOf(RevisionError);
    expect(await objects.readBlob(blob)).toEqual(Buffer.from('a\n'));
  });

  test('pathInfo finds files whose names contain line breaks (cat-file cannot be asked for them)', async () => {
    repo.write('odd\nname.yaml', 'x\n');
    const commit = repo.commit('odd');
    expect(await objects.pathInfo(commit, 'odd\nname.yaml')).toMatchObject({ type: 'blob', size: 2 });
    expect(await objects.pathInfo(commit, 'odd\nmissing.yaml')).toBeUndefined();
  });

  test('a git directory that is not a repository fails with a GitError', async () => {
    const empty = tempDir('plumb-empty-');
    const broken = new GitObjects(empty, { env: process.env });
    try {
      await expect(broken.readBlob('0123456789012345678901234567890123456789')).rejects.toBeInstanceOf(GitError);
      await expect(broken.listTree('HEAD', '')).rejects.toBeInstanceOf(GitError);
    } finally {
      broken.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
