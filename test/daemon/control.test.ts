import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { callDaemon } from '../../src/cli/control-client.js';
import { loadConfigFile, type Config } from '../../src/daemon/config.js';
import { ControlServer } from '../../src/daemon/control.js';
import { Daemon, type PassEvent } from '../../src/daemon/daemon.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
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
    engine = await Engine.open({ config, providers: [fakeProvider(world)], log: silentLog, env: {} });
    daemon = new Daemon(engine, config, silentLog);
    control = new ControlServer({ socketPath: socket(), daemon, store: engine.store, log: silentLog, reload: () => daemon.reconfigure(loadConfigFile(configFile)) });
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
    await callDaemon(socket(), '/v1/pause', { selector: 'fake.Item/a', reason: 'maintenance', by: 'alice', untilMs: 150 });
    world.device('t1').items.set('a', { value: 'edited' });
    await callDaemon(socket(), '/v1/sync', { only: ['t1'], wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('edited');
    await new Promise((r) => setTimeout(r, 200));
    await callDaemon(socket(), '/v1/sync', { only: ['t1'], wait: true, by: 'bob' }, () => {});
    expect(world.device('t1').items.get('a')?.value).toBe('A1');
  });

  test('bad requests are refused with a reason', async () => {
    expect(await callDaemon(socket(), '/v1/pause', { selector: 'nope', reason: 'x', by: 'a' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('nothing called nope') } });
    expect(await callDaemon(socket(), '/v1/pause', { selector: 't1', reason: ' ', by: 'a' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('needs a reason') } });
    expect(await callDaemon(socket(), '/v1/resume', { selector: 't2', by: 'a' })).toMatchObject({ status: 404 });
    expect(await callDaemon(socket(), '/v1/sync', { only: ['../etc'], by: 'a' })).toMatchObject({ status: 400 });
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
