/**
 * Issue 9, "removed values are removed", on a BMC: what the last applied spec
 * set and this one drops. A continuous boot override Plumb set is taken back
 * (Disabled); the NTP servers Plumb put in the list are removed and the one
 * someone added stays; what has no unset (a BIOS attribute, the time zone, the
 * asset tag) keeps its value, and the pass says so once (a `release` event).
 * Through the engine, against the simulated BMC on loopback.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startRedfishLab, type RedfishLab } from '../providers/redfish/redfish-lab.js';

const BMCS = ['bmc1', 'bmc2'];

function doc(kind: string, name: string, target: string, spec: string): string {
  return `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: ${target} }\nspec:\n${spec}`;
}

describe('redfish: what Plumb set and the spec dropped', () => {
  let lab: RedfishLab;
  let repo: TempRepo;
  let engine: Engine;
  const events = (id: string): string[] =>
    (engine.store.db.prepare("SELECT message FROM events WHERE resource_id = ? AND type = 'release' ORDER BY id").all(id) as Array<{ message: string }>).map((e) => e.message);

  beforeAll(async () => {
    lab = await startRedfishLab(BMCS, { resetDelayMs: 20, gracefulDelayMs: 20, taskDurationMs: 50 });
  });
  afterAll(async () => {
    await lab.stop();
  });
  beforeEach(async () => {
    repo = new TempRepo();
    repo.write('targets.yaml', BMCS.map((n) => lab.targetYaml(n)).join('---\n'));
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-rf-released-'), run: { backoff: '10ms', maxBackoff: '20ms', connectTimeout: '2s', opTimeout: '20s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('system: the continuous override is disabled; a BIOS attribute, the asset tag and the LED keep their values, said once', async () => {
    const b = lab.sim.bmc('bmc1');
    repo.write('sys.yaml', doc('redfish.System', 'sys1', 'bmc1', '  boot: { source: Pxe, enabled: Continuous }\n  bios: { ProcTurboMode: Disabled }\n  assetTag: rack-7\n  indicatorLed: Lit\n'));
    repo.commit('pxe, turbo off');
    let report = await engine.pass();
    expect(report.run!.results.map((r) => r.status)).toEqual(['changed']);
    expect([b.state.boot.target, b.state.boot.enabled, b.state.biosPending, b.state.assetTag]).toEqual(['Pxe', 'Continuous', { ProcTurboMode: 'Disabled' }, 'rack-7']);

    repo.write('sys.yaml', doc('redfish.System', 'sys1', 'bmc1', '  indicatorLed: Lit\n'));
    repo.commit('drop boot, bios, asset tag');
    report = await engine.pass();
    const [result] = report.run!.results;
    expect([result!.status, result!.changes.map((c) => [c.path, c.after])]).toEqual(['changed', [['/boot/enabled', 'Disabled']]]);
    expect(b.state.boot.enabled).toBe('Disabled');
    // No unset for these: left as they are, never written.
    expect([b.state.biosPending, b.state.assetTag]).toEqual([{ ProcTurboMode: 'Disabled' }, 'rack-7']);
    expect(result!.note).toContain('/bios/ProcTurboMode: no longer managed; keeps "Disabled" (a BIOS attribute cannot be unset');
    expect(result!.note).toContain('/assetTag: no longer managed; keeps "rack-7"');
    expect(result!.note).not.toContain('indicatorLed');
    expect(events('redfish.System/sys1')).toHaveLength(1);

    // Said once: the spec applied now is the one without them.
    report = await engine.pass({ sweep: true });
    expect(report.run!.results.map((r) => [r.status, r.note])).toEqual([['converged', undefined]]);
    expect(events('redfish.System/sys1')).toHaveLength(1);
  });

  test('system: an override someone else set is not Plumb\'s to take back', async () => {
    const b = lab.sim.bmc('bmc2');
    repo.write('sys.yaml', doc('redfish.System', 'sys2', 'bmc2', '  assetTag: a\n'));
    repo.commit('asset tag');
    await engine.pass();
    b.state.boot = { ...b.state.boot, target: 'Cd', enabled: 'Continuous' };
    repo.write('sys.yaml', doc('redfish.System', 'sys2', 'bmc2', '  assetTag: b\n'));
    repo.commit('another tag');
    const report = await engine.pass();
    expect(report.run!.results[0]!.changes.map((c) => c.path)).toEqual(['/assetTag']);
    expect([b.state.boot.target, b.state.boot.enabled, b.state.assetTag]).toEqual(['Cd', 'Continuous', 'b']);
  });

  test('manager: the NTP servers Plumb set are removed, the one someone added stays; the time zone keeps its value', async () => {
    const b = lab.sim.bmc('bmc1');
    b.state.ntp = { enabled: false, servers: [] };
    repo.write('mgr.yaml', doc('redfish.Manager', 'mgr1', 'bmc1', '  ntp: { enabled: true, servers: [ntp-a.example, ntp-b.example] }\n  timeZone: "+01:00"\n'));
    repo.commit('ntp');
    await engine.pass();
    expect([b.state.ntp, b.state.timeZone]).toEqual([{ enabled: true, servers: ['ntp-a.example', 'ntp-b.example'] }, '+01:00']);
    b.state.ntp.servers.push('ntp-local.example');

    repo.write('mgr.yaml', doc('redfish.Manager', 'mgr1', 'bmc1', '  protocols: { IPMI: { enabled: false } }\n'));
    repo.commit('no ntp, no time zone');
    const report = await engine.pass();
    const [result] = report.run!.results;
    expect(result!.changes.map((c) => [c.path, c.after])).toEqual([
      ['/ntp/servers', ['ntp-local.example']],
      ['/protocols/IPMI/enabled', false],
    ]);
    expect([b.state.ntp, b.state.timeZone]).toEqual([{ enabled: true, servers: ['ntp-local.example'] }, '+01:00']);
    expect(result!.note).toContain('/ntp/enabled: no longer managed; keeps true');
    expect(result!.note).toContain('/timeZone: no longer managed; keeps "+01:00"');
    const again = await engine.pass({ sweep: true });
    expect(again.run!.results.map((r) => r.status)).toEqual(['converged']);
  });
});
