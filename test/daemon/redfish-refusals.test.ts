/**
 * Issue 9, "a refused action was not performed": one long side effect refused
 * once by the BMC (exactly one injected 503 on exactly that POST), through the
 * engine the way the scenarios run (real runner, store and provider, simulated
 * BMCs on loopback). The refusal must not be journaled as progress: the queue's
 * retry (backoff 10 ms) sends the action again as new, and the simulator's
 * counters show both POSTs and the second one's effect.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { profileSpec, type SimBmc } from '../../fixtures/simulators/redfish/index.js';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startRedfishLab, type RedfishLab } from '../providers/redfish/redfish-lab.js';

const BMCS = ['reset1', 'off1', 'off2', 'on1', 'media1', 'media2', 'fw1', 'lost1', 'lost2', 'lost3', 'race1'];
const paths = profileSpec('generic').paths;
const RESET = `POST ${paths.resetAction}`;

function doc(kind: string, name: string, spec: string): string {
  return `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: ${name} }\nspec:\n${spec}`;
}

/** Waits for a state the test can see (a guard of 30 s against a hang, not a timing assumption). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const guard = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > guard) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface JournalRow {
  state: string;
  progress: string | null;
}

describe('redfish: a refused long side effect is sent again, never resumed; an unknown one is resumed, never sent twice', () => {
  let lab: RedfishLab;
  let repo: TempRepo;
  let engine: Engine;
  const bmc = (name: string): SimBmc => lab.sim.bmc(name);
  /** The op journal of one resource, oldest first. */
  const journal = (id: string): JournalRow[] => engine.store.db.prepare('SELECT state, progress FROM ops WHERE resource_id = ? ORDER BY id').all(id) as JournalRow[];

  beforeAll(async () => {
    lab = await startRedfishLab(BMCS, { resetDelayMs: 40, gracefulDelayMs: 40, taskDurationMs: 100 });
  });
  afterAll(async () => {
    await lab.stop();
  });
  beforeEach(async () => {
    repo = new TempRepo();
    repo.write('targets.yaml', BMCS.map((n) => lab.targetYaml(n)).join('---\n'));
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-rf-refused-'), run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '2s', opTimeout: '20s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  /**
   * One pass; the resource is changed on the second try of that pass, the first
   * refused. The refused attempt's journal holds what it really did before the
   * refused step (`before`), by default nothing: no progress to resume.
   */
  async function passChanging(id: string, before: (progress: unknown) => void = (progress) => expect(progress).toBeNull()): Promise<void> {
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.id, r.status, r.attempts, r.error?.message])).toEqual([[id, 'changed', 2, undefined]]);
    const ops = journal(id);
    expect(ops.map((o) => o.state)).toEqual(['refused', 'done']);
    before(ops[0]!.progress === null ? null : JSON.parse(ops[0]!.progress));
  }

  /** One pass; the first try loses its answer (outcome unknown, journaled as interrupted), the second settles it. */
  async function passResuming(id: string): Promise<unknown> {
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.id, r.status, r.attempts, r.error?.message])).toEqual([[id, 'changed', 2, undefined]]);
    const ops = journal(id);
    expect(ops.map((o) => o.state)).toEqual(['resolved', 'done']);
    return JSON.parse(ops[0]!.progress ?? 'null');
  }

  test('reset for BIOS: one 503, then the retry resets (not a 10-minute wait for a reset that never happened)', async () => {
    const b = bmc('reset1');
    b.state.biosCurrent.ProcTurboMode = 'Disabled';
    repo.write('reset1.yaml', doc('redfish.System', 'reset1', '  powerState: On\n  bios: { ProcTurboMode: Enabled }\n  reboot: IfRequired\n'));
    repo.commit('bios');
    const refusal = b.faults.failNext('POST', paths.resetAction, 503);
    await passChanging('redfish.System/reset1');
    expect(refusal.fired).toBe(1);
    expect(b.counters.writesByPath[RESET]).toBe(2);
    expect(b.counters.resetsByType).toEqual({ ForceRestart: 1 });
    expect([b.state.powerState, b.state.biosPending, b.state.biosCurrent.ProcTurboMode]).toEqual(['On', {}, 'Enabled']);
  });

  test('GracefulShutdown: one 503, then GracefulShutdown again; never a ForceOff before the grace period of a shutdown really issued', async () => {
    const b = bmc('off1');
    repo.write('off1.yaml', doc('redfish.System', 'off1', '  powerState: Off\n  gracePeriod: 10m\n'));
    repo.commit('off');
    const refusal = b.faults.failNext('POST', paths.resetAction, 503);
    await passChanging('redfish.System/off1');
    expect(refusal.fired).toBe(1);
    expect(b.counters.writesByPath[RESET]).toBe(2);
    expect(b.counters.resetsByType).toEqual({ GracefulShutdown: 1 });
    expect(b.state.powerState).toBe('Off');
  });

  test('the ForceOff after a real grace period: one 503, then ForceOff again (the shutdown stays journaled, the ForceOff does not)', async () => {
    const b = bmc('off2');
    b.faults.ignoreGracefulShutdown = true;
    repo.write('off2.yaml', doc('redfish.System', 'off2', '  powerState: Off\n  gracePeriod: 1ms\n'));
    repo.commit('off, hung OS');
    const refusal = b.faults.failNext('POST', paths.resetAction, 503, { body: { ResetType: 'ForceOff' } });
    try {
      await passChanging('redfish.System/off2', (progress) => expect(Object.keys(progress as object).sort()).toEqual(['shutdownIssuedAt', 'shutdownType']));
    } finally {
      b.faults.ignoreGracefulShutdown = false;
    }
    expect(refusal.fired).toBe(1);
    expect(b.counters.writesByPath[RESET]).toBe(3);
    // The retry resumed the shutdown it had really sent (its grace period over) and sent only the ForceOff again.
    expect(b.counters.resetsByType).toEqual({ GracefulShutdown: 1, ForceOff: 1 });
    expect(b.state.powerState).toBe('Off');
  });

  test('power on: one 503 without @Message.ExtendedInfo, then On again', async () => {
    const b = bmc('on1');
    b.state.powerState = 'Off';
    repo.write('on1.yaml', doc('redfish.System', 'on1', '  powerState: On\n'));
    repo.commit('on');
    const refusal = b.faults.failNext('POST', paths.resetAction, 503, { bare: true });
    await passChanging('redfish.System/on1');
    expect(refusal.fired).toBe(1);
    expect(b.counters.writesByPath[RESET]).toBe(2);
    expect(b.counters.resetsByType).toEqual({ On: 1 });
    expect(b.state.powerState).toBe('On');
  });

  test('virtual media: one 503 on InsertMedia, then inserted', async () => {
    const b = bmc('media1');
    repo.write('media1.yaml', doc('redfish.VirtualMedia', 'media1', '  image: "http://repo.example/installer.iso"\n'));
    repo.commit('insert');
    const refusal = b.faults.failNext('POST', paths.insertMedia, 503);
    await passChanging('redfish.VirtualMedia/media1');
    expect(refusal.fired).toBe(1);
    expect(b.counters.writesByPath[`POST ${paths.insertMedia}`]).toBe(2);
    expect(b.state.virtualMedia).toEqual({ image: 'http://repo.example/installer.iso', inserted: true, writeProtected: true });
  });

  test('virtual media: one 503 on EjectMedia of the image before, then ejected and the new one inserted', async () => {
    const b = bmc('media2');
    b.state.virtualMedia = { image: 'http://repo.example/old.iso', inserted: true, writeProtected: true };
    repo.write('media2.yaml', doc('redfish.VirtualMedia', 'media2', '  image: "http://repo.example/new.iso"\n'));
    repo.commit('replace');
    const refusal = b.faults.failNext('POST', paths.ejectMedia, 503);
    await passChanging('redfish.VirtualMedia/media2');
    expect(refusal.fired).toBe(1);
    expect(b.counters.writesByPath[`POST ${paths.ejectMedia}`]).toBe(2);
    expect(b.counters.writesByPath[`POST ${paths.insertMedia}`]).toBe(1);
    expect(b.state.virtualMedia).toEqual({ image: 'http://repo.example/new.iso', inserted: true, writeProtected: true });
  });

  test('firmware: one 503 on SimpleUpdate, then one update that runs to the new version', async () => {
    const b = bmc('fw1');
    repo.write('fw1.yaml', doc('redfish.Firmware', 'fw1', '  component: BIOS\n  version: "2.19.0"\n  image: "http://repo.example/fw/BIOS-2.19.0.bin"\n'));
    repo.commit('firmware');
    const refusal = b.faults.failNext('POST', paths.simpleUpdate, 503);
    await passChanging('redfish.Firmware/fw1');
    expect(refusal.fired).toBe(1);
    expect(b.counters.writesByPath[`POST ${paths.simpleUpdate}`]).toBe(2);
    expect(b.counters.updates).toBe(1);
    expect(b.state.firmware.find((f) => f.id === 'BIOS')!.version).toBe('2.19.0');
  });

  test('reset for BIOS performed, its answer lost: the retry waits for that reset and never sends a second one', async () => {
    const b = bmc('lost1');
    b.state.biosCurrent.ProcTurboMode = 'Disabled';
    repo.write('lost1.yaml', doc('redfish.System', 'lost1', '  powerState: On\n  bios: { ProcTurboMode: Enabled }\n  reboot: IfRequired\n'));
    repo.commit('bios');
    const lost = b.faults.dropNext('POST', paths.resetAction, { afterApplying: true });
    // The reset stays in its first phase until the retry has journaled its intent: it finds the reset under way, not done.
    b.faults.holdPower = true;
    let progress: unknown;
    try {
      const passing = passResuming('redfish.System/lost1');
      await until(() => journal('redfish.System/lost1').length === 2, 'the retry to journal its intent');
      b.faults.holdPower = false;
      progress = await passing;
    } finally {
      b.faults.holdPower = false;
    }
    expect(progress).toMatchObject({ resetIssuedAt: expect.any(Number), resetType: 'ForceRestart' });
    expect(lost.fired).toBe(1);
    expect(b.counters.writesByPath[RESET]).toBe(1);
    expect(b.counters.resetsByType).toEqual({ ForceRestart: 1 });
    expect([b.state.powerState, b.state.biosPending, b.state.biosCurrent.ProcTurboMode]).toEqual(['On', {}, 'Enabled']);
  });

  test('a reboot that applies the staged BIOS values between the reads of Bios and Bios/Settings: no second staging, no reset', async () => {
    // What made the test above flaky under load: its retry read Bios before the reset's boot and
    // Bios/Settings after it, saw the old value with nothing staged, staged it again and reset again.
    const b = bmc('race1');
    b.state.biosCurrent.ProcTurboMode = 'Disabled';
    b.state.biosPending = { ProcTurboMode: 'Enabled' };
    repo.write('race1.yaml', doc('redfish.System', 'race1', '  powerState: On\n  bios: { ProcTurboMode: Enabled }\n  reboot: IfRequired\n'));
    repo.commit('bios staged, reset due');
    const boot = (): void => {
      Object.assign(b.state.biosCurrent, b.state.biosPending);
      b.state.biosPending = {};
    };
    // The plan's read sees it staged; the apply's read of Bios/Settings arrives just after someone's reboot.
    const first = b.faults.onNext('GET', paths.biosSettings, () => void b.faults.onNext('GET', paths.biosSettings, boot));
    const report = await engine.pass();
    expect(first.fired).toBe(1);
    expect(report.run!.results.map((r) => [r.id, r.status])).toEqual([['redfish.System/race1', 'changed']]);
    expect(b.counters.writesByPath[`PATCH ${paths.biosSettings}`] ?? 0).toBe(0);
    expect(b.counters.writesByPath[RESET] ?? 0).toBe(0);
    expect([b.state.powerState, b.state.biosPending, b.state.biosCurrent.ProcTurboMode]).toEqual(['On', {}, 'Enabled']);
  });

  test('virtual media inserted, the answer lost: the retry finds it inserted and sends no second InsertMedia', async () => {
    const b = bmc('lost2');
    repo.write('lost2.yaml', doc('redfish.VirtualMedia', 'lost2', '  image: "http://repo.example/installer.iso"\n'));
    repo.commit('insert');
    const lost = b.faults.dropNext('POST', paths.insertMedia, { afterApplying: true });
    const report = await engine.pass();
    // The retry's read already finds the image inserted: converged without a write.
    expect(report.run!.results.map((r) => [r.id, r.status, r.attempts])).toEqual([['redfish.VirtualMedia/lost2', 'converged', 2]]);
    expect(journal('redfish.VirtualMedia/lost2').map((o) => o.state)).toEqual(['resolved']);
    expect(lost.fired).toBe(1);
    expect(b.counters.writesByPath[`POST ${paths.insertMedia}`]).toBe(1);
    expect(b.state.virtualMedia).toEqual({ image: 'http://repo.example/installer.iso', inserted: true, writeProtected: true });
  });

  test('a GracefulShutdown lost on the way (outcome unknown) is resumed as sent: ForceOff only once its grace period is over', async () => {
    const b = bmc('lost3');
    repo.write('lost3.yaml', doc('redfish.System', 'lost3', '  powerState: Off\n  gracePeriod: 1ms\n'));
    repo.commit('off');
    const lost = b.faults.dropNext('POST', paths.resetAction, { body: { ResetType: 'GracefulShutdown' } });
    expect(await passResuming('redfish.System/lost3')).toMatchObject({ shutdownIssuedAt: expect.any(Number), shutdownType: 'GracefulShutdown' });
    expect(lost.fired).toBe(1);
    expect(b.counters.writesByPath[RESET]).toBe(2);
    expect(b.counters.resetsByType).toEqual({ ForceOff: 1 });
    expect(b.state.powerState).toBe('Off');
  });
});
