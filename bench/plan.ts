/**
 * bench/plan: load and plan cost at 1,000 and 10,000 resources (1,000 files,
 * 1,000 targets), and peak RSS of a real daemon holding the 10k repo.
 *
 *   npm run bench:plan            (PLUMB_BENCH_SIZES=1000,10000 by default)
 *
 * Figures: full load + validate (median of 5), one-file delta plan (median and
 * p95 of 30 commits: git diff, parse the changed file, cross-checks, recorded
 * lookups, plan, accept), each against its goal as a ratio. Goals from issue 2:
 * full load of 10k <= 2 s; one-file delta <= 50 ms, not growing with repo size;
 * daemon peak RSS with the 10k repo <= 250 MB.
 *
 * Then the CLI at 100k (issue 10): `plumb validate` and `plumb plan` (empty
 * state: all creates) on 101,000 resources (1,000 files of 1 Target + 100
 * ssh.File), each run as a child process of the built CLI (median of
 * PLUMB_BENCH_CLI_RUNS, default 3): wall time, and peak RSS from the child's own
 * process.resourceUsage().maxRSS at exit (worker threads included). Goals:
 * validate <= 3 s and <= 400 MB, plan <= 5 s. PLUMB_BENCH_CLI=0 skips it;
 * PLUMB_BENCH_SHIPPED=0 skips the one extra run with the bin's own node flags.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { builtinProviders } from '../src/daemon/providers.js';
import { loadDelta, loadFull } from '../src/load/loader.js';
import { SchemaRegistry } from '../src/load/schemas.js';
import type { DesiredSet } from '../src/load/types.js';
import { plan } from '../src/plan/planner.js';
import { deltaScope } from '../src/plan/scope.js';
import { GitObjects } from '../src/source/git.js';
import { openReadOnly, openWritable } from '../src/state/db.js';
import { Store } from '../src/state/store.js';
import { packageRoot } from '../src/util/package-root.js';

const FILES = 1000;
const root = join(packageRoot(), '.bench', 'plan');
const sizes = (process.env.PLUMB_BENCH_SIZES ?? '1000,10000').split(',').map(Number);
const DELTA_COMMITS = 30;

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }).trim();
}

function hostFile(host: number, perFile: number, revision = 0): string {
  const name = `h${String(host).padStart(4, '0')}`;
  const docs = [
    `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec:\n  provider: ssh\n  address: 127.0.0.1\n  port: 9\n  user: deploy\n  privateKey: env:PLUMB_BENCH_KEY\n  hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"\n`,
  ];
  for (let i = 0; i < perFile; i++) {
    docs.push(
      `apiVersion: plumb/v1\nkind: ssh.File\nmetadata:\n  name: ${name}-f${i}\n  target: ${name}\nspec:\n  path: /etc/plumb/f${i}.conf\n  content: "host ${name} file ${i} revision ${i === 0 ? revision : 0}\\n"\n  mode: "0644"\n  owner: root\n`,
    );
  }
  return docs.join('---\n');
}

function makeRepo(resources: number): string {
  const dir = join(root, `repo-${resources}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'hosts'), { recursive: true });
  const perFile = resources / FILES;
  for (let h = 0; h < FILES; h++) writeFileSync(join(dir, 'hosts', `h${String(h).padStart(4, '0')}.yaml`), hostFile(h, perFile));
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.email', 'bench@plumb.invalid');
  git(dir, 'config', 'user.name', 'bench');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'initial');
  return dir;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)]!;
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

async function benchSize(resources: number): Promise<{ fullMs: number; deltaMedianMs: number; deltaP95Ms: number }> {
  const dir = makeRepo(resources);
  const objects = new GitObjects(dir, { env: process.env });
  const registry = new SchemaRegistry(builtinProviders());
  const options = { objects, registry, scope: '' };
  const head = git(dir, 'rev-parse', 'HEAD');

  const fullTimes: number[] = [];
  let set: DesiredSet | undefined;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const full = await loadFull(head, options);
    fullTimes.push(performance.now() - t);
    if (full.diagnostics.length > 0) throw new Error(`bench repo invalid: ${full.diagnostics[0]!.message}`);
    set = full.set;
  }

  // Record everything as accepted, as the daemon would have after its first pass.
  const stateDir = join(root, `state-${resources}`);
  rmSync(stateDir, { recursive: true, force: true });
  const store = new Store(openWritable(stateDir));
  const first = plan({ commit: head, mode: 'delta', desired: set!.resources, scope: set!.resources.keys(), recorded: new Map(), tombstones: [], retry: new Set(), changedTargets: new Set() });
  store.accept(first.acceptance, new Map());
  store.db.prepare("UPDATE resources SET status = 'converged', applied_commit = accepted_commit, applied_hash = spec_hash").run();

  const deltaTimes: number[] = [];
  let ops = 0;
  for (let c = 1; c <= DELTA_COMMITS; c++) {
    const host = (c * 37) % FILES;
    writeFileSync(join(dir, 'hosts', `h${String(host).padStart(4, '0')}.yaml`), hostFile(host, resources / FILES, c));
    git(dir, 'commit', '-q', '-am', `change ${c}`);
    const next = git(dir, 'rev-parse', 'HEAD');
    const t = performance.now();
    const delta = await loadDelta(set!, next, options);
    if (delta.diagnostics.length > 0) throw new Error(delta.diagnostics[0]!.message);
    const { scope, changedTargets } = deltaScope(set!, delta);
    const recorded = store.recorded(scope);
    const p = plan({ commit: next, base: set!.commit, mode: 'delta', desired: delta, scope, recorded, tombstones: [], retry: new Set(), changedTargets });
    store.accept(p.acceptance, new Map());
    delta.apply();
    deltaTimes.push(performance.now() - t);
    ops = p.ops.length;
  }
  if (ops !== 1) throw new Error(`expected 1 op per one-resource commit, got ${ops}`);
  store.close();
  objects.close();
  return { fullMs: median(fullTimes), deltaMedianMs: median(deltaTimes), deltaP95Ms: p95(deltaTimes) };
}

/**
 * Starts the real daemon on the 10k repo (targets point at a closed port, so the
 * start-up sweep runs all 10,000 operations) and reads its peak RSS (VmHWM) once
 * every resource has settled. `v8Flags` are the node flags it is launched with:
 * the shipped unit and the bin use --optimize-for-size (docs/adr/0005).
 */
async function daemonRss(resources: number, v8Flags: string[]): Promise<number> {
  const dir = join(root, `repo-${resources}`);
  const stateDir = join(root, `daemon-state-${resources}`);
  rmSync(stateDir, { recursive: true, force: true });
  const config = join(root, `daemon-${resources}.yaml`);
  writeFileSync(config, `repo:\n  url: ${dir}\n  pollInterval: 1h\nstateDir: ${stateDir}\nrun:\n  connectTimeout: 1s\n  maxAttempts: 1\nsweep:\n  interval: 0s\nlog:\n  level: warn\n`);
  const cli = join(packageRoot(), 'dist/src/cli/main.js');
  const child = spawn(process.execPath, [...v8Flags, cli, 'daemon', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PLUMB_BENCH_KEY: 'not-a-key' } });
  child.stderr.resume();
  const deadline = Date.now() + 300_000;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      if (existsSync(join(stateDir, 'plumb.db'))) {
        let counts: Record<string, number> = {};
        const store = new Store(openReadOnly(stateDir));
        try {
          counts = store.statusCounts();
        } catch {
          // The database exists before the daemon's migrations made its indexes ("no query solution"): ask again.
        } finally {
          store.close();
        }
        if ((counts.failed ?? 0) + (counts.converged ?? 0) + (counts.blocked ?? 0) >= resources) break;
      }
      if (Date.now() > deadline) throw new Error('daemon did not finish its first pass');
    }
    const proc = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(proc)![1]) / 1024;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}


/** Reports the process's peak RSS and CPU time (all its threads) at exit to $PLUMB_BENCH_RSS_OUT (loaded with --import into the CLI). */
const RSS_PROBE = `import { writeFileSync } from 'node:fs';
process.on('exit', () => { const u = process.resourceUsage(); if (process.env.PLUMB_BENCH_RSS_OUT) writeFileSync(process.env.PLUMB_BENCH_RSS_OUT, JSON.stringify({ maxRss: u.maxRSS, cpu: u.userCPUTime + u.systemCPUTime })); });
`;

interface CliRun {
  wallMs: number;
  peakMb: number;
  /** CPU time of the plumb process, all threads (not git's): what a busy shared machine inflates least. */
  cpuMs: number;
}

/** One `plumb <verb>` on `dir` as a child process: wall time and peak RSS. Exit codes other than `okCodes` fail the bench. */
function runCli(verb: string, dir: string, nodeFlags: string[], okCodes: number[]): CliRun {
  const probe = join(root, 'rss-probe.mjs');
  writeFileSync(probe, RSS_PROBE);
  const rssOut = join(root, 'rss-out');
  rmSync(rssOut, { force: true });
  const state = join(root, 'cli-state');
  rmSync(state, { recursive: true, force: true });
  const cli = join(packageRoot(), 'dist/src/cli/main.js');
  const t = performance.now();
  const child = spawnSync(process.execPath, [...nodeFlags, '--import', pathToFileURL(probe).href, cli, verb, '--repo', dir, '--state', state], {
    env: { ...process.env, PLUMB_CONFIG: '', PLUMB_BENCH_RSS_OUT: rssOut },
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 << 20,
  });
  const wallMs = performance.now() - t;
  if (child.status === null || !okCodes.includes(child.status)) throw new Error(`plumb ${verb} exited ${child.status ?? child.signal}: ${child.stderr.toString().slice(0, 500)}`);
  const usage = JSON.parse(readFileSync(rssOut, 'utf8')) as { maxRss: number; cpu: number };
  return { wallMs, peakMb: usage.maxRss / 1024, cpuMs: usage.cpu / 1000 };
}

/** The node flags the `plumb` bin runs with (its shebang), so "as shipped" stays what users get. */
function shippedFlags(): string[] {
  const first = readFileSync(join(packageRoot(), 'dist/src/cli/main.js'), 'utf8').split('\n', 1)[0]!;
  return first.split(/\s+/).filter((w) => w.startsWith('--'));
}

const CLI_RESOURCES = 100_000;
const CLI_GOALS = { validate: { ms: 3000, mb: 400 }, plan: { ms: 5000, mb: undefined } } as const;

async function benchCli(): Promise<void> {
  const dir = makeRepo(CLI_RESOURCES);
  const runs = Number(process.env.PLUMB_BENCH_CLI_RUNS ?? 3);
  const total = CLI_RESOURCES + FILES;
  console.log('');
  console.log(`load average before the CLI runs: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (figures are only comparable on an idle machine)`);
  for (const verb of ['validate', 'plan'] as const) {
    const okCodes = verb === 'plan' ? [2] : [0]; // plan: 2 = there are changes (all creates)
    const results: CliRun[] = [];
    for (let i = 0; i < runs; i++) results.push(runCli(verb, dir, [], okCodes));
    const wall = median(results.map((r) => r.wallMs));
    const peak = median(results.map((r) => r.peakMb));
    const cpu = median(results.map((r) => r.cpuMs));
    const goal = CLI_GOALS[verb];
    const rssPart = goal.mb ? ` vs goal ${goal.mb} MB -> ratio ${(peak / goal.mb).toFixed(2)}` : '';
    console.log(
      `plumb ${verb} of ${total} resources (node dist/src/cli/main.js, median of ${runs}): ${(wall / 1000).toFixed(2)} s vs goal ${goal.ms / 1000} s -> ratio ${(wall / goal.ms).toFixed(2)}; peak RSS ${peak.toFixed(0)} MB${rssPart}; CPU ${(cpu / 1000).toFixed(2)} s` +
        `  [runs: ${results.map((r) => `${(r.wallMs / 1000).toFixed(2)} s/${r.peakMb.toFixed(0)} MB`).join(', ')}]`,
    );
    const flags = shippedFlags();
    // Only when the bin adds node flags of its own (it did before issue 10: ADR 5).
    if (process.env.PLUMB_BENCH_SHIPPED !== '0' && flags.length > 0) {
      const shipped = runCli(verb, dir, flags, okCodes);
      console.log(`  as the plumb bin runs it (node ${flags.join(' ')}), one run: ${(shipped.wallMs / 1000).toFixed(2)} s, peak RSS ${shipped.peakMb.toFixed(0)} MB, CPU ${(shipped.cpuMs / 1000).toFixed(2)} s`);
    }
  }
  console.log(`load average after the CLI runs: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (above ~1 on this 2-core box, the wall times are inflated: compare CPU)`);
}

async function main(): Promise<void> {
  mkdirSync(root, { recursive: true });
  const results = new Map<number, Awaited<ReturnType<typeof benchSize>>>();
  for (const n of sizes) {
    const r = await benchSize(n);
    results.set(n, r);
    console.log(`${String(n).padStart(6)} resources: full load+validate ${fmt(r.fullMs)} | one-file delta plan median ${fmt(r.deltaMedianMs)}, p95 ${fmt(r.deltaP95Ms)}`);
  }
  const big = Math.max(...sizes);
  const small = Math.min(...sizes);
  const rb = results.get(big)!;
  console.log('');
  if (big >= 10000) console.log(`full load of ${big}: ${fmt(rb.fullMs)} vs goal 2000 ms -> ratio ${(rb.fullMs / 2000).toFixed(2)} (<= 1 meets it)`);
  console.log(`one-file delta at ${big}: ${fmt(rb.deltaMedianMs)} vs goal 50 ms -> ratio ${(rb.deltaMedianMs / 50).toFixed(2)} (<= 1 meets it)`);
  if (big !== small) console.log(`delta growth ${small} -> ${big} resources: x${(rb.deltaMedianMs / results.get(small)!.deltaMedianMs).toFixed(2)} (~1 means it does not grow with repo size)`);
  if (process.env.PLUMB_BENCH_RSS !== '0') {
    const shipped = await daemonRss(big, ['--optimize-for-size']);
    console.log(`daemon peak RSS holding ${big} resources (as shipped: node --optimize-for-size): ${shipped.toFixed(0)} MB vs goal 250 MB -> ratio ${(shipped / 250).toFixed(2)} (<= 1 meets it)`);
    const plain = await daemonRss(big, []);
    console.log(`  for comparison, with V8's default heap sizing: ${plain.toFixed(0)} MB -> ratio ${(plain / 250).toFixed(2)}`);
  }
  if (process.env.PLUMB_BENCH_CLI !== '0') await benchCli();
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
