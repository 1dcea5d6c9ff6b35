import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { IF_NS, startNetconfLab, SW_NS, type NetconfLab } from '../providers/netconf/netconf-lab.js';

/**
 * Engine-level scenarios on simulated NETCONF switches: a temp git repo
 * converged through the real provider; the simulator's counters say what each
 * pass did to each device.
 */
const vlanDoc = (name: string, target: string, id: number, vlanName: string, extra = ''): string =>
  `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${name}, target: ${target}${extra} }\nspec:\n  keys: { vlans/vlan: [id] }\n  config:\n    vlans:\n      "@xmlns": ${SW_NS}\n      vlan:\n        - { id: ${id}, name: ${vlanName} }\n`;
const eth1EnabledDoc = (name: string, target: string): string =>
  `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${name}, target: ${target} }\nspec:\n  keys: { interfaces/interface: [name] }\n  config:\n    interfaces:\n      "@xmlns": ${IF_NS}\n      interface:\n        - { name: eth1, enabled: false }\n`;

const engineConfig = (repo: TempRepo, stateDir: string) =>
  compileConfig({ repo: { url: repo.dir }, stateDir, run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '5s', opTimeout: '20s' } });

describe('NETCONF scenarios', () => {
  let lab: NetconfLab;
  let repo: TempRepo;
  let engine: Engine;
  let stateDir: string;

  beforeAll(async () => {
    lab = await startNetconfLab(['sw1', 'sw2']);
  });
  afterAll(async () => {
    await lab.stop();
  });
  beforeEach(async () => {
    for (const d of lab.sim.devices) d.faults = {};
    repo = new TempRepo();
    stateDir = tempDir('plumb-state-');
    repo.write('targets.yaml', `${lab.targetDoc('sw1')}---\n${lab.targetDoc('sw2')}`);
    engine = await Engine.open({ config: engineConfig(repo, stateDir), providers: builtinProviders(), log: silentLog, env: {} });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });
  const dev = (name: string) => lab.sim.device(name);

  test('one transaction per target per pass; a converged pass sends no edit-config and no commit', async () => {
    repo.write('sw1.yaml', [vlanDoc('v100', 'sw1', 100, 'users'), vlanDoc('v200', 'sw1', 200, 'voice'), vlanDoc('v300', 'sw1', 300, 'cams', ', dependsOn: [netconf.Config/v100]')].join('---\n'));
    repo.write('sw2.yaml', vlanDoc('v400', 'sw2', 400, 'lab'));
    repo.commit('A');
    const before = { sw1: { ...dev('sw1').counters }, sw2: { ...dev('sw2').counters } };
    const first = await engine.pass();
    expect(first.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual([
      ['netconf.Config/v100', 'changed', undefined],
      ['netconf.Config/v200', 'changed', undefined],
      ['netconf.Config/v300', 'changed', undefined],
      ['netconf.Config/v400', 'changed', undefined],
    ]);
    const sw1 = dev('sw1').counters;
    expect(sw1.editConfigs - before.sw1.editConfigs).toBe(3);
    expect(sw1.confirmedCommits - before.sw1.confirmedCommits).toBe(1);
    expect(sw1.confirms - before.sw1.confirms).toBe(1);
    expect(dev('sw2').counters.confirmedCommits - before.sw2.confirmedCommits).toBe(1);
    expect(dev('sw1').running()).toMatch(/<id>100<\/id>[\s\S]*<id>200<\/id>[\s\S]*<id>300<\/id>/);

    const after = { sw1: { ...dev('sw1').counters }, sw2: { ...dev('sw2').counters } };
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run!.results.map((r) => r.status)).toEqual(['converged', 'converged', 'converged', 'converged']);
    for (const name of ['sw1', 'sw2'] as const) {
      expect(dev(name).counters.editConfigs).toBe(after[name].editConfigs);
      expect(dev(name).counters.commits).toBe(after[name].commits);
      expect(dev(name).counters.locks).toBe(after[name].locks);
    }
  });

  test('a change and a deletion in one commit are one transaction; deletion removes exactly what was owned', async () => {
    repo.write('sw1.yaml', [vlanDoc('v100', 'sw1', 100, 'users'), eth1EnabledDoc('eth1-off', 'sw1')].join('---\n'));
    repo.commit('A');
    await engine.pass();
    const eth1 = (): string => /<interface><name>eth1<\/name>.*?<\/interface>/.exec(dev('sw1').running())?.[0] ?? '';
    expect(eth1()).toContain('<enabled>false</enabled>');
    expect(eth1()).toContain('<description>access port</description>'); // not ours: left alone

    const before = { ...dev('sw1').counters };
    repo.write('sw1.yaml', vlanDoc('v100', 'sw1', 100, 'staff'));
    repo.commit('rename vlan 100, drop eth1-off');
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual([
      ['netconf.Config/v100', 'changed', undefined],
      ['netconf.Config/eth1-off', 'deleted', undefined],
    ]);
    expect(dev('sw1').counters.confirmedCommits - before.confirmedCommits).toBe(1);
    expect(eth1()).not.toContain('<enabled>');
    expect(eth1()).toContain('<description>access port</description>');
    expect(eth1()).toContain('ianaift:ethernetCsmacd');
    expect(dev('sw1').running()).toContain('<name>staff</name>');
    expect(engine.store.tombstones()).toEqual([]);
  });

  test('a device that refuses one edit fails the whole transaction, and changes nothing', async () => {
    repo.write('sw1.yaml', [vlanDoc('v110', 'sw1', 110, 'users'), vlanDoc('v210', 'sw1', 210, 'voice')].join('---\n'));
    repo.commit('A');
    const running = dev('sw1').running();
    dev('sw1').faults = { rpcError: { rpc: 'edit-config', tag: 'invalid-value', count: 100 } };
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.status, r.error?.code])).toEqual([
      ['failed', 'PLUMB_PROVIDER'],
      ['failed', 'PLUMB_PROVIDER'],
    ]);
    expect(dev('sw1').running()).toBe(running);
    expect(dev('sw1').lockHolders).toEqual({});
    dev('sw1').faults = {};
    await new Promise((r) => setTimeout(r, 10));
    const retried = await engine.pass();
    expect(retried.run!.results.map((r) => r.status)).toEqual(['changed', 'changed']);
  });
});

describe('kill -9 between commit and confirm', () => {
  const cli = join(packageRoot(), 'dist/src/cli/main.js');
  let lab: NetconfLab;
  let daemon: ChildProcess | undefined;

  beforeAll(async () => {
    lab = await startNetconfLab(['core1']);
  });
  afterAll(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    await lab.stop();
  });

  test('the device rolls back by itself after the confirm timeout, and Plumb converges it on restart', async () => {
    expect(existsSync(join(packageRoot(), 'dist/providers/netconf/index.js')), 'build first: npm run build').toBe(true);
    const dev = lab.sim.device('core1');
    const repo = new TempRepo();
    const stateDir = tempDir('plumb-nc-crash-');
    const config = join(tempDir('plumb-nc-crash-cfg-'), 'plumb.yaml');
    writeFileSync(config, `repo:\n  url: ${repo.dir}\n  pollInterval: 200ms\nstateDir: ${stateDir}\nrun:\n  retryAfter: 50ms\n  maxRetryAfter: 200ms\n  backoff: 20ms\n  maxBackoff: 100ms\nsweep:\n  interval: 0s\nlog:\n  level: warn\n`);
    repo.write('targets.yaml', lab.targetDoc('core1', '  confirmTimeout: 3s\n'));
    repo.write('vlans.yaml', vlanDoc('v100', 'core1', 100, 'old'));
    repo.commit('old');
    const first = await Engine.open({ config: engineConfig(repo, stateDir), providers: builtinProviders(), log: silentLog, env: {} });
    expect((await first.pass()).run!.results.map((r) => r.status)).toEqual(['changed']);
    await first.close();
    expect(dev.running()).toContain('<name>old</name>');

    repo.write('vlans.yaml', vlanDoc('v100', 'core1', 100, 'new'));
    repo.commit('new');
    // Slow RPCs widen the window between the confirmed commit and its confirmation (a re-read comes between).
    dev.faults = { latencyMs: 150 };
    const base = { ...dev.counters };
    daemon = spawn(process.execPath, [cli, 'daemon', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    daemon.stderr!.resume();
    const killedAt = await new Promise<number>((resolve, reject) => {
      const deadline = Date.now() + 30_000;
      const poll = setInterval(() => {
        if (dev.counters.confirmedCommits > base.confirmedCommits && dev.confirmedCommitPending) {
          clearInterval(poll);
          daemon!.kill('SIGKILL');
          resolve(Date.now());
        } else if (Date.now() > deadline || daemon!.exitCode !== null) {
          clearInterval(poll);
          reject(new Error('the daemon never reached a pending confirmed commit'));
        }
      }, 2);
    });
    await new Promise<void>((r) => (daemon!.exitCode !== null || daemon!.signalCode !== null ? r() : daemon!.once('exit', () => r())));
    dev.faults = {};
    expect(dev.counters.confirms).toBe(base.confirms);
    expect(dev.running()).toContain('<name>new</name>'); // running the unconfirmed config...

    // ...until the confirm timeout passes and the device rolls back by itself.
    while (dev.confirmedCommitPending && Date.now() - killedAt < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(dev.confirmedCommitPending).toBe(false);
    expect(Date.now() - killedAt).toBeGreaterThan(1_500);
    expect(dev.counters.rollbacks).toBe(base.rollbacks + 1);
    expect(dev.running()).toContain('<name>old</name>');
    expect(dev.running()).not.toContain('<name>new</name>');

    // Restart: the interrupted operation is re-read (not trusted), and converged.
    const restarted = await Engine.open({ config: engineConfig(repo, stateDir), providers: builtinProviders(), log: silentLog, env: {} });
    try {
      const report = await restarted.pass();
      expect(report.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual([['netconf.Config/v100', 'changed', undefined]]);
      expect(dev.running()).toContain('<name>new</name>');
      expect(dev.confirmedCommitPending).toBe(false);
      expect(dev.counters.confirms).toBe(base.confirms + 1);
      expect((await restarted.pass({ sweep: true })).run!.results.map((r) => r.status)).toEqual(['converged']);
    } finally {
      await restarted.close();
      repo.cleanup();
    }
  }, 60_000);
});
