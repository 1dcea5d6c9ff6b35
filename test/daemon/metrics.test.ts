import { rmSync } from 'node:fs';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine, type PassReport } from '../../src/daemon/engine.js';
import { HttpServer } from '../../src/daemon/http.js';
import { silentLog } from '../../src/daemon/log.js';
import { Metrics } from '../../src/daemon/metrics.js';
import type { LoadedResource } from '../../src/load/types.js';
import type { Acceptance } from '../../src/plan/types.js';
import type { Json } from '../../src/provider.js';
import type { OpResult } from '../../src/run/runner.js';
import { openWritable } from '../../src/state/db.js';
import { Store } from '../../src/state/store.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Parses the Prometheus text format strictly enough that a malformed line fails the test. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        typed.add(meta[2]!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const pair of (m![2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    const family = m![1]!.replace(/_(bucket|sum|count)$/, '');
    expect(typed.has(m![1]!) || typed.has(family), `${m![1]} has no # TYPE`).toBe(true);
    samples.push({ name: m![1]!, labels, value: Number(m![3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

function loaded(kind: string, name: string, target: string | undefined, spec: object): LoadedResource {
  return {
    id: `${kind}/${name}`,
    kind,
    name,
    spec,
    attachments: {},
    claims: [],
    meta: { name, ...(target ? { target } : {}), dependsOn: [], deletionPolicy: 'Delete', previousNames: [], ignore: [], drift: 'remediate' },
    file: 'x.yaml',
    line: 1,
    col: 1,
    specHash: `h-${kind}-${name}-${JSON.stringify(spec)}`,
  };
}

const acceptance = (commit: string, upserts: LoadedResource[], extra: Partial<Acceptance> = {}): Acceptance => ({ commit, upserts, pending: upserts.map((r) => r.id), renames: [], deletions: [], resurrected: [], ...extra });

const result = (id: string, status: OpResult['status'], extra: Partial<OpResult> = {}): OpResult => ({ key: id, id, target: 't1', action: 'update', cause: 'intent', status, changes: [], attempts: 1, durationMs: 3, ...extra });

const report = (commit: string | null, extra: Partial<PassReport> = {}): PassReport => ({ commit, fetched: commit, converged: false, timings: { fetchMs: 1, loadMs: 1, planMs: 1, runMs: 1 }, filesRead: 0, ...extra });

describe('metrics against a real Store', () => {
  let dir: string;
  let store: Store;
  let clock: number;
  const now = (): number => clock;
  const targets = [loaded('Target', 't1', undefined, { provider: 'fake', address: 't1' }), loaded('Target', 't2', undefined, { provider: 'fake', address: 't2' })];
  const items = [loaded('fake.Item', 'a', 't1', { value: 'A' }), loaded('fake.Item', 'b', 't1', { value: 'B' }), loaded('fake.Item', 'c', 't2', { value: 'C' })];

  beforeEach(() => {
    dir = tempDir('plumb-metrics-');
    clock = 1_000_000;
    store = new Store(openWritable(dir), now);
    store.accept(acceptance(A, [...targets, ...items]), new Map());
  });

  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('gauges follow the store: statuses, drift, tombstones, pauses and per-target lag', async () => {
    const metrics = new Metrics({ store, now });
    clock += 30_000;
    let s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_resources', { status: 'pending' })).toBe(3); // Targets are not counted
    expect(value(s, 'plumb_resources', { status: 'converged' })).toBe(0); // present at 0, not missing
    expect(value(s, 'plumb_target_lag_seconds', { target: 't1' })).toBe(30);
    expect(value(s, 'plumb_target_lag_seconds', { target: 't2' })).toBe(30);

    for (const r of items) store.markConverged(r.id, { value: 'x' }, { commit: A, specHash: r.specHash, spec: r.spec as Json });
    s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_resources', { status: 'converged' })).toBe(3);
    expect(value(s, 'plumb_resources', { status: 'pending' })).toBe(0);
    expect(value(s, 'plumb_target_lag_seconds', { target: 't1' })).toBe(0);
    expect(value(s, 'plumb_target_lag_seconds', { target: 't2' })).toBe(0);

    store.markFailed({ id: 'fake.Item/c', kind: 'fake.Item', target: 't2', status: 'failed', code: 'PLUMB_UNREACHABLE', message: 'refused', attempts: 1, nextAttemptAt: clock + 60_000, commit: A, cause: 'intent' });
    store.markDrifted('fake.Item/b', 'fake.Item', 't1', [{ path: '/value', before: 'Z', after: 'B' }], { value: 'Z' }, A);
    store.pause({ selector: 't1', reason: 'maintenance', by: 'ops', until: null });
    store.pause({ selector: 'fake.Item/a', reason: 'expired', by: 'ops', until: clock - 1 });
    clock += 15_000;
    s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_resources', { status: 'failed' })).toBe(1);
    expect(value(s, 'plumb_drifted_resources')).toBe(1);
    expect(value(s, 'plumb_paused')).toBe(1); // the expired pause is not in force
    expect(value(s, 'plumb_target_lag_seconds', { target: 't2' })).toBe(45); // since A was accepted
    expect(value(s, 'plumb_target_lag_seconds', { target: 't1' })).toBe(0); // drift is not lag
    expect(value(s, 'plumb_pending_tombstones')).toBe(0);

    // Commit B deletes c: a pending tombstone, and t2 lags from B's acceptance on.
    const recordedC = store.recorded(['fake.Item/c']).get('fake.Item/c')!;
    clock += 5_000;
    store.accept(acceptance(B, [...targets, items[0]!, items[1]!], { pending: [], deletions: [{ recorded: recordedC, policy: 'Delete' }] }), new Map());
    clock += 2_000;
    s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_pending_tombstones')).toBe(1);
    expect(value(s, 'plumb_resources', { status: 'deleting' })).toBe(1);
    expect(value(s, 'plumb_target_lag_seconds', { target: 't2' })).toBe(2);
    expect(value(s, 'plumb_target_lag_seconds', { target: 't1' })).toBe(0);
  });

  test('the lag and status queries are answered from indexes, not table scans', () => {
    // The statements the Store really prepares for a scrape, captured on their way in.
    const prepared: string[] = [];
    const db = store.db;
    const prepare = db.prepare.bind(db);
    const spy = Object.create(db, { prepare: { value: (sql: string) => (prepared.push(sql), prepare(sql)) } }) as typeof db;
    const fresh = new Store(spy);
    const plan = (call: () => unknown): string => {
      prepared.length = 0;
      call();
      expect(prepared).toHaveLength(1);
      return (db.prepare(`EXPLAIN QUERY PLAN ${prepared[0]!}`).all() as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    };
    const lagging = plan(() => fresh.laggingTargets());
    const names = plan(() => fresh.targetNames());
    const unsettled = plan(() => fresh.unsettledCount());
    const tombstones = plan(() => fresh.pendingTombstoneCount());
    expect(lagging).toMatch(/USING (COVERING )?INDEX resources_status/);
    expect(lagging).toMatch(/USING (COVERING )?INDEX tombstones_state/);
    expect(names).toMatch(/USING INDEX sqlite_autoindex_resources_1 \(id>\? AND id<\?\)/);
    expect(unsettled).toMatch(/USING (COVERING )?INDEX resources_status/);
    expect(tombstones).toMatch(/USING (COVERING )?INDEX tombstones_state/);
  });

  test('counters: each op result counted once whether it came through onResult, onPass or both; queue depth follows the pass', async () => {
    const metrics = new Metrics({ store, now });
    const r1 = result('fake.Item/a', 'changed');
    const r2 = result('fake.Item/b', 'converged');
    const r3 = result('fake.Item/c', 'failed', { error: { code: 'PLUMB_UNREACHABLE', message: 'refused' } });
    const t1 = result('Target/t1', 'converged', { target: null });
    metrics.onPlan({ ops: [{}, {}, {}, {}] as never });
    metrics.onResult(r1);
    metrics.onEvent({ type: 'result', result: r2 });
    let s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_queue_depth')).toBe(2);
    expect(value(s, 'plumb_ops_total', { kind: 'fake.Item', result: 'changed' })).toBe(1);

    metrics.onPass(report(A, { run: { results: [r1, r2, r3, t1], durationMs: 5 } }), 'delta');
    metrics.onPass(report(A, { fetched: null, fetchError: 'unreachable', run: { results: [], durationMs: 0 } }), 'delta');
    metrics.onPass(report(A, { rejected: { commit: B, diagnostics: [] }, run: { results: [], durationMs: 0 } }), 'delta');
    metrics.onPass(report(null), 'sweep');
    metrics.onEvent({ type: 'plan', commit: A, total: 7 });
    s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_queue_depth')).toBe(7);
    metrics.onPass(report(A, { converged: true, plan: { mode: 'full' } as never }));
    metrics.onWebhook('github', 'accepted');
    metrics.onWebhook('github', 'accepted');
    metrics.onWebhook('unknown', 'too_large');

    s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_queue_depth')).toBe(0);
    expect(value(s, 'plumb_ops_total', { kind: 'fake.Item', result: 'changed' })).toBe(1);
    expect(value(s, 'plumb_ops_total', { kind: 'fake.Item', result: 'converged' })).toBe(1);
    expect(value(s, 'plumb_ops_total', { kind: 'fake.Item', result: 'failed' })).toBe(1);
    expect(value(s, 'plumb_ops_total', { kind: 'Target', result: 'converged' })).toBe(1);
    expect(value(s, 'plumb_passes_total', { kind: 'delta', outcome: 'failed' })).toBe(1);
    expect(value(s, 'plumb_passes_total', { kind: 'delta', outcome: 'incomplete' })).toBe(1);
    expect(value(s, 'plumb_passes_total', { kind: 'delta', outcome: 'rejected' })).toBe(1);
    expect(value(s, 'plumb_passes_total', { kind: 'sweep', outcome: 'empty' })).toBe(1);
    expect(value(s, 'plumb_passes_total', { kind: 'sweep', outcome: 'converged' })).toBe(1); // a full plan without a kind counts as a sweep
    expect(value(s, 'plumb_fetch_errors_total')).toBe(1);
    expect(value(s, 'plumb_webhooks_total', { provider: 'github', outcome: 'accepted' })).toBe(2);
    expect(value(s, 'plumb_webhooks_total', { provider: 'unknown', outcome: 'too_large' })).toBe(1);
  });

  test('commit-to-converged: observed once per commit, from its acceptance; not again after a restart', async () => {
    const metrics = new Metrics({ store, now });
    clock += 42_000; // A was accepted 42 s ago
    store.recordApplied(A);
    metrics.onPass(report(A, { converged: true }));
    clock += 60_000;
    metrics.onPass(report(A, { converged: true })); // the same commit, still converged: no new observation
    let s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_commit_to_converged_seconds_count')).toBe(1);
    expect(value(s, 'plumb_commit_to_converged_seconds_sum')).toBe(42);
    expect(value(s, 'plumb_commit_to_converged_seconds_bucket', { le: '30' })).toBe(0);
    expect(value(s, 'plumb_commit_to_converged_seconds_bucket', { le: '60' })).toBe(1);

    // A restart: A had converged before this process started.
    clock += 1_000;
    const restarted = new Metrics({ store, now });
    restarted.onPass(report(A, { converged: true }));
    s = parseExposition(await restarted.render());
    expect(value(s, 'plumb_commit_to_converged_seconds_count')).toBe(0);
  });

  test('GET /metrics serves the registry in the text format', async () => {
    const metrics = new Metrics({ store, now });
    const server = new HttpServer({ host: '127.0.0.1', port: 0, log: silentLog, metrics });
    const { port } = await server.listen();
    try {
      const res = await request(`http://127.0.0.1:${port}/metrics`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      const s = parseExposition(await res.body.text());
      const names = new Set(s.map((x) => x.name.replace(/_(bucket|sum|count)$/, '')));
      // Labelled counters (ops, passes, webhooks) have no samples until something happened.
      for (const name of ['plumb_fetch_errors_total', 'plumb_resources', 'plumb_drifted_resources', 'plumb_pending_tombstones', 'plumb_paused', 'plumb_queue_depth', 'plumb_target_lag_seconds', 'plumb_commit_to_converged_seconds']) {
        expect(names, name).toContain(name);
      }
      expect(s.some((x) => x.name.startsWith('process_') || x.name.startsWith('nodejs_'))).toBe(false); // its own registry, no defaults
    } finally {
      await server.close();
    }
  });
});

describe('metrics fed by a real engine pass', () => {
  let repo: TempRepo;
  let engine: Engine;
  let stateDir: string;

  beforeEach(async () => {
    repo = new TempRepo();
    repo.write('targets.yaml', 'apiVersion: plumb/v1\nkind: Target\nmetadata: { name: t1 }\nspec: { provider: fake, address: t1 }\n');
    repo.write('items.yaml', ['a', 'b', 'c'].map((n) => `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${n}, target: t1 }\nspec: { value: "${n}" }\n`).join('---\n'));
    repo.commit('A');
    engine = await Engine.open({ config: compileConfig({ repo: { url: repo.dir }, stateDir: (stateDir = tempDir('plumb-metrics-state-')) }), providers: [fakeProvider(new FakeWorld())], log: silentLog, env: {} });
  });

  afterEach(async () => {
    await engine.close();
    repo.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('a first pass converges three items: ops counted once, the commit observed, no lag', async () => {
    const metrics = new Metrics({ store: engine.store });
    const pass = await engine.pass({ sweep: true, onPlan: (plan) => metrics.onPlan(plan), onResult: (r) => metrics.onResult(r) });
    metrics.onPass(pass, 'sweep');
    expect(pass.converged).toBe(true);
    const s = parseExposition(await metrics.render());
    expect(value(s, 'plumb_ops_total', { kind: 'fake.Item', result: 'changed' })).toBe(3);
    expect(value(s, 'plumb_passes_total', { kind: 'sweep', outcome: 'converged' })).toBe(1);
    expect(value(s, 'plumb_commit_to_converged_seconds_count')).toBe(1);
    expect(value(s, 'plumb_resources', { status: 'converged' })).toBe(3);
    expect(value(s, 'plumb_target_lag_seconds', { target: 't1' })).toBe(0);
    expect(value(s, 'plumb_queue_depth')).toBe(0);
  });
});
