/**
 * bench/webhook-latency: from a webhook sent (or a `git push` to the watched
 * local repo done) to the first provider operation on the resource its commit
 * changed, on loopback, excluding the fetch.
 *
 *   npm run bench:webhook        (PLUMB_BENCH_WEBHOOKS=50 by default, PLUMB_BENCH_ITEMS=200)
 *   npm run bench:push           (the same, triggered by `git push` to a bare repo the daemon watches)
 *
 * In one process: a temp git repo, an Engine and a Daemon with an in-memory
 * provider whose read() timestamps itself, and the trigger wired to
 * daemon.poke() exactly as `plumb daemon` wires it: the HTTP receiver
 * (minFetchInterval 0), or the RefWatcher on the bare repo. Each round commits
 * a one-file change, triggers, and measures from the webhook being sent (or the
 * push returning) to the first read of the changed resource, minus that pass's
 * fetch (PassReport.timings.fetchMs: git fetch from a local path, which a real
 * remote would replace with network time). Goal (issue 5): p50 <= 100 ms.
 */
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { compileConfig } from '../src/daemon/config.js';
import { Daemon } from '../src/daemon/daemon.js';
import { Engine, type PassReport } from '../src/daemon/engine.js';
import { HttpServer } from '../src/daemon/http.js';
import { silentLog } from '../src/daemon/log.js';
import type { Change, KindHandler, Provider, Session } from '../src/provider.js';
import { SecretResolver } from '../src/secrets/resolve.js';
import { RefWatcher } from '../src/source/watch.js';
import { packageRoot } from '../src/util/package-root.js';

const ROUNDS = Number(process.env.PLUMB_BENCH_WEBHOOKS ?? 50);
const MODE: 'webhook' | 'push' = process.env.PLUMB_BENCH_TRIGGER === 'push' ? 'push' : 'webhook';
const ITEMS = Number(process.env.PLUMB_BENCH_ITEMS ?? 200);
const GOAL_MS = 100;
const SECRET = 'bench-webhook-secret';
const root = join(packageRoot(), '.bench', 'webhook-latency');

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Adapted from test/helpers/fake-provider.ts: in-memory items, and every read timestamped for the measurement. */
function benchProvider(schemaDir: string, onRead: (id: string, at: number) => void): Provider {
  const items = new Map<string, string>();
  class BenchSession implements Session {
    alive = true;
    async close(): Promise<void> {
      this.alive = false;
    }
  }
  const item: KindHandler<{ value: string }, { value: string }, BenchSession> = {
    kind: 'bench.Item',
    schema: join(schemaDir, 'bench.item.schema.json'),
    async read(_s, r) {
      onRead(r.id, performance.now());
      const value = items.get(r.name);
      return value === undefined ? undefined : { value };
    },
    diff(r, actual): Change[] {
      return actual?.value === r.spec.value ? [] : [{ path: '/value', before: actual?.value ?? null, after: r.spec.value }];
    },
    async apply(_s, r) {
      items.set(r.name, r.spec.value);
    },
    async remove(_s, r) {
      items.delete(r.name);
    },
  };
  return {
    name: 'bench',
    targetSchema: join(schemaDir, 'bench.target.schema.json'),
    kinds: [item as unknown as KindHandler<unknown, unknown, BenchSession>],
    async open() {
      return new BenchSession();
    },
  };
}

function writeSchemas(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const schema = (id: string, properties: object, required: string[]): string =>
    JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', $id: id, title: id, description: 'bench', type: 'object', additionalProperties: false, required, properties });
  writeFileSync(join(dir, 'bench.item.schema.json'), schema('plumb/bench.Item', { value: { description: 'Any string.', type: 'string' } }, ['value']));
  writeFileSync(join(dir, 'bench.target.schema.json'), schema('plumb/bench.Target', { provider: { description: 'bench', const: 'bench' }, address: { description: 'Any name.', type: 'string' } }, ['provider', 'address']));
}

const itemDoc = (i: number, value: string): string => `apiVersion: plumb/v1\nkind: bench.Item\nmetadata: { name: item-${i}, target: t${i % 4} }\nspec: { value: "${value}" }\n`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  const repo = join(root, 'repo');
  const schemaDir = join(root, 'schemas');
  mkdirSync(join(repo, 'items'), { recursive: true });
  writeSchemas(schemaDir);
  writeFileSync(join(repo, 'targets.yaml'), [0, 1, 2, 3].map((t) => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: t${t} }\nspec: { provider: bench, address: t${t} }\n`).join('---\n'));
  for (let i = 0; i < ITEMS; i++) writeFileSync(join(repo, 'items', `item-${i}.yaml`), itemDoc(i, 'v0'));
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'add', '-A');
  git(repo, '-c', 'user.email=b@plumb.invalid', '-c', 'user.name=bench', 'commit', '-q', '-m', 'initial');
  // Push mode: people push to a bare repo on this host, which the daemon follows and watches.
  const bare = join(root, 'config.git');
  if (MODE === 'push') {
    execFileSync('git', ['clone', '-q', '--bare', repo, bare]);
    git(repo, 'remote', 'add', 'ops', bare);
  }

  let waitingFor: { id: string; resolve: (at: number) => void } | undefined;
  /** When the pass announced its plan: after fetch, load, plan, accept and pinning the commit; before the runner. */
  let planEventAt = 0;
  const provider = benchProvider(schemaDir, (id, at) => {
    if (waitingFor?.id === id) {
      waitingFor.resolve(at);
      waitingFor = undefined;
    }
  });
  // No poll, no sweep timer: only the webhook asks for passes.
  const config = compileConfig({ repo: { url: MODE === 'push' ? bare : repo, pollInterval: '24h' }, stateDir: join(root, 'state'), sweep: { interval: '0s' } });
  const engine = await Engine.open({ config, providers: [provider], log: silentLog, env: {} });
  const daemon = new Daemon(engine, config, silentLog);
  daemon.onEvent = (e) => void (e.type === 'plan' && (planEventAt = performance.now()));
  const passListeners: Array<(r: PassReport) => void> = [];
  daemon.onPass = (report) => {
    for (const listener of passListeners.splice(0)) listener(report);
  };
  const nextPass = (commit: string): Promise<PassReport> =>
    new Promise((resolve) => {
      const listen = (r: PassReport): void => (r.commit === commit ? resolve(r) : void passListeners.push(listen));
      passListeners.push(listen);
    });
  const http = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    log: silentLog,
    webhook: { path: '/hooks/git', secret: 'env:HOOK', secrets: new SecretResolver({ env: { HOOK: SECRET } }), maxBodyBytes: 1 << 20, minFetchIntervalMs: 0, dedupeWindowMs: 86_400_000, maxFailuresPerMinute: 10, trigger: () => daemon.poke() },
  });
  const { port } = await http.listen();
  const watcher = MODE === 'push' ? new RefWatcher(bare, 'main', () => daemon.poke(), silentLog) : undefined;
  await watcher?.start();
  const initial = nextPass(git(repo, 'rev-parse', 'HEAD'));
  const running = daemon.run();
  const first = await initial;
  console.log(`${ITEMS} bench.Item resources on 4 targets; start-up pass converged=${first.converged} in ${first.timings.fetchMs + first.timings.loadMs + first.timings.planMs + first.timings.runMs} ms; ${ROUNDS} rounds`);

  const latency: number[] = [];
  const withFetch: number[] = [];
  const fetchMs: number[] = [];
  const answerMs: number[] = [];
  const loadMs: number[] = [];
  const planMs: number[] = [];
  const beforeRun: number[] = [];
  const runnerToRead: number[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const i = (round * 7) % ITEMS;
      writeFileSync(join(repo, 'items', `item-${i}.yaml`), itemDoc(i, `v${round}`));
      git(repo, 'add', '-A');
      git(repo, '-c', 'user.email=b@plumb.invalid', '-c', 'user.name=bench', 'commit', '-q', '-m', `round ${round}`);
      const head = git(repo, 'rev-parse', 'HEAD');
      const firstRead = new Promise<number>((resolve) => (waitingFor = { id: `bench.Item/item-${i}`, resolve }));
      const pass = nextPass(head);
      // A push payload as GitHub would send it; the receiver never reads it.
      let sent: number;
      if (MODE === 'push') {
        git(repo, 'push', '-q', 'ops', 'main');
        sent = performance.now(); // the ref is updated when the push returns
      } else {
        const body = JSON.stringify({ ref: 'refs/heads/main', after: head, repository: { full_name: 'bench/config' } });
        const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `bench-${round}`, 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` };
        sent = performance.now();
        const res = await request(`http://127.0.0.1:${port}/hooks/git`, { method: 'POST', headers, body });
        answerMs.push(performance.now() - sent);
        await res.body.dump();
        if (res.statusCode !== 202) throw new Error(`webhook answered ${res.statusCode}`);
      }
      const [readAt, report] = await Promise.all([firstRead, pass]);
      withFetch.push(readAt - sent);
      fetchMs.push(report.timings.fetchMs);
      loadMs.push(report.timings.loadMs);
      planMs.push(report.timings.planMs);
      beforeRun.push(planEventAt - sent - report.timings.fetchMs - report.timings.loadMs - report.timings.planMs);
      runnerToRead.push(readAt - planEventAt);
      latency.push(readAt - sent - report.timings.fetchMs);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await watcher?.close();
    await http.close();
    await daemon.stop();
    await running;
    await engine.close();
  }
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  const l = sorted(latency);
  const f = sorted(fetchMs);
  const w = sorted(withFetch);
  const a = sorted(answerMs);
  const what = MODE === 'push' ? 'push' : 'webhook';
  if (MODE === 'webhook') console.log(`webhook answered (202):         p50 ${percentile(a, 50).toFixed(1)} ms, p95 ${percentile(a, 95).toFixed(1)} ms`);
  console.log(`fetch (git fetch, local path):  p50 ${percentile(f, 50).toFixed(0)} ms, p95 ${percentile(f, 95).toFixed(0)} ms (excluded below)`);
  console.log(`${what} -> first op, incl fetch: p50 ${percentile(w, 50).toFixed(1)} ms, p95 ${percentile(w, 95).toFixed(1)} ms`);
  const p50 = (xs: number[]): string => percentile(sorted(xs), 50).toFixed(0);
  console.log(`  of which: load (git diff, read the changed file) p50 ${p50(loadMs)} ms; plan p50 ${p50(planMs)} ms; trigger + wake-up + accept (SQLite, fsync) p50 ${p50(beforeRun)} ms; runner to first read p50 ${p50(runnerToRead)} ms`);
  console.log(`${what} -> first op, excl fetch: p50 ${percentile(l, 50).toFixed(1)} ms, p95 ${percentile(l, 95).toFixed(1)} ms, max ${l.at(-1)!.toFixed(1)} ms`);
  console.log(`goal p50 <= ${GOAL_MS} ms: ratio ${(percentile(l, 50) / GOAL_MS).toFixed(2)} (${percentile(l, 50) <= GOAL_MS ? 'met' : 'NOT met'})`);
  rmSync(root, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
