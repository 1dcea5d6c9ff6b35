import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

/** A kind that writes in one call (KindHandler.applyBatch, like ssh.Package) gets one call per target and pass, and shares its reads (readMany). */
const target = (name: string): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: fake, address: ${name} }\n`;
const item = (name: string, on: string, value: string, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${name}, target: ${on}${meta} }\nspec: { value: "${value}" }\n`;
const setting = (name: string, on: string, value: string, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: fake.Setting\nmetadata: { name: ${name}, target: ${on}${meta} }\nspec: { value: "${value}" }\n`;

describe('per-kind batches', () => {
  let repo: TempRepo;
  let world: FakeWorld;
  let engine: Engine;

  beforeEach(async () => {
    repo = new TempRepo();
    world = new FakeWorld();
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
    repo.write('t1.yaml', [item('a', 't1', 'A1'), item('b', 't1', 'B1'), item('c', 't1', 'C1', ', dependsOn: [fake.Item/a]'), setting('s', 't1', 'S1')].join('---\n'));
    repo.write('t2.yaml', item('x', 't2', 'X1'));
    repo.commit('A');
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-state-'), run: { backoff: '5ms', maxBackoff: '10ms', maxAttempts: 3 } }),
      providers: [fakeProvider(world, { kindBatch: true })],
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('one read call and one write call for a target\'s items; other kinds and lone ops go their own way; each member recorded', async () => {
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.id, r.status]).sort()).toEqual([
      ['fake.Item/a', 'changed'],
      ['fake.Item/b', 'changed'],
      ['fake.Item/c', 'changed'],
      ['fake.Item/x', 'changed'],
      ['fake.Setting/s', 'changed'],
    ]);
    const t1 = world.calls.filter((c) => / t1 /.test(c) && !c.includes('fake.Setting'));
    expect(t1).toEqual(['readMany t1 fake.Item/a fake.Item/b fake.Item/c', 'batch t1 +fake.Item/a +fake.Item/b +fake.Item/c', 'readMany t1 fake.Item/a fake.Item/b fake.Item/c']);
    expect(world.calls.filter((c) => c.includes('t2'))).toEqual(['read t2 fake.Item/x', 'apply t2 fake.Item/x', 'read t2 fake.Item/x']);
    expect(world.calls.filter((c) => c.includes('fake.Setting'))).toEqual(['read t1 fake.Setting/s', 'apply t1 fake.Setting/s', 'read t1 fake.Setting/s']);
    // The memo each member's Applied carried is recorded for it.
    expect(engine.store.db.prepare('SELECT memo FROM resources WHERE id = ?').get('fake.Item/b')).toEqual({ memo: JSON.stringify({ batched: 'b' }) });
  });

  test('a converged pass costs one shared read and no write', async () => {
    await engine.pass();
    world.calls.length = 0;
    await engine.pass({ sweep: true });
    expect(world.calls.filter((c) => c.includes(' t1 ') && c.includes('fake.Item'))).toEqual(['readMany t1 fake.Item/a fake.Item/b fake.Item/c']);
    expect(world.device('t1').transactions).toEqual([3]);
  });

  test('a change and a deletion in one commit are one call, retried whole when it is lost', async () => {
    await engine.pass();
    repo.write('t1.yaml', [item('a', 't1', 'A2'), item('c', 't1', 'C1', ', dependsOn: [fake.Item/a]'), setting('s', 't1', 'S1')].join('---\n'));
    repo.commit('change a, delete b');
    world.device('t1').failTransactions = 1;
    const report = await engine.pass();
    expect(report.run!.results.filter((r) => r.id.startsWith('fake.Item') && r.target === 't1').map((r) => [r.id, r.status, r.attempts]).sort()).toEqual([
      ['fake.Item/a', 'changed', 2],
      ['fake.Item/b', 'deleted', 2],
    ]);
    expect(world.calls.filter((c) => c.startsWith('batch t1')).slice(-2)).toEqual(['batch t1 +fake.Item/a -fake.Item/b', 'batch t1 +fake.Item/a -fake.Item/b']);
    expect([...world.device('t1').items.entries()].sort()).toEqual([['a', { value: 'A2' }], ['c', { value: 'C1' }]]);
    expect(engine.store.tombstones()).toEqual([]);
  });

  test('a call that keeps failing fails every member, leaving no open intent', async () => {
    world.device('t1').failTransactions = 10;
    const report = await engine.pass();
    expect(report.run!.results.filter((r) => r.id.startsWith('fake.Item') && r.target === 't1').map((r) => r.status)).toEqual(['failed', 'failed', 'failed']);
    expect(world.device('t1').items.size).toBe(0);
    expect(engine.store.db.prepare("SELECT COUNT(*) AS n FROM ops WHERE state = 'intent'").get()).toEqual({ n: 0 });
  });
});
