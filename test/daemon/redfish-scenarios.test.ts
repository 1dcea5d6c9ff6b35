/**
 * Scenarios on a temp git repo, converged through the real redfish provider onto
 * simulated BMCs; the simulator's counters say what each pass did to each BMC.
 * The crash and CLI scenarios run the built CLI (`npm run build` first) as a
 * child process against BMCs living in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { profileSpec, type SimBmc } from '../../fixtures/simulators/redfish/index.js';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startRedfishLab, type RedfishLab } from '../providers/redfish/redfish-lab.js';

const cli = join(packageRoot(), 'dist/src/cli/main.js');

function system(name: string, target: string, spec: string): string {
  return `apiVersion: plumb/v1\nkind: redfish.System\nmetadata: { name: ${name}, target: ${target} }\nspec:\n${spec}`;
}

/** Async: the BMCs live in this process and must keep answering while the CLI runs. `stderr()` is what it has logged so far. */
function plumb(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; stderr: () => string; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, PLUMB_CONFIG: '', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, stderr: () => stderr, done };
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('redfish scenarios (engine)', () => {
  let lab: RedfishLab;
  let repo: TempRepo;
  let engine: Engine;
  let stateDir: string;
  const bmc = (name: string): SimBmc => lab.sim.bmc(name);

  beforeAll(async () => {
    lab = await startRedfishLab(['node1', 'node2', 'node3'], { profile: (_n, i) => (['generic', 'idrac', 'ilo'] as const)[i]!, resetDelayMs: 80 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  const open = (): Promise<Engine> =>
    Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir, run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '2s', opTimeout: '20s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });

  beforeEach(async () => {
    repo = new TempRepo();
    stateDir = tempDir('plumb-rf-state-');
    repo.write('targets.yaml', ['node1', 'node2', 'node3'].map((n) => lab.targetYaml(n)).join('---\n'));
    engine = await open();
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
    for (const b of lab.sim.bmcs) {
      b.faults.wrongCertificate = false;
      b.faults.dropConnections = 0;
      b.faults.failing.splice(0);
    }
  });

  test('BIOS with reboot: Never is staged once, then "pending reboot" pass after pass with no writes', async () => {
    bmc('node1').state.biosCurrent.ProcVirtualization = 'Enabled';
    repo.write('node1.yaml', system('node1', 'node1', '  bios: { ProcVirtualization: Disabled }\n  reboot: Never\n'));
    repo.commit('bios never');
    const first = await engine.pass();
    expect(first.run!.results).toMatchObject([{ id: 'redfish.System/node1', status: 'changed', note: 'BIOS ProcVirtualization=Disabled staged; applies at next reboot' }]);
    expect(bmc('node1').state.biosPending).toEqual({ ProcVirtualization: 'Disabled' });
    expect(engine.store.resources({ id: 'redfish.System/node1' })[0]).toMatchObject({ status: 'pending-reboot', statusDetail: 'BIOS ProcVirtualization=Disabled staged; applies at next reboot' });

    const writes = bmc('node1').counters.writes;
    const resets = bmc('node1').counters.resets;
    for (let i = 0; i < 2; i++) {
      const sweep = await engine.pass({ sweep: true });
      expect(sweep.run!.results.map((r) => [r.id, r.status])).toEqual([['redfish.System/node1', 'pending-reboot']]);
    }
    expect(bmc('node1').counters.writes).toBe(writes);
    expect(bmc('node1').counters.resets).toBe(resets);

    // Someone reboots: the staged value becomes current and the resource converges without a write.
    bmc('node1').state.biosCurrent.ProcVirtualization = 'Disabled';
    bmc('node1').state.biosPending = {};
    const after = await engine.pass({ sweep: true });
    expect(after.run!.results.map((r) => r.status)).toEqual(['converged']);
    expect(bmc('node1').counters.writes).toBe(writes);
  });

  test('BIOS with reboot: IfRequired on every profile: exactly one reset each, then converged', async () => {
    const names = ['node1', 'node2', 'node3'];
    for (const n of names) bmc(n).state.biosCurrent.MemTest = 'Disabled';
    repo.write('systems.yaml', names.map((n) => system(n, n, '  powerState: On\n  bios: { MemTest: Enabled }\n  reboot: IfRequired\n')).join('---\n'));
    repo.commit('bios if required');
    const resets = names.map((n) => bmc(n).counters.resets);
    const report = await engine.pass();
    expect(report.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual(names.map((n) => [`redfish.System/${n}`, 'changed', undefined]));
    expect(names.map((n) => bmc(n).counters.resets)).toEqual(resets.map((r) => r + 1));
    for (const n of names) expect([bmc(n).state.powerState, bmc(n).state.biosPending, bmc(n).state.biosCurrent.MemTest]).toEqual(['On', {}, 'Enabled']);
    expect(engine.store.resources().filter((r) => r.kind === 'redfish.System').map((r) => r.status)).toEqual(['converged', 'converged', 'converged']);
    const writes = lab.writes();
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run!.results.every((r) => r.status === 'converged')).toBe(true);
    expect(lab.writes()).toBe(writes);
    expect(names.map((n) => bmc(n).counters.resets)).toEqual(resets.map((r) => r + 1));
  });

  test('a converged pass writes nothing and reads only what each kind needs', async () => {
    const pw = join(lab.dir, 'ops-pw');
    writeFileSync(pw, 'ops-secret-9');
    repo.write(
      'node2.yaml',
      [
        system('node2', 'node2', '  powerState: On\n  assetTag: r2-u10\n  indicatorLed: Off\n  boot: { source: Pxe, enabled: Once }\n'),
        `apiVersion: plumb/v1\nkind: redfish.Manager\nmetadata: { name: node2-bmc, target: node2 }\nspec: { timeZone: "+01:00", ntp: { enabled: true, servers: [ntp1.example.net] }, protocols: { IPMI: { enabled: false } } }\n`,
        `apiVersion: plumb/v1\nkind: redfish.Account\nmetadata: { name: node2-ops, target: node2 }\nspec: { username: ops2, role: Operator, password: "file:${pw}" }\n`,
        `apiVersion: plumb/v1\nkind: redfish.VirtualMedia\nmetadata: { name: node2-iso, target: node2 }\nspec: { image: "http://repo.example/installer.iso" }\n`,
        `apiVersion: plumb/v1\nkind: redfish.Firmware\nmetadata: { name: node2-nic, target: node2 }\nspec: { component: NIC1, version: "22.50.0", image: "http://repo.example/fw/NIC1-22.50.0.bin" }\n`,
      ].join('---\n'),
    );
    repo.commit('node2 everything');
    const first = await engine.pass();
    expect(first.run!.results.map((r) => [r.id, r.status, r.error?.message]).sort()).toEqual([
      ['redfish.Account/node2-ops', 'changed', undefined],
      ['redfish.Firmware/node2-nic', 'changed', undefined],
      ['redfish.Manager/node2-bmc', 'changed', undefined],
      ['redfish.System/node2', 'changed', undefined],
      ['redfish.VirtualMedia/node2-iso', 'changed', undefined],
    ]);
    // The one-shot boot override is used up by a boot; that is not drift.
    bmc('node2').state.boot = { target: 'None', enabled: 'Disabled', mode: 'UEFI' };

    const before = { ...bmc('node2').counters };
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run!.results.map((r) => r.status)).toEqual(Array(5).fill('converged'));
    const c = bmc('node2').counters;
    expect(c.writes - before.writes).toBe(0);
    expect(c.authAttempts - before.authAttempts).toBe(0); // the session is reused across passes
    // System 1 GET, Manager 2 (Manager + NetworkProtocol), Account 1, VirtualMedia 1, Firmware 1.
    expect(c.gets - before.gets).toBe(6);
    expect(c.activeSessions).toBeGreaterThanOrEqual(1);
  });

  test('TLS pin mismatch: refused, not retried into the BMC, and the BMC saw no credentials', async () => {
    bmc('node3').faults.wrongCertificate = true;
    bmc('node3').resetCounters();
    repo.write('node3.yaml', system('node3', 'node3', '  assetTag: never-written\n'));
    repo.commit('pinned');
    const report = await engine.pass();
    expect(report.run!.results).toMatchObject([{ id: 'redfish.System/node3', status: 'failed', error: { code: 'PLUMB_HOST_KEY' } }]);
    expect(report.run!.results[0]!.error!.message).toContain('does not match the pinned fingerprint');
    expect(bmc('node3').counters.authAttempts).toBe(0);
    expect(bmc('node3').counters.requests).toBe(0);
    expect(bmc('node3').state.assetTag).not.toBe('never-written');
  });

  test('a flaky BMC (a 503 on each step, dropped connections, expired sessions) still converges, with one reset and one update', async () => {
    const b = bmc('node1');
    const p = profileSpec(b.profile).paths;
    b.state.biosCurrent.ProcCStates = 'Enabled';
    repo.write(
      'node1.yaml',
      [
        system('node1', 'node1', '  bios: { ProcCStates: Disabled }\n  reboot: IfRequired\n  indicatorLed: Blinking\n'),
        `apiVersion: plumb/v1\nkind: redfish.Firmware\nmetadata: { name: node1-bmc-fw, target: node1 }\nspec: { component: BMC, version: "7.0.0", image: "http://repo.example/fw/BMC-7.0.0.bin" }\n`,
      ].join('---\n'),
    );
    repo.commit('flaky');
    const resets = b.counters.resets;
    const updates = b.counters.updates;
    // Deterministic faults (errorRate is random): each step of the way is refused once.
    const refusals = [
      b.faults.failNext('GET', p.system, 503),
      b.faults.failNext('PATCH', p.system, 500),
      b.faults.failNext('PATCH', p.biosSettings, 503),
      b.faults.failNext('POST', p.resetAction, 503),
      b.faults.failNext('POST', p.simpleUpdate, 503, { bare: true }),
    ];
    b.faults.dropConnections = 2;
    b.expireSessions();
    let converged = false;
    for (let pass = 0; pass < 10 && !converged; pass++) {
      const report = await engine.pass({ sweep: pass > 0 });
      converged = report.run!.results.every((r) => r.status === 'converged' || r.status === 'changed');
    }
    expect(converged).toBe(true);
    expect(refusals.map((r) => r.fired)).toEqual([1, 1, 1, 1, 1]);
    expect(b.faults.dropConnections).toBe(0);
    expect(b.counters.resets).toBe(resets + 1);
    expect(b.counters.updates).toBe(updates + 1);
    expect(b.state.biosCurrent.ProcCStates).toBe('Disabled');
    expect(b.state.indicatorLed).toBe('Blinking');
    expect(b.state.firmware.find((f) => f.id === 'BMC')!.version).toBe('7.0.0');
  });

  test('closing the engine logs out of every BMC', async () => {
    repo.write('node1.yaml', system('node1', 'node1', '  indicatorLed: Off\n'));
    repo.commit('one');
    await engine.pass();
    const active = bmc('node1').counters.activeSessions;
    expect(active).toBeGreaterThanOrEqual(1);
    await engine.close();
    expect(bmc('node1').counters.activeSessions).toBe(active - 1);
    engine = await open();
  });
});

describe('redfish scenarios (CLI, child processes)', () => {
  let lab: RedfishLab;
  let repo: TempRepo;

  beforeAll(async () => {
    if (!existsSync(cli)) throw new Error(`${relative(packageRoot(), cli)} is missing: run \`npm run build\` first (npm test does)`);
    lab = await startRedfishLab(['crash1', 'plan1']);
  });
  afterAll(async () => {
    await lab?.stop();
  });
  beforeEach(() => {
    repo = new TempRepo();
    repo.write('targets.yaml', ['crash1', 'plan1'].map((n) => lab.targetYaml(n)).join('---\n'));
  });
  afterEach(() => repo.cleanup());

  test('kill -9 between the reset and its observation: after a restart it waits, never resets twice', async () => {
    const b = lab.sim.bmc('crash1');
    b.state.biosCurrent.ProcC1E = 'Enabled';
    repo.write('crash1.yaml', system('crash1', 'crash1', '  bios: { ProcC1E: Disabled }\n  reboot: IfRequired\n'));
    repo.commit('bios change');
    const state = tempDir('plumb-rf-crash-');
    const resets = b.counters.resets;
    // The reset stays in its first phase until released: no timer races the kill or the second process's start.
    b.faults.holdPower = true;
    try {
      const first = plumb(['apply', '--once', '--repo', repo.dir, '--state', state]);
      await waitFor(() => b.counters.resets > resets || first.child.exitCode !== null, 30_000, 'the reset');
      first.child.kill('SIGKILL');
      const killed = await first.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(b.counters.resets).toBe(resets + 1);
      expect(b.state.powerState).toBe('PoweringOff'); // killed mid-reset, before observing it

      const run = plumb(['apply', '--once', '--verbose', '--repo', repo.dir, '--state', state]);
      // It saw the journaled reset (Resource.resume) and waits for it; only then does the reset go on.
      const waiting = 'a reset for this spec was already issued; waiting for it instead of resetting again';
      await waitFor(() => run.stderr().includes(waiting) || run.child.exitCode !== null, 30_000, 'the second run to wait for the reset');
      expect(run.stderr()).toContain(waiting);
      b.faults.holdPower = false;
      const second = await run.done;
      expect(second.code, second.stderr + second.stdout).toBe(0);
    } finally {
      b.faults.holdPower = false;
    }
    expect(b.counters.resets).toBe(resets + 1);
    expect(b.state.powerState).toBe('On');
    expect(b.state.biosPending).toEqual({});
    expect(b.state.biosCurrent.ProcC1E).toBe('Disabled');

    const status = await plumb(['status', '--repo', repo.dir, '--state', state, '--all', '--json']).done;
    expect(JSON.stringify(JSON.parse(status.stdout))).toContain('"redfish.System/crash1"');
    const third = await plumb(['apply', '--once', '--all', '--repo', repo.dir, '--state', state]).done;
    expect(third.code).toBe(0);
    expect(b.counters.resets).toBe(resets + 1);
  });

  test('plumb plan --live shows staged (pending) vs current BIOS values, and writes nothing', async () => {
    const b = lab.sim.bmc('plan1');
    b.state.biosCurrent.ProcTurboMode = 'Disabled';
    b.state.biosPending = { ProcTurboMode: 'Enabled' };
    b.state.biosCurrent.LogicalProc = 'Enabled';
    repo.write('plan1.yaml', system('plan1', 'plan1', '  bios: { ProcTurboMode: Enabled, LogicalProc: Disabled }\n  reboot: IfRequired\n'));
    repo.commit('plan me');
    const writes = b.counters.writes;
    const res = await plumb(['plan', '--repo', repo.dir, '--live']).done;
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toMatch(/~ update\s+redfish\.System\/plan1\s+plan1/);
    expect(res.stdout).toContain('/bios/ProcTurboMode: pending "Enabled" (current "Disabled"); a reset applies it');
    expect(res.stdout).toContain('/bios/LogicalProc: current "Enabled" -> "Disabled" (staged, then a reset)');
    const json = JSON.parse((await plumb(['plan', '--repo', repo.dir, '--live', '--json']).done).stdout) as { ops: Array<{ changes: Array<{ path: string; note: string }> }> };
    expect(json.ops[0]!.changes).toContainEqual(expect.objectContaining({ path: '/bios/ProcTurboMode', before: 'Disabled', after: 'Enabled' }));
    expect(b.counters.writes).toBe(writes);
    expect(b.counters.resets).toBe(0);
  });

  test('plumb plan --live shows a value only staged for the next reboot as waiting, not as a change (exit 0)', async () => {
    const b = lab.sim.bmc('plan1');
    b.state.biosCurrent.ProcTurboMode = 'Disabled';
    b.state.biosPending = { ProcTurboMode: 'Enabled' };
    repo.write('plan1.yaml', system('plan1', 'plan1', '  bios: { ProcTurboMode: Enabled }\n  reboot: Never\n'));
    repo.commit('staged is enough');
    const res = await plumb(['plan', '--repo', repo.dir, '--live']).done;
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/= waits\s+redfish\.System\/plan1\s+plan1\s+.*ProcTurboMode/);
    const json = JSON.parse((await plumb(['plan', '--repo', repo.dir, '--live', '--json']).done).stdout) as { ops: Array<{ action: string; note?: string }> };
    expect(json.ops).toMatchObject([{ action: 'noop', note: expect.stringContaining('ProcTurboMode') }]);
  });
});

