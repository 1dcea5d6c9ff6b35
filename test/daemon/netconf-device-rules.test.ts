import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startNetconfLab, SW_NS, type NetconfLab } from '../providers/netconf/netconf-lab.js';

/**
 * Rules of real NETCONF servers (netconfd, yuma123 2.13) that the simulator
 * now keeps (see test/interop/netconf-contract.ts), as Plumb meets them:
 * a candidate with someone's uncommitted edits cannot be locked, and
 * <persist> is refused on a base:1.0 session even when the hello lists
 * :confirmed-commit:1.1.
 */
const vlanDoc = (name: string, target: string, id: number): string =>
  `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${name}, target: ${target} }\nspec:\n  keys: { vlans/vlan: [id] }\n  config:\n    vlans:\n      "@xmlns": ${SW_NS}\n      vlan:\n        - { id: ${id}, name: v${id} }\n`;

describe('NETCONF device rules', () => {
  let lab: NetconfLab;
  let repo: TempRepo;
  let engine: Engine;

  beforeAll(async () => {
    lab = await startNetconfLab(['sw1', 'sw2']);
  });
  afterAll(async () => {
    await lab.stop();
  });
  beforeEach(async () => {
    repo = new TempRepo();
    repo.write('targets.yaml', `${lab.targetDoc('sw1')}---\n${lab.targetDoc('sw2', '  framing: base:1.0\n')}`);
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-rules-'), run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '5s', opTimeout: '20s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('edits another client left uncommitted in the candidate (no lock held) do not keep Plumb out: they are discarded first', async () => {
    // Another client edits the candidate without locking it, and goes away.
    const s = await lab.open('sw1');
    await s.rpc(`<edit-config><target><candidate/></target><config><vlans xmlns="${SW_NS}"><vlan><id>901</id><name>stray</name></vlan></vlans></config></edit-config>`, 'edit-config', AbortSignal.timeout(5_000));
    await s.close();
    expect(lab.sim.device('sw1').candidate()).toContain('<id>901</id>');

    repo.write('sw1.yaml', vlanDoc('v700', 'sw1', 700));
    repo.commit('A');
    const pass = await engine.pass();
    expect(pass.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual([['netconf.Config/v700', 'changed', undefined]]);
    expect(lab.sim.device('sw1').running()).toContain('<id>700</id>');
    expect(lab.sim.device('sw1').running()).not.toContain('<id>901</id>');
  });

  test('a target on base:1.0 (framing: base:1.0) gets a confirmed commit without <persist>, though the hello lists :confirmed-commit:1.1', async () => {
    repo.write('sw2.yaml', vlanDoc('v800', 'sw2', 800));
    repo.commit('B');
    const pass = await engine.pass();
    expect(pass.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual([['netconf.Config/v800', 'changed', undefined]]);
    const device = lab.sim.device('sw2');
    expect(device.running()).toContain('<id>800</id>');
    expect(device.counters.confirmedCommits).toBe(1);
    expect(device.counters.confirms).toBe(1);
  });
});
