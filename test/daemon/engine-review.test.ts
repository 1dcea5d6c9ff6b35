import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig, type RawConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

/** Regression tests for the engine review: tombstones, moves, retries, dependencies, superseded passes. */
const target = (name: string, address = name): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: fake, address: ${address} }\n`;
const item = (name: string, on: string, value: string, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${name}, target: ${on}${meta} }\nspec: { value: "${value}" }\n`;

describe('engine review regressions', () => {
  let repo: TempRepo;
  let world: FakeWorld;
  let engine: Engine;
  let stateDir: string;
  let clock: number;

  const open = (run: RawConfig['run'] = { backoff: '10ms', maxBackoff: '20ms', retryAfter: '10m', maxRetryAfter: '1h', maxAttempts: 1 }): Promise<Engine> =>
    Engine.open({ config: compileConfig({ repo: { url: repo.dir }, stateDir, run }), providers: [fakeProvider(world)], log: silentLog, env: {}, now: () => clock });

  beforeEach(async () => {
    clock = 1_000_000;
    repo = new TempRepo();
    world = new FakeWorld();
    stateDir = tempDir('plumb-state-');
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
    repo.write('a.yaml', item('a', 't1', 'A1'));
    repo.commit('A');
    engine = await open();
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  const down = async (name: string, isDown: boolean): Promise<void> => {
    world.device(name).unreachable = isDown;
    await engine.pool.closeAll();
  };

  test('a resource back in Git while its removal backs off is not removed later', async () => {
    await engine.pass();
    await down('t1', true);
    repo.remove('a.yaml');
    repo.commit('remove a');
    await engine.pass();
    expect(engine.store.tombstones()).toHaveLength(1);
    await down('t1', false);
    repo.write('a.yaml', item('a', 't1', 'A1'));
    repo.commit('revert: a is back');
    clock += 1_000; // the removal is not due yet
    await engine.pass();
    clock += 2 * 3_600_000;
    await engine.pass();
    expect(world.device('t1').items.has('a')).toBe(true);
    expect(engine.store.tombstones({ all: true }).map((t) => t.state)).toEqual(['cancelled']);
  });

  test('moving a resource to another target keeps its row; a later removal from Git removes it there', async () => {
    await engine.pass();
    world.device('t2').latencyMs = 50; // the create on t2 finishes after the removal on t1
    repo.write('a.yaml', item('a', 't2', 'A1'));
    repo.commit('move a to t2');
    await engine.pass();
    expect(world.device('t1').items.has('a')).toBe(false);
    expect(engine.store.resources({ id: 'fake.Item/a' })).toMatchObject([{ target: 't2', status: 'converged' }]);
    repo.remove('a.yaml');
    repo.commit('remove a');
    await engine.pass();
    expect(world.device('t2').items.has('a')).toBe(false);
  });

  test('moved while the old target is down, then deleted: both removals happen', async () => {
    await engine.pass();
    await down('t1', true);
    repo.write('a.yaml', item('a', 't2', 'A1'));
    repo.commit('move a to t2');
    await engine.pass();
    repo.remove('a.yaml');
    repo.commit('remove a');
    await engine.pass();
    await down('t1', false);
    for (let i = 0; i < 3; i++) {
      clock += 2 * 3_600_000;
      await engine.pass();
    }
    expect(world.device('t1').items.has('a')).toBe(false);
    expect(world.device('t2').items.has('a')).toBe(false);
    expect(engine.store.tombstones()).toEqual([]);
  });

  test('a dependency is not removed while the removal of its dependent backs off', async () => {
    repo.write('a.yaml', `${item('a', 't1', 'A1')}---\n${item('x', 't2', 'X1', ', dependsOn: [fake.Item/a]')}`);
    repo.commit('x depends on a');
    await engine.pass();
    await down('t2', true);
    repo.write('a.yaml', item('a', 't1', 'A1'));
    repo.commit('remove x');
    await engine.pass();
    repo.write('a.yaml', '');
    repo.commit('remove a');
    clock += 1_000;
    await engine.pass();
    expect(world.device('t1').items.has('a')).toBe(true); // x is still on t2: a must wait
    await down('t2', false);
    clock += 2 * 3_600_000;
    await engine.pass();
    clock += 2 * 3_600_000;
    await engine.pass();
    expect(world.device('t2').items.has('x')).toBe(false);
    expect(world.device('t1').items.has('a')).toBe(false);
  });

  test('the retry delay of a resource that keeps failing grows across passes', async () => {
    await engine.close();
    engine = await open({ maxAttempts: 1, retryAfter: '1m', maxRetryAfter: '1h' });
    world.device('t1').failWrites = 1000;
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      await engine.pass();
      const row = engine.store.resources({ id: 'fake.Item/a' })[0]!;
      delays.push(row.nextAttemptAt! - clock);
      clock = row.nextAttemptAt! + 1;
    }
    expect(Math.max(...delays)).toBeGreaterThan(20 * 60_000);
    expect(delays[7]!).toBeGreaterThan(delays[0]! * 4);
  });

  test('dependents of work cancelled by a superseded pass are cancelled, not blocked', async () => {
    repo.write('a.yaml', `${item('a', 't1', 'A1')}---\n${item('b', 't1', 'B1', ', dependsOn: [fake.Item/a]')}`);
    repo.commit('b depends on a');
    const stop = new AbortController();
    const report = await engine.pass({ stop: stop.signal, onPlan: () => stop.abort() });
    expect(report.run!.results.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect(engine.store.resources({}).filter((r) => r.kind === 'fake.Item').map((r) => r.status)).toEqual(['pending', 'pending']);
    expect(engine.store.events({}).filter((e) => e.type === 'fail')).toEqual([]);
  });

  test('a dependency whose drift is only reported does not block its dependents', async () => {
    const docs = (b: string): string => `${item('a', 't1', 'A1', ', drift: report')}---\n${item('b', 't1', b, ', dependsOn: [fake.Item/a]')}`;
    repo.write('a.yaml', docs('B1'));
    repo.commit('b depends on a, which only reports drift');
    await engine.pass();
    world.device('t1').items.set('a', { value: 'changed by hand' });
    await engine.pass({ sweep: true });
    repo.write('a.yaml', docs('B2'));
    repo.commit('change b');
    await engine.pass();
    expect(world.device('t1').items.get('b')?.value).toBe('B2');
  });

  test('a fix for a failed resource is applied by the next pass even if its first pass was superseded', async () => {
    world.device('t1').failWrites = 1;
    await engine.pass();
    expect(engine.store.resources({ id: 'fake.Item/a' })[0]?.status).toBe('failed');
    repo.write('a.yaml', item('a', 't1', 'A2'));
    repo.commit('fix');
    const stop = new AbortController();
    await engine.pass({ stop: stop.signal, onPlan: () => stop.abort() });
    clock += 5_000; // far less than the failed spec's backoff
    await engine.pass();
    expect(world.device('t1').items.get('a')?.value).toBe('A2');
  });

  test('a Target that moved to a new address is re-read by a cold first pass too (apply --once)', async () => {
    repo.write('targets.yaml', target('t1', 'old-host'));
    repo.commit('t1 at old-host');
    await engine.pass();
    repo.write('targets.yaml', target('t1', 'new-host'));
    repo.commit('rebuilt machine: new address');
    await engine.close();
    engine = await open();
    const report = await engine.pass();
    expect(world.device('new-host').items.get('a')?.value).toBe('A1');
    expect(report.converged).toBe(true);
  });
});
