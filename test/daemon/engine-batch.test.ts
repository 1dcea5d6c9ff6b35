import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { ProviderError } from '../../src/errors.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

/** A transactional provider (like NETCONF) gets all of one target's writes in a pass as one transaction. */
const target = (name: string): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: fake, address: ${name} }\n`;
const item = (name: string, on: string, value: string, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${name}, target: ${on}${meta} }\nspec: { value: "${value}" }\n`;

describe('per-target transactions', () => {
  let repo: TempRepo;
  let world: FakeWorld;
  let engine: Engine;

  beforeEach(async () => {
    repo = new TempRepo();
    world = new FakeWorld();
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
    repo.write('t1.yaml', [item('a', 't1', 'A1'), item('b', 't1', 'B1'), item('c', 't1', 'C1', ', dependsOn: [fake.Item/a]')].join('---\n'));
    repo.write('t2.yaml', item('x', 't2', 'X1'));
    repo.commit('A');
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-state-'), run: { backoff: '5ms', maxBackoff: '10ms', maxAttempts: 3 } }),
      providers: [fakeProvider(world, { transactional: true })],
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('every write on a target goes in one transaction, in dependency order; each resource is still read and verified', async () => {
    const report = await engine.pass();
    expect(report.run!.results.every((r) => r.status === 'changed')).toBe(true);
    expect(world.device('t1').transactions).toEqual([3]);
    expect(world.device('t2').transactions).toEqual([]); // a single op needs no batch: it goes through apply()
    expect(world.calls.filter((c) => c.startsWith('transaction'))).toEqual(['transaction t1 +fake.Item/a +fake.Item/b +fake.Item/c']);
    expect(world.calls.filter((c) => c.startsWith('read t1'))).toHaveLength(6); // read before, read after, for each
  });

  test('a commit that changes two resources and deletes one is one transaction; a converged pass is none', async () => {
    await engine.pass();
    repo.write('t1.yaml', [item('a', 't1', 'A2'), item('c', 't1', 'C2', ', dependsOn: [fake.Item/a]')].join('---\n'));
    repo.commit('change a and c, delete b');
    await engine.pass();
    expect(world.device('t1').transactions).toEqual([3, 3]);
    expect([...world.device('t1').items.entries()]).toEqual([
      ['a', { value: 'A2' }],
      ['c', { value: 'C2' }],
    ]);
    expect(engine.store.tombstones()).toEqual([]);
    await engine.pass({ sweep: true });
    expect(world.device('t1').transactions).toEqual([3, 3]);
  });

  test('a transaction that fails before commit changes nothing and is retried whole', async () => {
    world.device('t1').failTransactions = 1;
    const report = await engine.pass();
    expect(report.run!.results.filter((r) => r.target === 't1').map((r) => [r.status, r.attempts])).toEqual([
      ['changed', 2],
      ['changed', 2],
      ['changed', 2],
    ]);
    expect(world.device('t1').transactions).toEqual([3]);
  });

  test('a transaction that keeps failing fails every member, and the device is unchanged', async () => {
    world.device('t1').failTransactions = 10;
    const report = await engine.pass();
    expect(report.run!.results.filter((r) => r.target === 't1').map((r) => r.status)).toEqual(['failed', 'failed', 'failed']);
    expect(world.device('t1').items.size).toBe(0);
    expect(engine.store.resources({ target: 't1' }).filter((r) => r.kind === 'fake.Item').map((r) => r.status)).toEqual(['failed', 'failed', 'failed']);
    expect(engine.store.db.prepare("SELECT COUNT(*) AS n FROM ops WHERE state = 'intent'").get()).toEqual({ n: 0 });
  });

  test('a dependency chain through another target is not batched (it would deadlock) and still converges', async () => {
    repo.write('t1.yaml', [item('a', 't1', 'A1'), item('b', 't1', 'B1', ', dependsOn: [fake.Item/x]')].join('---\n'));
    repo.write('t2.yaml', item('x', 't2', 'X1', ', dependsOn: [fake.Item/a]'));
    repo.commit('a <- x <- b across targets');
    const report = await engine.pass();
    expect(report.run!.results.every((r) => r.status === 'changed')).toBe(true);
    expect(world.device('t1').transactions).toEqual([]);
    expect(world.calls.filter((c) => c.startsWith('apply')).map((c) => c.split(' ')[2])).toEqual(['fake.Item/a', 'fake.Item/x', 'fake.Item/b']);
  });
});

describe('transactions next to dependencies, failures, pauses and shutdown', () => {
  let cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(files: Record<string, string>, options: { transactional?: boolean; mutate?: (p: ReturnType<typeof fakeProvider>) => void; run?: Record<string, string | number> } = {}) {
    const repo = new TempRepo();
    const world = new FakeWorld();
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
    for (const [file, text] of Object.entries(files)) repo.write(file, text);
    repo.commit('A');
    const provider = fakeProvider(world, { transactional: options.transactional ?? true });
    options.mutate?.(provider);
    const engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-state-'), run: { backoff: '5ms', maxBackoff: '10ms', maxAttempts: 2, ...options.run } }),
      providers: [provider],
      log: silentLog,
      env: {},
    });
    cleanup.push(
      () => repo.cleanup(),
      () => engine.close(),
    );
    return { repo, world, engine };
  }
  const statusOf = (engine: Engine): Record<string, string> => Object.fromEntries(engine.store.resources({}).filter((r) => r.kind === 'fake.Item').map((r) => [r.id, r.status]));

  test('two targets whose transactions would wait on each other are unbatched and converge', async () => {
    const { engine, world } = await setup({
      't1.yaml': [item('a1', 't1', 'x'), item('a2', 't1', 'x', ', dependsOn: [fake.Item/b1]')].join('---\n'),
      't2.yaml': [item('b1', 't2', 'x'), item('b2', 't2', 'x', ', dependsOn: [fake.Item/a1]')].join('---\n'),
    });
    const report = await engine.pass();
    expect(report.run!.results.map((r) => r.status)).toEqual(['changed', 'changed', 'changed', 'changed']);
    expect([...world.device('t1').transactions, ...world.device('t2').transactions]).toEqual([]);
  });

  test('a transaction that finally fails leaves members it found converged as converged', async () => {
    const { engine, world } = await setup({ 't1.yaml': [item('a', 't1', 'A'), item('b', 't1', 'B'), item('c', 't1', 'C')].join('---\n') });
    await engine.pass();
    world.device('t1').items.set('b', { value: 'drifted' });
    world.device('t1').failTransactions = 10;
    const report = await engine.pass({ sweep: true });
    expect(Object.fromEntries(report.run!.results.map((r) => [r.id, r.status]))).toEqual({ 'fake.Item/a': 'converged', 'fake.Item/b': 'failed', 'fake.Item/c': 'converged' });
    expect(statusOf(engine)).toEqual({ 'fake.Item/a': 'converged', 'fake.Item/b': 'failed', 'fake.Item/c': 'converged' });
  });

  test('a member whose read fails holds back what depends on it; the rest of the transaction goes ahead', async () => {
    const { engine, world } = await setup(
      { 't1.yaml': [item('a', 't1', 'A'), item('b', 't1', 'B'), item('c', 't1', 'C', ', dependsOn: [fake.Item/a]')].join('---\n') },
      {
        mutate: (p) => {
          const handler = p.kinds[0]!;
          const read = handler.read.bind(handler);
          handler.read = async (s, r, ctx) => {
            if (r.id === 'fake.Item/a') throw new ProviderError('a cannot be read');
            return read(s, r, ctx);
          };
        },
      },
    );
    const report = await engine.pass();
    expect(Object.fromEntries(report.run!.results.map((r) => [r.id, r.status]))).toEqual({ 'fake.Item/a': 'failed', 'fake.Item/b': 'changed', 'fake.Item/c': 'blocked' });
    expect(report.run!.results.find((r) => r.id === 'fake.Item/c')!.error!.message).toContain('waiting on fake.Item/a');
    expect(world.calls.filter((c) => c.startsWith('transaction'))).toEqual(['transaction t1 +fake.Item/b']);
    expect([...world.device('t1').items.keys()]).toEqual(['b']);
  });

  test('a pause made mid-pass holds the ops still queued on that target', async () => {
    // One op at a time on t2: when a finishes and the pause lands, c is (at most) under way and d, e are queued.
    const { engine, world } = await setup({ 't2.yaml': ['a', 'c', 'd', 'e'].map((n) => item(n, 't2', n.toUpperCase())).join('---\n') }, { transactional: false });
    world.device('t2').latencyMs = 30;
    const report = await engine.pass({
      onResult: (result) => {
        if (result.id === 'fake.Item/a') engine.store.pause({ selector: 't2', reason: 'incident', by: 'op', until: null });
      },
    });
    const status = Object.fromEntries(report.run!.results.map((r) => [r.id, r.status]));
    expect(status['fake.Item/a']).toBe('changed');
    expect([status['fake.Item/d'], status['fake.Item/e']]).toEqual(['paused', 'paused']);
    expect(world.device('t2').items.has('d') || world.device('t2').items.has('e')).toBe(false);
  });

  test('shutdown aborting a transaction in flight cancels its members (not failures), like single ops', async () => {
    const { engine, world } = await setup({ 't1.yaml': [item('a', 't1', 'A'), item('b', 't1', 'B')].join('---\n'), 't2.yaml': item('x', 't2', 'X') });
    world.device('t1').hang = true;
    world.device('t2').hang = true;
    const stop = new AbortController();
    const abort = new AbortController();
    const pass = engine.pass({ stop: stop.signal, abort: abort.signal });
    // Both targets hang on a request (the transaction's first read, the single op's): in flight, not a timer's guess.
    const guard = Date.now() + 30_000;
    while (world.inFlight < 2) {
      if (Date.now() > guard) throw new Error('timed out waiting for both targets to be in flight');
      await new Promise((r) => setTimeout(r, 2));
    }
    stop.abort();
    abort.abort();
    const report = await pass;
    expect(report.run!.results.map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(Object.values(statusOf(engine))).not.toContain('failed');
  });

  test('a write that runs out of time is journaled with an unknown outcome, and says why', async () => {
    const { engine } = await setup(
      { 't2.yaml': item('x', 't2', 'X') },
      {
        run: { opTimeout: '100ms', maxAttempts: 1 },
        mutate: (p) => {
          const handler = p.kinds[0]!;
          handler.apply = (_s, _r, _c, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('gave up')), { once: true }));
        },
      },
    );
    const report = await engine.pass();
    expect(report.run!.results[0]).toMatchObject({ status: 'failed', error: { code: 'PLUMB_TIMEOUT' } });
    expect(engine.store.db.prepare("SELECT state FROM ops WHERE resource_id = 'fake.Item/x'").all()).toEqual([{ state: 'unknown' }]);
    expect(engine.store.unknownOutcome('fake.Item/x', engine.store.db.prepare("SELECT spec_hash FROM ops WHERE resource_id = 'fake.Item/x'").pluck().get() as string)).toMatchObject({ why: expect.stringContaining('no answer within 100 ms') });
  });
});
