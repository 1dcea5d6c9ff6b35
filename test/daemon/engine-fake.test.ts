import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

const target = (name: string, address = name): string => `apiVersion: plumb/v1
kind: Target
metadata: { name: ${name} }
spec: { provider: fake, address: ${address} }
`;
const item = (name: string, on: string, value: string, meta = ''): string => `apiVersion: plumb/v1
kind: fake.Item
metadata: { name: ${name}, target: ${on}${meta} }
spec: { value: "${value}" }
`;

describe('engine scenarios (fake provider)', () => {
  let repo: TempRepo;
  let world: FakeWorld;
  let engine: Engine;
  let stateDir: string;

  const open = async (): Promise<Engine> =>
    Engine.open({
      config: compileConfig({ repo: { url: repo.dir, branch: 'main' }, stateDir, run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms' } }),
      providers: [fakeProvider(world)],
      log: silentLog,
      env: {},
    });

  beforeEach(async () => {
    repo = new TempRepo();
    world = new FakeWorld();
    stateDir = tempDir('plumb-state-');
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
    repo.write('t1.yaml', `${item('a', 't1', 'A1')}---\n${item('b', 't1', 'B1')}`);
    repo.write('t2.yaml', `${item('c', 't2', 'C1')}---\n${item('d', 't2', 'D1')}`);
    repo.commit('A');
    engine = await open();
  });

  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('commit A converges; a second pass with no new commit touches no target', async () => {
    const first = await engine.pass();
    expect(first.converged).toBe(true);
    expect(world.totalWrites).toBe(4);
    expect(world.device('t1').items.get('a')).toEqual({ value: 'A1' });
    expect(engine.store.source().appliedCommit).toBe(repo.head());

    world.calls.length = 0;
    const second = await engine.pass();
    expect(second.run?.results).toEqual([]);
    expect(world.calls).toEqual([]);
  });

  test('a sweep reads everything and writes nothing when converged', async () => {
    await engine.pass();
    world.calls.length = 0;
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run?.results.map((r) => r.status)).toEqual(['converged', 'converged', 'converged', 'converged']);
    expect(world.calls.filter((c) => c.startsWith('read'))).toHaveLength(4);
    expect(world.calls.filter((c) => !c.startsWith('read'))).toEqual([]);
  });

  test('commit B edits one file: only its resources are touched', async () => {
    await engine.pass();
    repo.write('t1.yaml', `${item('a', 't1', 'A2')}---\n${item('b', 't1', 'B1')}`);
    repo.commit('B');
    world.calls.length = 0;
    const report = await engine.pass();
    expect(report.filesRead).toBe(1);
    expect(world.calls).toEqual(['read t1 fake.Item/a', 'apply t1 fake.Item/a', 'read t1 fake.Item/a']);
    expect(world.device('t1').items.get('a')?.value).toBe('A2');
  });

  test('a resource moved to another file causes no op', async () => {
    await engine.pass();
    repo.write('t1.yaml', item('a', 't1', 'A1'));
    repo.write('moved/b.yaml', item('b', 't1', 'B1'));
    repo.commit('move b');
    world.calls.length = 0;
    const report = await engine.pass();
    expect(report.run?.results).toEqual([]);
    expect(world.calls).toEqual([]);
    expect(engine.store.resources({ id: 'fake.Item/b' })[0]?.file).toBe('moved/b.yaml');
  });

  test('a deleted file leaves tombstones until removal is confirmed', async () => {
    await engine.pass();
    world.device('t2').unreachable = true;
    repo.remove('t2.yaml');
    repo.commit('delete t2 items');
    await engine.close();
    engine = await open();
    const report = await engine.pass();
    expect(report.run?.results.map((r) => r.status).sort()).toEqual(['failed', 'failed']);
    expect(engine.store.tombstones().map((t) => t.resourceId).sort()).toEqual(['fake.Item/c', 'fake.Item/d']);
    expect(world.device('t2').items.size).toBe(2);

    world.device('t2').unreachable = false;
    await new Promise((r) => setTimeout(r, 5));
    const retry = await engine.pass();
    expect(retry.run?.results.map((r) => r.status)).toEqual(['deleted', 'deleted']);
    expect(engine.store.tombstones()).toEqual([]);
    expect(world.device('t2').items.size).toBe(0);
    expect(engine.store.tombstones({ all: true }).map((t) => t.state)).toEqual(['done', 'done']);
  });

  test('Retain forgets without removing', async () => {
    repo.write('t1.yaml', `${item('a', 't1', 'A1', ', deletionPolicy: Retain')}---\n${item('b', 't1', 'B1')}`);
    repo.commit('retain a');
    await engine.pass();
    repo.write('t1.yaml', item('b', 't1', 'B1'));
    repo.commit('remove a');
    world.calls.length = 0;
    await engine.pass();
    expect(world.calls).toEqual([]);
    expect(world.device('t1').items.has('a')).toBe(true);
    expect(engine.store.tombstones({ all: true })).toMatchObject([{ resourceId: 'fake.Item/a', state: 'retained', policy: 'Retain' }]);
    expect(engine.store.resources({ id: 'fake.Item/a' })).toEqual([]);
  });

  test('an invalid commit applies and deletes nothing, status shows file:line:col, the fix converges', async () => {
    await engine.pass();
    repo.write('t1.yaml', `${item('a', 't1', 'A9')}---\napiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: b, target: t1 }\nspec: { value: "B9", colour: red }\n`);
    repo.remove('t2.yaml');
    const bad = repo.commit('bad');
    world.calls.length = 0;
    const report = await engine.pass();
    expect(report.rejected?.commit).toBe(bad);
    expect(world.calls.filter((c) => !c.startsWith('read'))).toEqual([]);
    expect(world.device('t1').items.get('a')?.value).toBe('A1');
    expect(world.device('t2').items.size).toBe(2);
    const source = engine.store.source();
    expect(source.rejectedCommit).toBe(bad);
    expect(source.diagnostics).toMatchObject([{ file: 't1.yaml', line: 9, col: 22, message: expect.stringContaining('unknown field "colour"') }]);
    expect(engine.store.tombstones()).toEqual([]);

    repo.write('t1.yaml', `${item('a', 't1', 'A9')}---\n${item('b', 't1', 'B9')}`);
    repo.commit('fix');
    const fixed = await engine.pass();
    expect(fixed.rejected).toBeUndefined();
    expect(world.device('t1').items.get('a')?.value).toBe('A9');
    expect(world.device('t2').items.size).toBe(0);
    expect(engine.store.source().rejectedCommit).toBeNull();
  });

  test('previousNames turns delete + create into a rename', async () => {
    await engine.pass();
    repo.write('t1.yaml', `${item('a2', 't1', 'A1', ', previousNames: [a]')}---\n${item('b', 't1', 'B1')}`);
    repo.commit('rename a');
    await engine.pass();
    expect(engine.store.tombstones({ all: true })).toEqual([]);
    expect(engine.store.resources({ id: 'fake.Item/a' })).toEqual([]);
    expect(engine.store.resources({ id: 'fake.Item/a2' })[0]?.appliedCommit).not.toBeNull();
    expect(engine.store.events({ resourceId: 'fake.Item/a2' }).map((e) => e.type)).toContain('rename');
  });

  test('drift is remediated and labelled as drift; report-only drift is recorded and left alone', async () => {
    repo.write('t2.yaml', `${item('c', 't2', 'C1')}---\n${item('d', 't2', 'D1', ', drift: report')}`);
    repo.commit('d reports drift');
    await engine.pass();
    world.device('t1').items.set('a', { value: 'tampered' });
    world.device('t2').items.set('d', { value: 'tampered' });
    const sweep = await engine.pass({ sweep: true });
    const byId = new Map(sweep.run!.results.map((r) => [r.id, r]));
    expect(byId.get('fake.Item/a')).toMatchObject({ status: 'changed', cause: 'drift' });
    expect(byId.get('fake.Item/d')).toMatchObject({ status: 'drifted', cause: 'drift' });
    expect(world.device('t1').items.get('a')?.value).toBe('A1');
    expect(world.device('t2').items.get('d')?.value).toBe('tampered');
    expect(engine.store.events({ resourceId: 'fake.Item/a' })[0]).toMatchObject({ type: 'update', cause: 'drift' });
    expect(engine.store.resources({ id: 'fake.Item/d' })[0]?.status).toBe('drifted');
  });

  test('a dead target does not stall the others, and a hung operation is cancelled by its deadline', async () => {
    await engine.close();
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir, run: { opTimeout: '200ms', maxAttempts: 1 } }),
      providers: [fakeProvider(world)],
      log: silentLog,
      env: {},
    });
    world.device('t1').hang = true;
    const started = Date.now();
    const report = await engine.pass();
    const byId = new Map(report.run!.results.map((r) => [r.id, r]));
    expect(byId.get('fake.Item/c')?.status).toBe('changed');
    expect(byId.get('fake.Item/a')).toMatchObject({ status: 'failed', error: { code: 'PLUMB_TIMEOUT' } });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(report.converged).toBe(false);
  });

  test('retryable failures are retried with backoff within the pass', async () => {
    world.device('t1').failWrites = 1;
    const report = await engine.pass();
    const a = report.run!.results.find((r) => r.id === 'fake.Item/a')!;
    expect(a).toMatchObject({ status: 'changed', attempts: 2 });
    expect(world.device('t1').items.get('a')?.value).toBe('A1');
  });

  test('a crash between apply and its journal entry: the restart re-reads, records it applied, and a later deletion removes it', async () => {
    // What a kill -9 right after the target was written leaves behind: an open intent, the item on the device, no applied record.
    world.device('t2').unreachable = true;
    const first = await engine.pass();
    expect(first.run?.results.find((r) => r.id === 'fake.Item/c')?.status).toBe('failed');
    world.device('t2').unreachable = false;
    engine.store.journalIntent({ id: 'fake.Item/c', kind: 'fake.Item', target: 't2', action: 'create', cause: 'intent', commit: repo.head(), specHash: 'x', changes: [] });
    world.device('t2').items.set('c', { value: 'C1' });
    await engine.close();
    engine = await open();
    const restart = await engine.pass();
    expect(restart.run?.results.find((r) => r.id === 'fake.Item/c')).toMatchObject({ status: 'converged' });
    expect(engine.store.resources({ id: 'fake.Item/c' })[0]?.appliedCommit).toBe(repo.head());

    repo.write('t2.yaml', item('d', 't2', 'D1'));
    repo.commit('drop c');
    const deletion = await engine.pass();
    expect(deletion.run?.results.map((r) => [r.id, r.status])).toEqual([['fake.Item/c', 'deleted']]);
    expect(world.device('t2').items.has('c')).toBe(false);
  });
});

