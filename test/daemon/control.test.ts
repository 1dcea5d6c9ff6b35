import { statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { callDaemon } from '../../src/cli/control-client.js';
import { syncCommand } from '../../src/cli/control.js';
import { loadConfigFile, type Config } from '../../src/daemon/config.js';
import { ControlServer } from '../../src/daemon/control.js';
import { Daemon, type PassEvent } from '../../src/daemon/daemon.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { StateError } from '../../src/errors.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

const target = (name: string): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: fake, address: ${name} }\n`;
const item = (name: string, on: string, value: string): string => `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${name}, target: ${on} }\nspec: { value: "${value}" }\n`;

describe('control socket', () => {
  let repo: TempRepo;
  let world: FakeWorld;
  let engine: Engine;
  let daemon: Daemon;
  let control: ControlServer;
  let running: Promise<void>;
  let config: Config;
  let configFile: string;
  /** The engine's clock: a pause ends when the test moves it, not when a timer races the sync. */
  let clock: number;
  const socket = (): string => config.control.socket;

  beforeEach(async () => {
    repo = new TempRepo();
    world = new FakeWorld();
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
    repo.write('items.yaml', `${item('a', 't1', 'A1')}---\n${item('b', 't2', 'B1')}`);
    repo.commit('A');
    const dir = tempDir('plumb-control-');
    configFile = join(dir, 'plumb.yaml');
    writeFileSync(configFile, `repo:\n  url: ${repo.dir}\n  pollInterval: 1h\nstateDir: ${join(dir, 'state')}\nsweep:\n  interval: 1h\n`);
    config = loadConfigFile(configFile);
    clock = 1_800_000_000_000;
    engine = await Engine.open({ config, providers: [fakeProvider(world)], log: silentLog, env: {}, now: () => clock });
    daemon = new Daemon(engine, config, silentLog);
    control = new ControlServer({ socketPath: socket(), daemon, store: engine.store, log: silentLog, reload: () => daemon.reconfigure(loadConfigFile(configFile)), resolve: (input) => engine.resolve(input) });
    await control.listen();
    const first = new Promise<void>((resolve) => (daemon.onPass = () => resolve()));
    running = daemon.run();
    await first; // the start-up sweep
  });

  afterEach(async () => {
    await daemon.stop();
    await running;
    await control.close();
    await engine.close();
    repo.cleanup();
  });

  test('the socket is 0660: access is membership of its group', () => {
    expect(statSync(socket()).mode & 0o777).toBe(0o660);
  });

  test('sync --wait streams the pass as it goes, then a summary', async () => {
    world.device('t1').items.set('a', { value: 'edited by hand' });
    const events: PassEvent[] = [];
    const res = await callDaemon(socket(), '/v1/sync', { only: ['t1'], wait: true, by: 'alice' }, (e) => events.push(e as PassEvent));
    expect(res.status).toBe(200);
    expect(events[0]).toMatchObject({ type: 'plan', total: 1 });
    expect(events[1]).toMatchObject({ type: 'result', result: { id: 'fake.Item/a', status: 'changed', cause: 'drift' } });
    expect(events[2]).toMatchObject({ type: 'done', converged: true, stopped: false });
    expect(world.device('t1').items.get('a')?.value).toBe('A1');
    expect(world.calls.some((c) => c.includes('t2'))).toBe(true); // only the start-up sweep touched t2
  });

  test('a paused target is neither changed nor remediated; status says who, why and until when; resume catches up', async () => {
    const res = await callDaemon(socket(), '/v1/pause', { selector: 't1', reason: 'INC-42 hotfix by hand', by: 'alice' });
    expect(res.status).toBe(200);
    world.device('t1').items.set('a', { value: 'hotfix' });
    repo.write('items.yaml', `${item('a', 't1', 'A2')}---\n${item('b', 't2', 'B2')}`);
    repo.commit('change both');
    world.calls.length = 0;
    await callDaemon(socket(), '/v1/sync', { wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('hotfix');
    expect(world.device('t2').items.get('b')?.value).toBe('B2');
    expect(world.calls.filter((c) => c.includes(' t1 '))).toEqual([]); // not even read
    expect(engine.store.pauses()).toMatchObject([{ selector: 't1', by: 'alice', reason: 'INC-42 hotfix by hand', until: null }]);

    const resumed = await callDaemon(socket(), '/v1/resume', { selector: 't1', by: 'alice' });
    expect(resumed.status).toBe(200);
    await callDaemon(socket(), '/v1/sync', { only: ['t1'], wait: true, by: 'alice' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('A2');
    expect(engine.store.events({}).map((e) => e.type)).toEqual(expect.arrayContaining(['pause', 'resume']));
  });

  test('a pause with --for ends by itself', async () => {
    await callDaemon(socket(), '/v1/pause', { selector: 'fake.Item/a', reason: 'maintenance', by: 'alice', untilMs: 60_000 });
    world.device('t1').items.set('a', { value: 'edited' });
    await callDaemon(socket(), '/v1/sync', { only: ['t1'], wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('edited');
    clock += 59_999;
    await callDaemon(socket(), '/v1/sync', { only: ['t1'], wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('edited');
    clock += 1;
    await callDaemon(socket(), '/v1/sync', { only: ['t1'], wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('A1');
  });

  test('bad requests are refused with a reason', async () => {
    expect(await callDaemon(socket(), '/v1/pause', { selector: 'nope', reason: 'x', by: 'a' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('nothing called nope') } });
    expect(await callDaemon(socket(), '/v1/pause', { selector: 't1', reason: ' ', by: 'a' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('needs a reason') } });
    expect(await callDaemon(socket(), '/v1/resume', { selector: 't2', by: 'a' })).toMatchObject({ status: 404 });
    expect(await callDaemon(socket(), '/v1/sync', { only: ['../etc'], by: 'a' })).toMatchObject({ status: 400 });
  });

  test('Target/x names the target x: pause, resume and sync selections', async () => {
    expect(await callDaemon(socket(), '/v1/pause', { selector: 'Target/t1', reason: 'incident', by: 'alice' })).toMatchObject({ status: 200, body: { paused: 't1' } });
    repo.write('items.yaml', `${item('a', 't1', 'A2')}---\n${item('b', 't2', 'B1')}`);
    repo.commit('change a');
    await callDaemon(socket(), '/v1/sync', { only: ['Target/t1'], wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('A1');
    expect(await callDaemon(socket(), '/v1/resume', { selector: 'Target/t1', by: 'alice' })).toMatchObject({ status: 200, body: { resumed: 't1' } });
    await callDaemon(socket(), '/v1/sync', { wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('A2');
  });

  test('sync without selections converges the new commit only; all: true re-reads everything', async () => {
    world.device('t2').items.set('b', { value: 'edited by hand' });
    const events: PassEvent[] = [];
    await callDaemon(socket(), '/v1/sync', { wait: true, by: 'bob' }, (e) => events.push(e as PassEvent));
    expect(events[0]).toMatchObject({ type: 'plan', total: 0 });
    expect(world.device('t2').items.get('b')?.value).toBe('edited by hand');
    await callDaemon(socket(), '/v1/sync', { all: true, wait: true, by: 'bob' }, () => {});
    expect(world.device('t2').items.get('b')?.value).toBe('B1');
    expect(await callDaemon(socket(), '/v1/sync', { all: true, only: ['t1'], by: 'bob' })).toMatchObject({ status: 400 });
  });

  test('a pass is superseded by a newer commit at most once, so a stream of commits cannot starve it', async () => {
    const items = (value: string): string => ['c1', 'c2', 'c3', 'c4', 'c5'].map((n) => item(n, 't1', value)).join('---\n');
    repo.write('more.yaml', items('1'));
    repo.commit('five more on t1');
    await daemon.request('delta');
    world.device('t1').latencyMs = 40;
    for (const n of ['c1', 'c2', 'c3', 'c4', 'c5']) world.device('t1').items.set(n, { value: 'drifted' });
    const plans: string[] = [];
    const served = daemon.request('sweep', {
      onEvent: (e) => {
        if (e.type !== 'plan') return;
        plans.push(e.commit);
        // Each pass that starts is followed by a newer commit while it runs.
        setTimeout(() => {
          repo.write('more.yaml', items(String(plans.length + 1)));
          repo.commit(`commit ${plans.length + 1}`);
          daemon.poke();
        }, 60);
      },
    });
    const report = await served;
    expect(plans).toHaveLength(2); // the first pass was superseded; the second ran to the end
    expect(report!.run!.results.some((r) => r.status === 'cancelled')).toBe(false);
    expect(report!.commit).toBe(plans[1]);
    await daemon.request('delta'); // the commit that arrived meanwhile is next
    expect(world.device('t1').items.get('c1')?.value).toBe('3');
  });

  test('plumb sync --wait prints the pass and exits by its outcome; --all with selections is a usage error', async () => {
    const lines: string[] = [];
    const out = { isTTY: false, columns: 80, write: (text: string) => void lines.push(text) };
    repo.write('items.yaml', `${item('a', 't1', 'A2')}---\n${item('b', 't2', 'B1')}`);
    repo.commit('change a');
    expect(await syncCommand([], { config: configFile, wait: true }, out, {})).toBe(0);
    expect(lines.join('')).toMatch(/update +fake\.Item\/a on t1/);
    expect(lines.at(-1)).toMatch(/: 1 changed, 0 failed or blocked, 0 paused\n$/);
    world.device('t2').items.set('b', { value: 'edited by hand' });
    world.device('t2').failWrites = 100;
    lines.length = 0;
    expect(await syncCommand([], { config: configFile, wait: true, all: true }, out, {})).toBe(1);
    expect(lines.at(-1)).toMatch(/0 changed, 1 failed or blocked/);
    await expect(syncCommand(['t1'], { config: configFile, all: true }, out, {})).rejects.toThrow(/not both/);
  });

  test('a reload without "by" is refused before anything is re-read', async () => {
    writeFileSync(configFile, `repo:\n  url: ${repo.dir}\n  pollInterval: 1h\nstateDir: ${config.stateDir}\nsweep:\n  interval: 1h\nrun:\n  concurrency: 4\n`);
    expect(await callDaemon(socket(), '/v1/reload', {})).toMatchObject({ status: 400, body: { error: '"by" is required' } });
    expect(engine.config.run.concurrency).toBe(64);
  });

  test('reload applies run-time settings and refuses those that need a restart', async () => {
    writeFileSync(configFile, `repo:\n  url: ${repo.dir}\n  pollInterval: 30s\nstateDir: ${config.stateDir}\nsweep:\n  interval: 5m\nrun:\n  concurrency: 4\n`);
    expect(await callDaemon(socket(), '/v1/reload', { by: 'alice' })).toEqual({ status: 200, body: { reloaded: ['repo.pollInterval', 'run', 'sweep.interval'] } });
    expect(engine.config.run.concurrency).toBe(4);
    writeFileSync(configFile, `repo:\n  url: ${repo.dir}\n  branch: other\nstateDir: ${config.stateDir}\n`);
    const refused = await callDaemon(socket(), '/v1/reload', { by: 'alice' });
    expect(refused).toMatchObject({ status: 409, body: { error: expect.stringContaining('changing repo.branch') } });
    expect(engine.config.repo.branch).toBe('main');
  });
});

describe('control socket edges', () => {
  test('close() does not wait for a client that sent half a request', async () => {
    const socketPath = join(tempDir('plumb-sock-'), 'p.sock');
    const control = new ControlServer({ socketPath, daemon: { busy: false } as never, store: {} as never, log: silentLog, reload: () => [], resolve: () => 0 });
    await control.listen();
    const client = connect(socketPath);
    await new Promise((resolve) => client.once('connect', resolve));
    client.write('POST /v1/sync HTTP/1.1\r\nHost: x\r\n');
    const closed = await Promise.race([control.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still open after 3s'), 3000))]);
    client.destroy();
    expect(closed).toBe('closed');
  });

  test('a pass that breaks answers sync --wait with the error, and the daemon goes on', async () => {
    let passes = 0;
    const engine = {
      pass: async () => {
        passes++;
        if (passes === 2) throw new StateError('database is locked');
        return { commit: 'c'.repeat(40), fetched: null, converged: true, timings: { fetchMs: 0, loadMs: 0, planMs: 0, runMs: 0 }, filesRead: 0 };
      },
      pool: { closeIdle: async () => {} },
      store: { nextRetryAt: () => null, isKnown: () => true },
    } as unknown as Engine;
    const dir = tempDir('plumb-control-');
    const configFile = join(dir, 'plumb.yaml');
    writeFileSync(configFile, `repo:\n  url: /nowhere\n  pollInterval: 1h\nstateDir: ${join(dir, 'state')}\nsweep:\n  interval: 1h\n`);
    const config = loadConfigFile(configFile);
    const daemon = new Daemon(engine, config, silentLog);
    const control = new ControlServer({ socketPath: join(dir, 'p.sock'), daemon, store: engine.store, log: silentLog, reload: () => [], resolve: () => 0 });
    await control.listen();
    const running = daemon.run();
    try {
      const events: unknown[] = [];
      const res = await callDaemon(join(dir, 'p.sock'), '/v1/sync', { wait: true, by: 'bob' }, (e) => events.push(e));
      expect(res.status).toBe(200);
      expect(events.at(-1)).toMatchObject({ type: 'done', converged: false, error: 'PLUMB_STATE: database is locked', stopped: false });
      expect(await daemon.request('delta')).toMatchObject({ converged: true });
    } finally {
      await daemon.stop();
      await running;
      await control.close();
    }
  });
});
