/**
 * Plumb against BMCs that refuse a pointless reset the way real ones do: iDRAC
 * answers 409 "Server is already powered ON/OFF", iLO 400
 * InvalidOperationForSystemState. Plumb sends a reset only when the power state
 * it read calls for one, but the state can change between that read and the
 * reset (someone pressed the button, a graceful shutdown ended as its grace
 * period did). A refusal because the system already is where Plumb was taking
 * it is success, not a failure to record or a retry to spend. The change is
 * made exactly when the reset arrives (faults.onNext), never raced on a timer.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { profileSpec, type Profile, type SimBmc } from '../../fixtures/simulators/redfish/index.js';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startRedfishLab, type RedfishLab } from '../providers/redfish/redfish-lab.js';

const PROFILE_OF: Record<string, Profile> = { hpeOff: 'ilo', hpeShut: 'ilo', dellOn: 'idrac', dellOff: 'idrac', hpeOther: 'ilo' };
const BMCS = Object.keys(PROFILE_OF);

function doc(kind: string, name: string, spec: string): string {
  return `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: ${name} }\nspec:\n${spec}`;
}

describe('redfish: a reset refused because the system is already there', () => {
  let lab: RedfishLab;
  let repo: TempRepo;
  let engine: Engine;
  const bmc = (name: string): SimBmc => lab.sim.bmc(name);
  const resetPath = (name: string): string => profileSpec(PROFILE_OF[name]!).paths.resetAction;
  const journal = (id: string): string[] => (engine.store.db.prepare('SELECT state FROM ops WHERE resource_id = ? ORDER BY id').all(id) as Array<{ state: string }>).map((o) => o.state);

  beforeAll(async () => {
    lab = await startRedfishLab(BMCS, { profile: (name) => PROFILE_OF[name] ?? 'generic', resetDelayMs: 30, gracefulDelayMs: 30 });
  });
  afterAll(async () => {
    await lab.stop();
  });
  beforeEach(async () => {
    repo = new TempRepo();
    repo.write('targets.yaml', BMCS.map((n) => lab.targetYaml(n)).join('---\n'));
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-rf-strict-'), run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '2s', opTimeout: '20s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  async function passOnce(id: string): Promise<void> {
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.id, r.status, r.attempts, r.error?.message])).toEqual([[id, 'changed', 1, undefined]]);
    expect(journal(id)).toEqual(['done']);
  }

  test('iLO: powered off by someone just before Plumb\'s ForceOff (400 InvalidOperationForSystemState): done, not failed', async () => {
    const b = bmc('hpeOff');
    repo.write('s.yaml', doc('redfish.System', 'hpeOff', '  powerState: Off\n  powerOff: ForceOff\n'));
    repo.commit('off');
    const hook = b.faults.onNext('POST', resetPath('hpeOff'), () => (b.state.powerState = 'Off'), { body: { ResetType: 'ForceOff' } });
    await passOnce('redfish.System/hpeOff');
    expect(hook.fired).toBe(1);
    expect(b.requests('POST', resetPath('hpeOff')).map((r) => r.status)).toEqual([400]);
    expect([b.counters.resets, b.state.powerState]).toEqual([0, 'Off']);
  });

  test('iLO: the OS shut down on its own as Plumb\'s GracefulShutdown arrived: done', async () => {
    const b = bmc('hpeShut');
    repo.write('s.yaml', doc('redfish.System', 'hpeShut', '  powerState: Off\n'));
    repo.commit('off');
    b.faults.onNext('POST', resetPath('hpeShut'), () => (b.state.powerState = 'Off'), { body: { ResetType: 'GracefulShutdown' } });
    await passOnce('redfish.System/hpeShut');
    expect(b.requests('POST', resetPath('hpeShut')).map((r) => r.status)).toEqual([400]);
    // Never a ForceOff: the system was off.
    expect(b.counters.writesByPath[`POST ${resetPath('hpeShut')}`]).toBe(1);
  });

  test('iDRAC: powered on by someone just before Plumb\'s On (409 Server is already powered ON): done in one attempt, not a retry', async () => {
    const b = bmc('dellOn');
    b.state.powerState = 'Off';
    repo.write('s.yaml', doc('redfish.System', 'dellOn', '  powerState: On\n'));
    repo.commit('on');
    b.faults.onNext('POST', resetPath('dellOn'), () => (b.state.powerState = 'On'), { body: { ResetType: 'On' } });
    await passOnce('redfish.System/dellOn');
    expect(b.requests('POST', resetPath('dellOn')).map((r) => r.status)).toEqual([409]);
    expect(b.state.powerState).toBe('On');
  });

  test('iDRAC: powered off just before the ForceOff (409 Server is already powered OFF): done', async () => {
    const b = bmc('dellOff');
    repo.write('s.yaml', doc('redfish.System', 'dellOff', '  powerState: Off\n  powerOff: ForceOff\n'));
    repo.commit('off');
    b.faults.onNext('POST', resetPath('dellOff'), () => (b.state.powerState = 'Off'));
    await passOnce('redfish.System/dellOff');
    expect(b.requests('POST', resetPath('dellOff')).map((r) => r.status)).toEqual([409]);
  });

  test('a refusal that is not "already there" stays a failure: iLO refusing a ForceOff of a server that is still on', async () => {
    const b = bmc('hpeOther');
    repo.write('s.yaml', doc('redfish.System', 'hpeOther', '  powerState: Off\n  powerOff: ForceOff\n'));
    repo.commit('off');
    b.faults.failNext('POST', resetPath('hpeOther'), 400, { messageId: 'ActionParameterValueNotInList' });
    const report = await engine.pass();
    const [result] = report.run!.results;
    expect([result!.status, result!.attempts, result!.error?.code]).toEqual(['failed', 1, 'PLUMB_SPEC']);
    expect(b.state.powerState).toBe('On');
  });
});
