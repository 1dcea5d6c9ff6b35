/**
 * The bad-input corpus: every case under fixtures/repos/bad/cases is layered on
 * the valid base repo and must (1) make `plumb validate` exit 1 with the expected
 * file:line:col diagnostic and no stack trace, and (2) be rejected by an engine
 * pass that already converged the base, writing nothing and deleting nothing.
 *
 * The engine runs the real ssh kinds' schemas and fileRefs (so it validates the
 * very same bytes the CLI does) on fake devices: `sshKindsOnFakeDevices` swaps
 * only the session and read/apply/remove for in-memory ones that count writes.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sshProvider } from '../../providers/ssh/index.js';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import type { Change, KindHandler, Provider, Resource, Session } from '../../src/provider.js';
import { type FakeDevice, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORPUS = join(ROOT, 'fixtures/repos/bad');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const META_FILES = new Set(['expect.json', 'remove.txt', 'setup.json']);
const STACK_TRACE = /\n\s+at .+\(.+:\d+:\d+\)/;

interface ExpectedDiagnostic {
  file: string;
  line: number;
  col: number;
  /** A substring of the message. */
  contains: string;
}

interface Expectation {
  /** The first diagnostics of a full load (`plumb validate`), in order. */
  diagnostics: ExpectedDiagnostic[];
  /** Text (an inline secret) that must appear in no output, no diagnostic and no row of the state. */
  mustNotContain?: string[];
}

interface Setup {
  symlink?: { path: string; target: string };
  submodule?: string;
  oversized?: { path: string; bytes: number };
}

interface Case {
  name: string;
  dir: string;
  expect: Expectation;
  setup: Setup;
  remove: string[];
}

function readCases(): Case[] {
  const casesDir = join(CORPUS, 'cases');
  return readdirSync(casesDir)
    .filter((name) => statSync(join(casesDir, name)).isDirectory())
    .sort()
    .map((name) => {
      const dir = join(casesDir, name);
      const optional = (file: string): string | undefined => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : undefined);
      const expectText = optional('expect.json');
      if (!expectText) throw new Error(`corpus case ${name} has no expect.json`);
      return {
        name,
        dir,
        expect: JSON.parse(expectText) as Expectation,
        setup: JSON.parse(optional('setup.json') ?? '{}') as Setup,
        remove: (optional('remove.txt') ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== ''),
      };
    });
}

const cases = readCases();

/** Every file of a case folder except its meta files, as repo-relative paths. */
function caseFiles(dir: string, sub = ''): string[] {
  return readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((entry) => {
    const path = sub === '' ? entry.name : `${sub}/${entry.name}`;
    if (entry.isDirectory()) return caseFiles(dir, path);
    return sub === '' && META_FILES.has(entry.name) ? [] : [path];
  });
}

/** Checks out `base` (detached), layers the case on it and commits; returns the commit. */
function commitCase(repo: TempRepo, base: string, c: Case): string {
  repo.git('checkout', '-q', '--detach', '--force', base);
  repo.git('clean', '-q', '-f', '-d', '-x');
  for (const file of caseFiles(c.dir)) repo.write(file, readFileSync(join(c.dir, file)));
  for (const file of c.remove) unlinkSync(join(repo.dir, file));
  if (c.setup.symlink) repo.symlink(c.setup.symlink.path, c.setup.symlink.target);
  if (c.setup.oversized) {
    const line = '# padding, to make this file larger than the limit\n';
    repo.write(c.setup.oversized.path, line.repeat(Math.ceil(c.setup.oversized.bytes / line.length)).slice(0, c.setup.oversized.bytes));
  }
  repo.git('add', '-A');
  // A gitlink can't be a file of the case: stage one pointing at a commit that exists.
  if (c.setup.submodule) repo.git('update-index', '--add', '--cacheinfo', `160000,${base},${c.setup.submodule}`);
  repo.git('commit', '-q', '--no-verify', '--allow-empty', '-m', c.name);
  return repo.head();
}

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function runValidate(repoDir: string, rev: string): Promise<CliRun> {
  // A bare environment: no PLUMB_CONFIG or PLUMB_DEBUG from the developer's shell.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8' };
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'validate', '--repo', repoDir, '--rev', rev], { env, timeout: 30_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function formatted(d: ExpectedDiagnostic): string {
  return `${d.file}:${d.line}:${d.col}: `;
}

/** Fails loudly when dist/ is missing or older than the sources the CLI runs. */
function assertFreshBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} is missing: run \`npm run build\` first (npm test does)`);
  const stale: string[] = [];
  for (const folder of ['src/load', 'src/source', 'src/cli']) {
    // (a declaration file, such as src/load/mustache.d.ts, builds to nothing)
    for (const file of readdirSync(join(ROOT, folder)).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
      const built = join(ROOT, 'dist', folder, file.replace(/\.ts$/, '.js'));
      if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(ROOT, folder, file)).mtimeMs) stale.push(`${folder}/${file}`);
    }
  }
  if (stale.length > 0) throw new Error(`dist/ is older than ${stale.join(', ')}: run \`npm run build\` first (npm test does)`);
}

// ---- the ssh kinds on fake devices --------------------------------------------

interface Stored {
  value: string;
}

class DeviceSession implements Session {
  alive = true;
  constructor(readonly device: FakeDevice) {}
  async close(): Promise<void> {
    this.alive = false;
  }
}

/** What a resource would put on its device: its spec and the blob ids of its attachments. */
function fingerprint(r: Resource): string {
  return JSON.stringify({ spec: r.spec, blobs: Object.fromEntries(Object.entries(r.attachments).map(([k, a]) => [k, a.oid])) });
}

/**
 * The real ssh provider's kinds (schemas, fileRefs, templates) and Target schema, converged
 * on FakeWorld devices (one per target name) instead of SSH hosts.
 */
function sshKindsOnFakeDevices(world: FakeWorld): Provider<DeviceSession> {
  const kinds = sshProvider.kinds.map(
    (k): KindHandler<unknown, Stored, DeviceSession> => ({
      kind: k.kind,
      schema: k.schema,
      ...(k.fileRefs ? { fileRefs: k.fileRefs } : {}),
      ...(k.template ? { template: k.template } : {}),
      ...(k.normalize ? { normalize: k.normalize.bind(k) } : {}),
      claims: k.claims!.bind(k),
      async read(s, r) {
        s.device.reads++;
        world.calls.push(`read ${r.id}`);
        return s.device.items.get(r.id);
      },
      diff(r, actual): Change[] {
        const want = fingerprint(r);
        return actual?.value === want ? [] : [{ path: '', before: actual?.value ?? null, after: want }];
      },
      async apply(s, r) {
        s.device.writes++;
        world.calls.push(`apply ${r.id}`);
        s.device.items.set(r.id, { value: fingerprint(r) });
      },
      async remove(s, r) {
        world.calls.push(`remove ${r.id}`);
        if (s.device.items.delete(r.id)) s.device.writes++;
      },
    }),
  );
  return {
    name: sshProvider.name,
    targetSchema: sshProvider.targetSchema,
    kinds,
    async open(target) {
      const device = world.device(target.name);
      device.opens++;
      return new DeviceSession(device);
    },
  };
}

function snapshot(world: FakeWorld): Record<string, Record<string, string>> {
  return Object.fromEntries([...world.devices].map(([name, d]) => [name, Object.fromEntries([...d.items].map(([id, item]) => [id, item.value]))]));
}

// ---- the corpus ----------------------------------------------------------------

describe('bad-input corpus', () => {
  let repo: TempRepo;
  let base: string;
  const commits = new Map<string, string>();
  const cli = new Map<string, CliRun>();

  let world: FakeWorld;
  let engine: Engine | undefined;
  let stateDir: string;
  let baseWrites = 0;
  let baseDevices: ReturnType<typeof snapshot>;
  const stateDirs: string[] = [];

  /** A fresh engine that converged the base commit (again, if a previous case polluted the last one). */
  const convergeBase = async (): Promise<void> => {
    await engine?.close();
    world = new FakeWorld();
    stateDir = tempDir('plumb-corpus-state-');
    stateDirs.push(stateDir);
    repo.git('update-ref', 'refs/heads/main', base);
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir, branch: 'main' }, stateDir, run: { maxAttempts: 1, backoff: '10ms', maxBackoff: '10ms' } }),
      providers: [sshKindsOnFakeDevices(world) as unknown as Provider],
      log: silentLog,
      env: {},
    });
    const report = await engine.pass();
    expect(report.rejected, 'the base repo must be valid').toBeUndefined();
    expect(report.converged).toBe(true);
    baseWrites = world.totalWrites;
    baseDevices = snapshot(world);
  };

  beforeAll(async () => {
    assertFreshBuild();
    repo = new TempRepo('plumb-corpus-');
    cpSync(join(CORPUS, 'base'), repo.dir, { recursive: true });
    base = repo.commit('base');
    for (const c of cases) commits.set(c.name, commitCase(repo, base, c));
    repo.git('checkout', '-q', '--force', 'main'); // main is still the base; `validate --repo` wants a branch
    repo.git('clean', '-q', '-f', '-d', '-x');
    const runs = await mapLimit(cases, 4, (c) => runValidate(repo.dir, commits.get(c.name)!));
    cases.forEach((c, i) => cli.set(c.name, runs[i]!));
    await convergeBase();
  });

  afterAll(async () => {
    await engine?.close();
    repo?.cleanup();
    for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
  });

  test('the corpus has at least 30 cases, each with an expected diagnostic', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    for (const c of cases) expect(c.expect.diagnostics.length, c.name).toBeGreaterThan(0);
  });

  test('the base repo alone validates (exit 0)', async () => {
    const run = await runValidate(repo.dir, base);
    expect(run.stderr).toContain('valid (6 resources in 3 files)');
    expect(run.code).toBe(0);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s: plumb validate exits 1 with file:line:col, no stack trace', (name, c) => {
    const run = cli.get(name)!;
    const output = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    expect(run.code, `${name}: validate should exit 1 (did the case validate?)\n${output}`).toBe(1);
    expect(`${run.stdout}\n${run.stderr}`, `${name}: stack trace in the output\n${output}`).not.toMatch(STACK_TRACE);
    expect(run.stderr, `${name}: internal error\n${output}`).not.toMatch(/internal error/i);
    expect(run.stderr).toContain('nothing from this commit would be applied');
    const lines = run.stdout.split('\n').filter((l) => l !== '');
    c.expect.diagnostics.forEach((want, i) => {
      const line = lines[i] ?? '';
      expect(line.startsWith(formatted(want)) && line.includes(want.contains), `${name}: diagnostic #${i + 1} should be ${formatted(want)}...${want.contains}...\n${output}`).toBe(true);
    });
    // Every line is a diagnostic with an address.
    for (const line of lines) expect(line, name).toMatch(/^[^:\n]+:\d+:\d+: /);
    for (const secret of c.expect.mustNotContain ?? []) expect(`${run.stdout}${run.stderr}`, `${name}: leaks ${secret}`).not.toContain(secret);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s: the engine rejects it on top of the converged base, writing and deleting nothing', async (name, c) => {
    if (engine!.store.source().acceptedCommit !== base) await convergeBase();
    const bad = commits.get(name)!;
    repo.git('update-ref', 'refs/heads/main', bad);
    world.calls.length = 0;

    const report = await engine!.pass();

    expect(report.rejected?.commit, `${name}: the engine accepted the bad commit`).toBe(bad);
    expect(report.plan?.ops ?? [], name).toEqual([]);
    expect(report.run?.results ?? [], name).toEqual([]);
    expect(world.calls.filter((call) => !call.startsWith('read')), name).toEqual([]);
    expect(world.totalWrites, name).toBe(baseWrites);
    expect(snapshot(world), name).toEqual(baseDevices);
    expect(engine!.store.tombstones(), name).toEqual([]);
    const source = engine!.store.source();
    expect(source.acceptedCommit, name).toBe(base);
    expect(source.rejectedCommit, name).toBe(bad);
    const want = c.expect.diagnostics[0]!; // the daemon reports exactly what `plumb validate` does
    expect(source.diagnostics[0], `${name}: first diagnostic of the rejected commit`).toMatchObject({
      file: want.file,
      line: want.line,
      col: want.col,
      message: expect.stringContaining(want.contains),
    });
    expect(report.rejected?.diagnostics[0], name).toMatchObject({ file: want.file, line: want.line, col: want.col });
    const recorded = JSON.stringify({ source, events: engine!.store.events({}) });
    for (const secret of c.expect.mustNotContain ?? []) expect(recorded, `${name}: the state records ${secret}`).not.toContain(secret);
  });
});
