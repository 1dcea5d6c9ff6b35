import { posix } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isConfigFile, loadDelta, loadFull, resolveRepoPath, type LoadOptions } from '../../src/load/loader.js';
import { SchemaRegistry } from '../../src/load/schemas.js';
import type { DesiredSet, Diagnostic } from '../../src/load/types.js';
import { GitObjects } from '../../src/source/git.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { TempRepo } from '../helpers/git-repo.js';
import { blobProvider } from './blob-provider.js';

const registry = new SchemaRegistry([fakeProvider(new FakeWorld()), blobProvider()]);

const target = (name: string, provider = 'fake'): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: ${provider}, address: ${name} }\n`;
const item = (name: string, on: string, value: string, meta = ''): string => `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${name}, target: ${on}${meta} }\nspec: { value: "${value}" }\n`;
const blob = (name: string, on: string, source: string, meta = ''): string => `apiVersion: plumb/v1\nkind: blob.File\nmetadata: { name: ${name}, target: ${on}${meta} }\nspec: { source: "${source}" }\n`;
const docs = (...parts: string[]): string => parts.join('---\n');

/** A desired set as plain, order-independent data, so a delta-applied set and a full load can be compared. */
function normalize(set: DesiredSet): unknown {
  const sortedIndex = (index: Map<string, Iterable<string>>): Array<[string, string[]]> =>
    [...index].map(([k, v]): [string, string[]] => [k, [...v].sort()]).sort(([a], [b]) => a.localeCompare(b));
  return {
    commit: set.commit,
    resources: [...set.resources.values()]
      .map((r) => ({
        id: r.id,
        kind: r.kind,
        name: r.name,
        file: r.file,
        line: r.line,
        col: r.col,
        specHash: r.specHash,
        spec: r.spec,
        meta: r.meta,
        attachments: Object.fromEntries(Object.entries(r.attachments).map(([k, a]) => [k, { path: a.path, oid: a.oid, size: a.size }])),
      }))
      .sort((a, b) => a.id.localeCompare(b.id)),
    byFile: sortedIndex(set.byFile),
    byAttachment: sortedIndex(set.byAttachment),
    dependents: sortedIndex(set.dependents),
    byTarget: sortedIndex(set.byTarget),
    claims: set.claims.describe(),
  };
}

const brief = (diagnostics: Diagnostic[]): string[] => diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);

describe('loader', () => {
  let repo: TempRepo;
  let objects: GitObjects;
  const options = (scope = ''): LoadOptions => ({ objects, registry, scope });

  const full = async (commit: string, scope = ''): Promise<DesiredSet> => {
    const loaded = await loadFull(commit, options(scope));
    expect(brief(loaded.diagnostics), `full load of ${commit.slice(0, 8)}`).toEqual([]);
    return loaded.set;
  };

  beforeEach(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
  });

  afterEach(() => {
    objects.close();
    repo.cleanup();
  });

  test('a full load indexes resources by file, attachment, dependency and target; empty documents are skipped', async () => {
    repo.write('targets.yaml', docs(target('t1'), target('b1', 'blob')));
    repo.write('items.yaml', `---\n# leading empty document\n---\n${docs(item('a', 't1', 'A'), item('b', 't1', 'B', ', dependsOn: [fake.Item/a]'))}---\n`);
    repo.write('app/files.yaml', blob('conf', 'b1', 'data/app.conf', ', dependsOn: [fake.Item/a]'));
    repo.write('app/data/app.conf', 'x = 1\n');
    repo.write('README.md', '# not config\n');
    const commit = repo.commit();
    const loaded = await loadFull(commit, options());
    expect(loaded.diagnostics).toEqual([]);
    expect(loaded.filesRead).toBe(3);
    const set = loaded.set;
    expect([...set.resources.keys()].sort()).toEqual(['Target/b1', 'Target/t1', 'blob.File/conf', 'fake.Item/a', 'fake.Item/b']);
    expect(set.resources.get('fake.Item/b')).toMatchObject({ file: 'items.yaml', line: 9, col: 1, meta: { dependsOn: ['fake.Item/a'], deletionPolicy: 'Delete', drift: 'remediate' } });
    expect(set.byFile.get('items.yaml')).toEqual(['fake.Item/a', 'fake.Item/b']);
    expect(set.byAttachment.get('app/data/app.conf')).toEqual(['blob.File/conf']);
    expect([...set.dependents.get('fake.Item/a')!].sort()).toEqual(['blob.File/conf', 'fake.Item/b']);
    expect([...set.byTarget.get('t1')!]).toEqual(['fake.Item/a', 'fake.Item/b']);
    const conf = set.resources.get('blob.File/conf')!;
    expect(conf.attachments['/source']).toMatchObject({ path: 'app/data/app.conf', size: 6 });
    expect((await conf.attachments['/source']!.read()).toString()).toBe('x = 1\n');
  });

  test('full load and delta load agree after every commit of a random-ish history', async () => {
    const history = new RandomHistory(repo, 20240531);
    let prev = await full(history.commit());
    for (let step = 0; step < 36; step++) {
      const what = history.step();
      const commit = history.commit();
      const delta = await loadDelta(prev, commit, options());
      expect(brief(delta.diagnostics), `step ${step} (${what})`).toEqual([]);
      prev = delta.apply();
      const fresh = await full(commit);
      expect(normalize(prev), `step ${step} (${what})`).toEqual(normalize(fresh));
    }
    expect(history.kinds).toEqual(new Set(['add', 'edit', 'move doc', 'rename file', 'delete', 'attachment', 'depend', 'undepend', 'resource', 'reorder']));
  });

  test('a renamed file is a rename (git -M): same ids and spec hashes, new file, nothing else read', async () => {
    repo.write('targets.yaml', target('t1'));
    repo.write('old name.yaml', docs(item('a', 't1', 'A'), item('b', 't1', 'B')));
    const first = repo.commit();
    const prev = await full(first);
    const hashes = new Map([...prev.resources].map(([id, r]) => [id, r.specHash]));
    repo.move('old name.yaml', 'moved/new name.yaml');
    const second = repo.commit();

    const delta = await loadDelta(prev, second, options());
    expect(delta.changes).toMatchObject([{ status: 'R', oldPath: 'old name.yaml', newPath: 'moved/new name.yaml' }]);
    expect(delta.filesRead).toBe(1);
    expect([...delta.removed].sort()).toEqual(['fake.Item/a', 'fake.Item/b']);
    expect([...delta.added.keys()].sort()).toEqual(['fake.Item/a', 'fake.Item/b']);
    for (const [id, r] of delta.added) expect(r.specHash, id).toBe(hashes.get(id));
    const set = delta.apply();
    expect(set.byFile.has('old name.yaml')).toBe(false);
    expect(set.byFile.get('moved/new name.yaml')).toEqual(['fake.Item/a', 'fake.Item/b']);
    expect(normalize(set)).toEqual(normalize(await full(second)));
  });

  test('a document moved between files keeps its identity; a changed target changes its spec hash', async () => {
    repo.write('targets.yaml', docs(target('t1'), target('t2')));
    repo.write('one.yaml', docs(item('a', 't1', 'A'), item('b', 't1', 'B')));
    const prev = await full(repo.commit());
    const hashB = prev.resources.get('fake.Item/b')!.specHash;
    repo.write('one.yaml', item('a', 't2', 'A'));
    repo.write('two.yaml', `# b lives here now\n${item('b', 't1', 'B')}`);
    const commit = repo.commit();
    const delta = await loadDelta(prev, commit, options());
    expect(delta.diagnostics).toEqual([]);
    expect(delta.added.get('fake.Item/b')).toMatchObject({ file: 'two.yaml', line: 2, specHash: hashB });
    expect(delta.added.get('fake.Item/a')!.specHash).not.toBe(prev.resources.get('fake.Item/a')!.specHash);
    expect(normalize(delta.apply())).toEqual(normalize(await full(commit)));
  });

  describe('attachments', () => {
    test('resolved relative to the defining file, or to the scope root with a leading /', async () => {
      repo.write('envs/prod/targets.yaml', target('b1', 'blob'));
      repo.write(
        'envs/prod/app/files.yaml',
        docs(blob('rel', 'b1', 'conf/a.txt'), blob('root', 'b1', '/shared/b.txt'), blob('up', 'b1', '../shared/b.txt'), blob('dot', 'b1', './conf/../conf/a.txt')),
      );
      repo.write('envs/prod/app/conf/a.txt', 'a');
      repo.write('envs/prod/shared/b.txt', 'bb');
      repo.write('shared/b.txt', 'outside the scope');
      const commit = repo.commit();
      const set = await full(commit, 'envs/prod');
      const path = (id: string): string | undefined => set.resources.get(id)?.attachments['/source']?.path;
      expect(path('blob.File/rel')).toBe('envs/prod/app/conf/a.txt');
      expect(path('blob.File/root')).toBe('envs/prod/shared/b.txt');
      expect(path('blob.File/up')).toBe('envs/prod/shared/b.txt');
      expect(path('blob.File/dot')).toBe('envs/prod/app/conf/a.txt');
      expect(set.byAttachment.get('envs/prod/shared/b.txt')?.sort()).toEqual(['blob.File/root', 'blob.File/up']);
    });

    test.each([
      ['../../../shared/b.txt', 'points outside the config folder (envs/prod)'],
      ['/../shared/b.txt', 'points outside the config folder (envs/prod)'],
      ['../../../../../etc/passwd', 'points outside the config folder'],
      ['conf/missing.txt', '"conf/missing.txt" (envs/prod/app/conf/missing.txt) does not exist at this commit'],
      ['conf', 'does not exist at this commit'],
      ['link.txt', 'is a symlink'],
    ])('source %j is refused: %s', async (source, message) => {
      repo.write('envs/prod/targets.yaml', target('b1', 'blob'));
      repo.write('envs/prod/app/files.yaml', blob('x', 'b1', source));
      repo.write('envs/prod/app/conf/a.txt', 'a');
      repo.write('shared/b.txt', 'outside');
      repo.symlink('envs/prod/app/link.txt', '/etc/passwd');
      const loaded = await loadFull(repo.commit(), options('envs/prod'));
      const diagnostic = loaded.diagnostics.find((d) => d.file === 'envs/prod/app/files.yaml');
      expect(diagnostic).toMatchObject({ line: 4, col: 17, id: 'blob.File/x', message: expect.stringContaining(message) });
    });

    test('resolveRepoPath', () => {
      expect(resolveRepoPath('a/b/x.yaml', 'f.txt', '')).toBe('a/b/f.txt');
      expect(resolveRepoPath('a/b/x.yaml', '../f.txt', '')).toBe('a/f.txt');
      expect(resolveRepoPath('a/b/x.yaml', '/f.txt', '')).toBe('f.txt');
      expect(resolveRepoPath('x.yaml', './f.txt', '')).toBe('f.txt');
      expect(resolveRepoPath('x.yaml', '../f.txt', '')).toBeUndefined();
      expect(resolveRepoPath('envs/p/x.yaml', '/f.txt', 'envs/p')).toBe('envs/p/f.txt');
      expect(resolveRepoPath('envs/p/x.yaml', '../q/f.txt', 'envs/p')).toBeUndefined();
      expect(resolveRepoPath('envs/p/x.yaml', '../p2/f.txt', 'envs/p')).toBeUndefined(); // a sibling with the scope as prefix
      expect(resolveRepoPath('envs/p/x.yaml', '/../q/f.txt', 'envs/p')).toBeUndefined();
      expect(resolveRepoPath('envs/p/x.yaml', '/../p/f.txt', 'envs/p')).toBe('envs/p/f.txt'); // out and back in: harmless
      expect(resolveRepoPath('x.yaml', '//f.txt', '')).toBe('f.txt');
      expect(resolveRepoPath('x.yaml', '/', '')).toBe('.');
    });

    test('editing only an attachment re-hashes the resources that reference it, in delta mode', async () => {
      repo.write('targets.yaml', target('b1', 'blob'));
      repo.write('app/files.yaml', docs(blob('a', 'b1', 'data/shared.txt'), blob('b', 'b1', '/app/data/shared.txt'), blob('c', 'b1', 'data/other.txt')));
      repo.write('app/data/shared.txt', 'one');
      repo.write('app/data/other.txt', 'other');
      const prev = await full(repo.commit());
      const before = new Map([...prev.resources].map(([id, r]) => [id, r.specHash]));
      repo.write('app/data/shared.txt', 'two');
      const commit = repo.commit();

      const delta = await loadDelta(prev, commit, options());
      expect(delta.diagnostics).toEqual([]);
      expect(delta.filesRead).toBe(0);
      expect([...delta.added.keys()].sort()).toEqual(['blob.File/a', 'blob.File/b']);
      for (const id of ['blob.File/a', 'blob.File/b']) {
        expect(delta.added.get(id)!.specHash).not.toBe(before.get(id));
        expect((await delta.added.get(id)!.attachments['/source']!.read()).toString()).toBe('two');
      }
      const set = delta.apply();
      expect(set.resources.get('blob.File/c')!.specHash).toBe(before.get('blob.File/c'));
      expect(normalize(set)).toEqual(normalize(await full(commit)));
    });
  });

  test('the scope limits what is read; dot-folders and non-YAML files are never config', async () => {
    repo.write('envs/prod/targets.yaml', target('t1'));
    repo.write('envs/prod/items.yaml', item('a', 't1', 'A'));
    repo.write('envs/prod/.github/workflows/ci.yml', 'on: [push]\njobs: {}\n');
    repo.write('envs/prod/app/.hidden/x.yaml', 'not: [valid\n');
    repo.write('envs/prod/notes.txt', 'kind: Target\n');
    repo.write('envs/dev/broken.yaml', 'this: is: not yaml\n');
    repo.write('.github/workflows/ci.yml', 'on: [push]\n');
    repo.write('top.yaml', 'kind: Nothing\n');
    const first = repo.commit();
    const loaded = await loadFull(first, options('envs/prod'));
    expect(loaded.diagnostics).toEqual([]);
    expect(loaded.filesRead).toBe(2);
    expect([...loaded.set.resources.keys()].sort()).toEqual(['Target/t1', 'fake.Item/a']);
    // The whole repo, by contrast, has broken files.
    expect([...new Set((await loadFull(first, options(''))).diagnostics.map((d) => d.file))].sort()).toEqual(['envs/dev/broken.yaml', 'top.yaml']);

    repo.write('envs/dev/broken.yaml', 'still: broken: yes\n');
    repo.write('envs/prod/.github/workflows/ci.yml', 'on: [pull_request]\n');
    const second = repo.commit();
    const delta = await loadDelta(loaded.set, second, options('envs/prod'));
    expect(delta.changes.map((c) => c.newPath)).toEqual(['envs/prod/.github/workflows/ci.yml']);
    expect(delta.filesRead).toBe(0);
    expect(delta.diagnostics).toEqual([]);
  });

  test.each([
    ['a.yaml', true],
    ['a/b.yml', true],
    ['A.YAML', true],
    ['a.json', false],
    ['yaml', false],
    ['.a.yaml', false],
    ['.github/workflows/ci.yml', false],
    ['a/.hidden/b.yaml', false],
    ['a/..b/c.yaml', false],
    ['a.yaml.bak', false],
  ])('isConfigFile(%j) is %s', (path, expected) => {
    expect(isConfigFile(path)).toBe(expected);
  });

  describe('cross-file checks', () => {
    const base = async (): Promise<DesiredSet> => {
      repo.write('targets.yaml', docs(target('t1'), target('t2'), target('b1', 'blob')));
      repo.write('a.yaml', item('a', 't1', 'A', ', dependsOn: [fake.Item/b]'));
      repo.write('b.yaml', item('b', 't1', 'B', ', dependsOn: [fake.Item/c]'));
      repo.write('c.yaml', item('c', 't2', 'C'));
      return full(repo.commit());
    };

    /** Both loads of `commit` must refuse it; returns their diagnostics. */
    const refused = async (prev: DesiredSet, commit: string): Promise<{ delta: string[]; full: string[] }> => {
      const snapshot = normalize(prev);
      const delta = await loadDelta(prev, commit, options());
      expect(normalize(prev), 'a refused delta leaves the previous set alone').toEqual(snapshot);
      const fresh = await loadFull(commit, options());
      expect(delta.diagnostics.length, 'delta diagnostics').toBeGreaterThan(0);
      expect(fresh.diagnostics.length, 'full diagnostics').toBeGreaterThan(0);
      return { delta: brief(delta.diagnostics), full: brief(fresh.diagnostics) };
    };

    test('removing a Target still used', async () => {
      const prev = await base();
      repo.write('targets.yaml', docs(target('t1'), target('b1', 'blob')));
      const result = await refused(prev, repo.commit());
      expect(result.delta).toEqual(['c.yaml:1:1: target "t2" is removed by this commit but fake.Item/c still uses it']);
      expect(result.full).toEqual(['c.yaml:3:30: target "t2" is not defined: add a Target named t2']);
    });

    test('removing a dependency still depended on', async () => {
      const prev = await base();
      repo.remove('c.yaml');
      const result = await refused(prev, repo.commit());
      expect(result.delta).toEqual(['b.yaml:1:1: dependsOn "fake.Item/c", which this commit removes']);
      expect(result.full).toEqual(['b.yaml:3:46: dependsOn "fake.Item/c": no such resource in this commit']);
    });

    test('a cycle closed through unchanged resources', async () => {
      const prev = await base();
      repo.write('c.yaml', item('c', 't2', 'C', ', dependsOn: [fake.Item/a]'));
      const result = await refused(prev, repo.commit());
      expect(result.delta).toEqual(['c.yaml:3:46: dependsOn cycle: fake.Item/c -> fake.Item/a -> fake.Item/b -> fake.Item/c']);
      expect(result.full).toEqual(['a.yaml:3:46: dependsOn cycle: fake.Item/a -> fake.Item/b -> fake.Item/c -> fake.Item/a']);
    });

    test('a kind converged on a target of another provider', async () => {
      const prev = await base();
      repo.write('d.yaml', blob('d', 't1', 'c.yaml'));
      const result = await refused(prev, repo.commit());
      expect(result.delta).toEqual(['d.yaml:3:30: blob.File needs a target with provider "blob", but Target/t1 uses "fake"']);
      expect(result.full).toEqual(result.delta);
    });

    test('an id defined again in a new file while the old one is unchanged', async () => {
      const prev = await base();
      repo.write('z.yaml', item('a', 't1', 'again'));
      const result = await refused(prev, repo.commit());
      expect(result.delta).toEqual(['z.yaml:1:1: fake.Item/a is defined twice: here and at a.yaml:1:1']);
      expect(result.full).toEqual(result.delta);
    });

    test('previousNames naming a resource that still exists, and two resources claiming one old name', async () => {
      const prev = await base();
      repo.write('e.yaml', docs(item('e', 't1', 'E', ', previousNames: [c]'), item('f', 't1', 'F', ', previousNames: [old]'), item('g', 't1', 'G', ', previousNames: [old]')));
      const result = await refused(prev, repo.commit());
      expect(result.delta).toEqual([
        'e.yaml:3:50: previousNames lists "c", but fake.Item/c still exists; remove one of them',
        'e.yaml:13:50: fake.Item/f already claims "old" as a previous name',
      ]);
      expect(result.full).toEqual(result.delta);
    });

    test('a resource moved out of a deleted file onto another is no violation', async () => {
      const prev = await base();
      repo.remove('c.yaml');
      repo.write('b.yaml', docs(item('b', 't1', 'B', ', dependsOn: [fake.Item/c]'), item('c', 't2', 'C')));
      const commit = repo.commit();
      const delta = await loadDelta(prev, commit, options());
      expect(delta.diagnostics).toEqual([]);
      expect(normalize(delta.apply())).toEqual(normalize(await full(commit)));
    });
  });

  test('a YAML file with a line break in its name loads in both modes', async () => {
    repo.write('targets.yaml', target('t1'));
    const prev = await full(repo.commit());
    repo.write('odd\nname.yaml', item('a', 't1', 'A'));
    const commit = repo.commit();
    const delta = await loadDelta(prev, commit, options());
    expect(delta.diagnostics).toEqual([]);
    expect(delta.added.get('fake.Item/a')?.file).toBe('odd\nname.yaml');
    expect(normalize(delta.apply())).toEqual(normalize(await full(commit)));
  });
});

// ---- a random-ish but valid history -------------------------------------------

interface Doc {
  kind: 'fake.Item' | 'blob.File';
  name: string;
  target: string;
  value: string;
  dependsOn: string[];
  /** Creation order: a resource depends only on older ones, so there is never a cycle. */
  seq: number;
}

/** Commits that keep the repo valid: adds, edits, moves, renames, deletions, attachment edits, dependency changes. */
class RandomHistory {
  readonly kinds = new Set<string>();
  readonly #files = new Map<string, Doc[]>();
  readonly #attachments = new Map<string, string>();
  #seq = 0;
  #state: number;

  constructor(
    readonly repo: TempRepo,
    seed: number,
  ) {
    this.#state = seed;
    repo.write('targets.yaml', docs(target('t1'), target('t2'), target('b1', 'blob')));
    for (const name of ['data/one.txt', 'data/two.txt', 'data/sub/three.bin']) this.#writeAttachment(name);
    this.#add();
    this.#add();
  }

  commit(): string {
    return this.repo.commit();
  }

  /** One random change; returns what it was. */
  step(): string {
    const actions: Array<[string, () => boolean]> = [
      ['add', () => this.#add()],
      ['edit', () => this.#edit()],
      ['move doc', () => this.#moveDoc()],
      ['rename file', () => this.#renameFile()],
      ['delete', () => this.#delete()],
      ['attachment', () => this.#editAttachment()],
      ['depend', () => this.#depend()],
      ['undepend', () => this.#undepend()],
      ['resource', () => this.#editResourceAndAttachment()],
      ['reorder', () => this.#reorder()],
    ];
    // Cycle through every kind of change first, then pick at random.
    const untried = actions.filter(([name]) => !this.kinds.has(name));
    for (let tries = 0; tries < 50; tries++) {
      const [name, run] = untried.length > 0 && tries === 0 ? untried[0]! : actions[this.#int(actions.length)]!;
      if (run()) {
        this.kinds.add(name);
        return name;
      }
    }
    this.#add();
    return 'add';
  }

  #random(): number {
    // mulberry32: small, seeded, good enough for picking.
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  #pick<T>(items: T[]): T | undefined {
    return items.length === 0 ? undefined : items[this.#int(items.length)];
  }

  #all(): Array<{ file: string; doc: Doc }> {
    return [...this.#files].flatMap(([file, list]) => list.map((doc) => ({ file, doc })));
  }

  #id(doc: Doc): string {
    return `${doc.kind}/${doc.name}`;
  }

  #newDoc(): Doc {
    const seq = this.#seq++;
    const isBlob = this.#random() < 0.35;
    const older = this.#all().map((x) => x.doc);
    const dep = this.#random() < 0.4 ? this.#pick(older) : undefined;
    return {
      kind: isBlob ? 'blob.File' : 'fake.Item',
      name: `r${seq}`,
      target: isBlob ? 'b1' : this.#random() < 0.5 ? 't1' : 't2',
      value: isBlob ? this.#pick([...this.#attachments.keys()])! : `v${seq}`,
      dependsOn: dep ? [this.#id(dep)] : [],
      seq,
    };
  }

  #render(file: string, list: Doc[]): string {
    const parts = list.map((d) => {
      const meta = d.dependsOn.length > 0 ? `, dependsOn: [${d.dependsOn.join(', ')}]` : '';
      if (d.kind === 'fake.Item') return item(d.name, d.target, d.value, meta);
      // Half the time relative to the file, half from the config root.
      const source = d.seq % 2 === 0 ? `/${d.value}` : posix.relative(posix.dirname(file), d.value);
      return blob(d.name, d.target, source, meta);
    });
    return `# ${file}\n${parts.join(this.#random() < 0.2 ? '---\n---\n' : '---\n')}`;
  }

  #save(file: string): void {
    const list = this.#files.get(file)!;
    if (list.length === 0) {
      this.#files.delete(file);
      this.repo.remove(file);
    } else this.repo.write(file, this.#render(file, list));
  }

  #writeAttachment(path: string): void {
    const text = `${path} ${this.#int(1e9)}\n`.repeat(1 + this.#int(3));
    this.#attachments.set(path, text);
    this.repo.write(path, text);
  }

  #freshFile(): string {
    const dir = this.#pick(['', 'a/', 'a/b/', 'with space/', 'ünï/'])!;
    for (;;) {
      const file = `${dir}f${this.#int(1000)}.${this.#random() < 0.5 ? 'yaml' : 'yml'}`;
      if (!this.#files.has(file)) return file;
    }
  }

  #add(): boolean {
    const file = this.#random() < 0.5 && this.#files.size > 0 ? this.#pick([...this.#files.keys()])! : this.#freshFile();
    const list = this.#files.get(file) ?? [];
    this.#files.set(file, list);
    for (let n = 1 + this.#int(3); n > 0; n--) list.push(this.#newDoc());
    this.#save(file);
    return true;
  }

  #edit(): boolean {
    const found = this.#pick(this.#all().filter((x) => x.doc.kind === 'fake.Item'));
    if (!found) return false;
    found.doc.value = `${found.doc.value}+`;
    this.#save(found.file);
    return true;
  }

  #moveDoc(): boolean {
    const found = this.#pick(this.#all());
    if (!found) return false;
    const to = this.#random() < 0.5 ? this.#freshFile() : this.#pick([...this.#files.keys()].filter((f) => f !== found.file));
    if (!to) return false;
    const from = this.#files.get(found.file)!;
    from.splice(from.indexOf(found.doc), 1);
    const list = this.#files.get(to) ?? [];
    this.#files.set(to, list);
    list.splice(this.#int(list.length + 1), 0, found.doc);
    this.#save(found.file);
    this.#save(to);
    return true;
  }

  #renameFile(): boolean {
    // Only files without relative sources: their content must stay byte-identical for git to see a pure rename.
    const file = this.#pick([...this.#files.keys()].filter((f) => this.#files.get(f)!.every((d) => d.kind === 'fake.Item' || d.seq % 2 === 0)));
    if (!file) return false;
    const to = this.#freshFile();
    this.#files.set(to, this.#files.get(file)!);
    this.#files.delete(file);
    this.repo.move(file, to);
    return true;
  }

  #delete(): boolean {
    const dependedOn = new Set(this.#all().flatMap((x) => x.doc.dependsOn));
    const found = this.#pick(this.#all().filter((x) => !dependedOn.has(this.#id(x.doc))));
    if (!found || this.#all().length < 3) return false;
    const list = this.#files.get(found.file)!;
    list.splice(list.indexOf(found.doc), 1);
    this.#save(found.file);
    return true;
  }

  #editAttachment(): boolean {
    const used = new Set(this.#all().filter((x) => x.doc.kind === 'blob.File').map((x) => x.doc.value));
    const path = this.#pick([...this.#attachments.keys()].filter((p) => used.has(p)));
    if (!path) return false;
    this.#writeAttachment(path);
    return true;
  }

  #depend(): boolean {
    const all = this.#all();
    const found = this.#pick(all.filter((x) => all.some((y) => y.doc.seq < x.doc.seq && !x.doc.dependsOn.includes(this.#id(y.doc)))));
    if (!found) return false;
    const dep = this.#pick(all.filter((y) => y.doc.seq < found.doc.seq && !found.doc.dependsOn.includes(this.#id(y.doc))))!;
    found.doc.dependsOn.push(this.#id(dep.doc));
    this.#save(found.file);
    return true;
  }

  #undepend(): boolean {
    const found = this.#pick(this.#all().filter((x) => x.doc.dependsOn.length > 0));
    if (!found) return false;
    found.doc.dependsOn.pop();
    this.#save(found.file);
    return true;
  }

  /** The same commit edits a resource's file and the file it references. */
  #editResourceAndAttachment(): boolean {
    const found = this.#pick(this.#all().filter((x) => x.doc.kind === 'blob.File'));
    if (!found) return false;
    found.doc.value = this.#pick([...this.#attachments.keys()])!;
    this.#writeAttachment(found.doc.value);
    this.#save(found.file);
    return true;
  }

  #reorder(): boolean {
    const file = this.#pick([...this.#files.keys()].filter((f) => this.#files.get(f)!.length > 1));
    if (!file) return false;
    this.#files.get(file)!.reverse();
    this.#save(file);
    return true;
  }
}
