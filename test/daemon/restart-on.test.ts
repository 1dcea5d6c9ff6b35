import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

/**
 * Subscriptions (ssh.Service restartOn, here fake.Service): a subscriber acts
 * once after what it subscribes to was written in the pass, never when nothing
 * was, and not for a write the target refused. Notifications are journaled with
 * the write's intent (the crash case runs against the SSH simulator in
 * test/daemon/ssh-service-sim.test.ts).
 */
const target = (name: string): string => `apiVersion: plumb/v1
kind: Target
metadata: { name: ${name} }
spec: { provider: fake, address: ${name} }
`;
const item = (name: string, value: string, on = 't1'): string => `apiVersion: plumb/v1
kind: fake.Item
metadata: { name: ${name}, target: ${on} }
spec: { value: "${value}" }
`;
const service = (name: string, restartOn: string[], running = true, on = 't1'): string => `apiVersion: plumb/v1
kind: fake.Service
metadata: { name: ${name}, target: ${on} }
spec: { running: ${running}, restartOn: [${restartOn.join(', ')}] }
`;

describe('restartOn (fake provider)', () => {
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
  const restarts = (): number => world.device('t1').services.get('web')?.restarts ?? 0;
  const write = (a: string, b: string, other = 'C1'): void => {
    repo.write('t1.yaml', [item('a', a), item('b', b), item('c', other), service('web', ['fake.Item/a', 'fake.Item/b'])].join('---\n'));
  };

  beforeEach(async () => {
    repo = new TempRepo();
    world = new FakeWorld();
    stateDir = tempDir('plumb-state-');
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
    write('A1', 'B1');
    repo.commit('A');
    engine = await open();
  });

  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('the first pass starts the service after its config, and a start is not followed by a restart', async () => {
    const first = await engine.pass();
    expect(first.converged).toBe(true);
    expect(world.device('t1').services.get('web')).toEqual({ running: true, restarts: 0 });
    const calls = world.calls.filter((c) => c.startsWith('apply'));
    expect(calls.indexOf('apply t1 fake.Service/web')).toBeGreaterThan(calls.indexOf('apply t1 fake.Item/a'));
    expect(calls.indexOf('apply t1 fake.Service/web')).toBeGreaterThan(calls.indexOf('apply t1 fake.Item/b'));
    expect(engine.store.notifiedIds()).toEqual([]);
  });

  test('two subscribed resources changed in one pass: one restart, after both writes', async () => {
    await engine.pass();
    write('A2', 'B2');
    repo.commit('B');
    world.calls.length = 0;
    const report = await engine.pass();
    expect(report.converged).toBe(true);
    expect(restarts()).toBe(1);
    const i = world.calls.indexOf('restart t1 fake.Service/web');
    expect(i).toBeGreaterThan(world.calls.indexOf('apply t1 fake.Item/a'));
    expect(i).toBeGreaterThan(world.calls.indexOf('apply t1 fake.Item/b'));
    expect(report.run?.results.find((r) => r.id === 'fake.Service/web')?.changes.map((c) => c.note)).toEqual(['restart: fake.Item/a, fake.Item/b changed']);
    expect(engine.store.notifiedIds()).toEqual([]);

    // The next pass has nothing to act on.
    world.calls.length = 0;
    await engine.pass({ sweep: true });
    expect(restarts()).toBe(1);
    expect(world.calls.filter((c) => c.startsWith('apply'))).toEqual([]);
  });

  test('never when nothing it subscribes to changed: another resource, or a subscribed one already as desired', async () => {
    await engine.pass();
    write('A1', 'B1', 'C2');
    repo.commit('only c');
    world.calls.length = 0;
    await engine.pass();
    expect(restarts()).toBe(0);
    // Not even read: nothing it subscribes to is in the plan.
    expect(world.calls.filter((c) => c.includes('fake.Service'))).toEqual([]);

    // a's new value is already on the device (someone set it): a reads converged, nothing was written.
    world.device('t1').items.set('a', { value: 'A3' });
    write('A3', 'B1', 'C2');
    repo.commit('a already there');
    world.calls.length = 0;
    const report = await engine.pass();
    expect(report.converged).toBe(true);
    expect(world.calls).toContain('read t1 fake.Service/web');
    expect(restarts()).toBe(0);
  });

  test('a refused write restarts nothing; its successful retry restarts once', async () => {
    await engine.pass();
    world.device('t1').refuseWrites = 1;
    write('A2', 'B1');
    repo.commit('a refused');
    const refused = await engine.pass();
    expect(refused.run?.results.find((r) => r.id === 'fake.Item/a')?.status).toBe('failed');
    expect(refused.run?.results.find((r) => r.id === 'fake.Service/web')?.status).toBe('blocked');
    expect(restarts()).toBe(0);
    expect(engine.store.notifiedIds()).toEqual([]);

    await engine.pass({ sweep: true });
    expect(world.device('t1').items.get('a')?.value).toBe('A2');
    expect(restarts()).toBe(1);
  });

  test('a write whose outcome is unknown keeps its notification: retried in the pass, still one restart', async () => {
    await engine.pass();
    world.device('t1').failWrites = 1; // the session drops mid-write: maybe written
    write('A2', 'B1');
    repo.commit('a lost');
    const report = await engine.pass();
    expect(report.converged).toBe(true);
    expect(restarts()).toBe(1);
  });

  test('drift: report on the service: a notification still restarts it (acting on a change is not drift)', async () => {
    const reported = service('web', ['fake.Item/a', 'fake.Item/b']).replace('target: t1 }', 'target: t1, drift: report }');
    repo.write('t1.yaml', [item('a', 'A1'), item('b', 'B1'), item('c', 'C1'), reported].join('---\n'));
    repo.commit('report');
    await engine.pass();
    repo.write('t1.yaml', [item('a', 'A2'), item('b', 'B1'), item('c', 'C1'), reported].join('---\n'));
    repo.commit('a changes');
    const report = await engine.pass();
    expect(report.converged).toBe(true);
    expect(report.run?.results.find((r) => r.id === 'fake.Service/web')).toMatchObject({ status: 'changed', cause: 'intent' });
    expect(restarts()).toBe(1);
    expect(engine.store.notifiedIds()).toEqual([]);
  });

  test('a stopped service is not restarted, and its notification is settled', async () => {
    repo.write('t1.yaml', [item('a', 'A1'), item('b', 'B1'), item('c', 'C1'), service('web', ['fake.Item/a', 'fake.Item/b'], false)].join('---\n'));
    repo.commit('stopped');
    await engine.pass();
    repo.write('t1.yaml', [item('a', 'A2'), item('b', 'B1'), item('c', 'C1'), service('web', ['fake.Item/a', 'fake.Item/b'], false)].join('---\n'));
    repo.commit('a changes');
    const report = await engine.pass();
    expect(report.converged).toBe(true);
    expect(restarts()).toBe(0);
    expect(engine.store.notifiedIds()).toEqual([]);
  });
});

describe('restartOn validation', () => {
  test.each([
    ['an unknown resource', [item('a', 'A1'), service('web', ['fake.Item/nope'])], /restartOn "fake.Item\/nope": no such resource in this commit/],
    ['a resource on another target', [item('a', 'A1', 't2'), service('web', ['fake.Item/a'])], /restartOn "fake.Item\/a" is on target t2, not t1/],
    ['itself', [service('web', ['fake.Service/web'])], /cannot act on its own changes \(restartOn\)/],
  ])('%s is a validation error at its place in restartOn', async (_what, docs, message) => {
    const repo = new TempRepo();
    try {
      repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
      repo.write('t1.yaml', docs.join('---\n'));
      repo.commit('bad');
      const engine = await Engine.open({
        config: compileConfig({ repo: { url: repo.dir, branch: 'main' }, stateDir: tempDir('plumb-state-') }),
        providers: [fakeProvider(new FakeWorld())],
        log: silentLog,
        env: {},
      });
      try {
        const report = await engine.pass();
        const d = report.rejected?.diagnostics.find((x) => message.test(x.message));
        expect(d, JSON.stringify(report.rejected)).toBeDefined();
        expect(d!.file).toBe('t1.yaml');
        // The position of the list entry, not of the document.
        expect(d!.line).toBe(docs.length === 1 ? 4 : 9);
      } finally {
        await engine.close();
      }
    } finally {
      repo.cleanup();
    }
  });
});
