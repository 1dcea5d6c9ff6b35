import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
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

  describe('staged settings, long operations and unreadable secrets', () => {
    const setting = (name: string, value: string, extra = ''): string => `apiVersion: plumb/v1
kind: fake.Setting
metadata: { name: ${name}, target: t1 }
spec: { value: "${value}"${extra} }
`;

    test('a setting staged for the next reboot is pending-reboot, not a change to make again', async () => {
      repo.write('settings.yaml', setting('turbo', 'on'));
      repo.commit('stage turbo');
      const first = await engine.pass();
      expect(first.run!.results.find((r) => r.id === 'fake.Setting/turbo')).toMatchObject({ status: 'changed', note: 'value on is staged for the next reboot' });
      expect(engine.store.resources({ id: 'fake.Setting/turbo' })[0]).toMatchObject({ status: 'pending-reboot', statusDetail: 'value on is staged for the next reboot' });
      const writes = world.device('t1').writes;
      const sweep = await engine.pass({ sweep: true });
      expect(sweep.run!.results.find((r) => r.id === 'fake.Setting/turbo')).toMatchObject({ status: 'pending-reboot', action: 'noop' });
      expect(world.device('t1').writes).toBe(writes);
      expect(engine.store.events({ resourceId: 'fake.Setting/turbo' }).filter((e) => e.type === 'pending-reboot')).toHaveLength(1);
      expect(sweep.converged).toBe(true);
    });

    test('with reboot allowed: one reboot, then converged', async () => {
      repo.write('settings.yaml', setting('turbo', 'on', ', reboot: true'));
      repo.commit('turbo with reboot');
      const report = await engine.pass();
      expect(report.run!.results.find((r) => r.id === 'fake.Setting/turbo')?.status).toBe('changed');
      expect(world.device('t1').reboots).toBe(1);
      expect(world.device('t1').settings.get('turbo')).toEqual({ current: 'on' });
      expect(engine.store.resources({ id: 'fake.Setting/turbo' })[0]?.status).toBe('converged');
    });

    test('a crash after a reboot was issued: the restart waits for that reboot instead of issuing another', async () => {
      repo.write('settings.yaml', setting('turbo', 'on', ', reboot: true'));
      const head = repo.commit('turbo with reboot');
      world.device('t1').unreachable = true;
      await engine.pass(); // accepted; t1 unreachable, so nothing applied yet
      world.device('t1').unreachable = false;
      // What a kill -9 right after the reset leaves: an intent with the checkpoint, a device mid-reboot.
      const specHash = engine.store.recorded(['fake.Setting/turbo']).get('fake.Setting/turbo')!.specHash;
      const opId = engine.store.journalIntent({ id: 'fake.Setting/turbo', kind: 'fake.Setting', target: 't1', action: 'create', cause: 'intent', commit: head, specHash, changes: [] });
      engine.store.checkpoint(opId, { rebootIssuedAt: Date.now() });
      const d = world.device('t1');
      d.settings.set('turbo', { current: 'off', staged: 'on' });
      d.reboots = 1;
      d.rebootingUntil = Date.now() + 1_500; // still rebooting when the restarted engine reads
      await engine.close();
      engine = await open();
      const report = await engine.pass();
      expect(report.run!.results.find((r) => r.id === 'fake.Setting/turbo')?.status).toBe('changed');
      expect(d.reboots).toBe(1); // the one "issued before the crash"; the restart waited for it
      expect(d.settings.get('turbo')).toEqual({ current: 'on' });
    });

    test('a password is remembered only as a keyed hash; changing the secret is a change', async () => {
      repo.write('settings.yaml', setting('admin', 'x', ', reboot: true, password: env:FAKE_PW'));
      repo.commit('admin password');
      const withEnv = async (pw: string): Promise<Engine> =>
        Engine.open({ config: compileConfig({ repo: { url: repo.dir }, stateDir }), providers: [fakeProvider(world)], log: silentLog, env: { FAKE_PW: pw } });
      await engine.close();
      engine = await withEnv('first-password-123');
      const first = await engine.pass();
      expect(first.run!.results.find((r) => r.id === 'fake.Setting/admin'), JSON.stringify(first.run!.results)).toMatchObject({ status: 'changed' });
      const writes = world.device('t1').writes;
      const again = await engine.pass({ sweep: true });
      expect(again.run!.results.find((r) => r.id === 'fake.Setting/admin')?.status).toBe('converged');
      expect(world.device('t1').writes).toBe(writes);

      await engine.close();
      engine = await withEnv('second-password-456');
      const rotated = await engine.pass({ sweep: true });
      expect(rotated.run!.results.find((r) => r.id === 'fake.Setting/admin')).toMatchObject({ status: 'changed', changes: [{ path: '/password' }] });
      const db = readFileSync(join(stateDir, 'plumb.db')).toString('latin1') + (existsSync(join(stateDir, 'plumb.db-wal')) ? readFileSync(join(stateDir, 'plumb.db-wal')).toString('latin1') : '');
      expect(db).toContain('hmac-sha256:');
      expect(db).not.toContain('first-password-123');
      expect(db).not.toContain('second-password-456');
    });
  });
});


describe('operations in flight per target', () => {
  const cases: Array<{ title: string; provider: number | undefined; config: number | undefined; expected: number }> = [
    { title: "the provider's number (Provider.perTarget)", provider: 3, config: undefined, expected: 3 },
    { title: 'one, for a provider that says nothing', provider: undefined, config: undefined, expected: 1 },
    { title: 'run.perTarget in the config, over the provider', provider: 3, config: 1, expected: 1 },
  ];
  for (const c of cases) {
    test(c.title, async () => {
      const repo = new TempRepo();
      const world = new FakeWorld();
      repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
      repo.write('items.yaml', ['a', 'b', 'c', 'd', 'e', 'f'].flatMap((n) => [item(n, 't1', n), item(`${n}2`, 't2', n)]).join('---\n'));
      repo.commit('six on each');
      const engine = await Engine.open({
        config: compileConfig({ repo: { url: repo.dir, branch: 'main' }, stateDir: tempDir('plumb-state-'), run: { ...(c.config !== undefined ? { perTarget: c.config } : {}) } }),
        providers: [fakeProvider(world, c.provider !== undefined ? { perTarget: c.provider } : {})],
        log: silentLog,
        env: {},
      });
      try {
        let open!: () => void;
        const gate = new Promise<void>((resolve) => (open = resolve));
        world.device('t1').gate = gate;
        world.device('t2').gate = gate;
        const pass = engine.pass();
        // Held at the gate: each target has as many ops in flight as its lane lets in, the rest queue.
        await vi.waitFor(() => expect(world.inFlight).toBe(2 * c.expected), { timeout: 10_000 });
        open();
        const report = await pass;
        expect(report.converged).toBe(true);
        expect(world.maxInFlight).toBe(2 * c.expected);
      } finally {
        await engine.close();
        repo.cleanup();
      }
    });
  }
});
