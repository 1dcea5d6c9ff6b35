import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
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
