/**
 * The redfish provider against the BMC simulator (fixtures/simulators/redfish):
 * the provider contract under every vendor profile, then each kind under the
 * faults real BMCs produce.
 */
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Profile, SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import type { AccountSpec, FirmwareSpec, ManagerSpec, RedfishSession, SystemSpec, VirtualMediaSpec } from '../../../providers/redfish/index.js';
import { systemUri } from '../../../providers/redfish/discovery.js';
import { outcomeUnknownAfterSend } from '../../../providers/redfish/http.js';
import { redfishProvider } from '../../../providers/redfish/index.js';
import { accountKind } from '../../../providers/redfish/kinds/account.js';
import { firmwareKind } from '../../../providers/redfish/kinds/firmware.js';
import { managerKind } from '../../../providers/redfish/kinds/manager.js';
import { systemKind } from '../../../providers/redfish/kinds/system.js';
import { virtualMediaKind } from '../../../providers/redfish/kinds/virtual-media.js';
import { AuthError, HostKeyError, ProviderError, SessionLostError, SpecError } from '../../../src/errors.js';
import type { KindHandler, OpContext, Resource } from '../../../src/provider.js';
import { SecretResolver } from '../../../src/secrets/resolve.js';
import { describeProviderContract, opContext, testLog } from '../../helpers/provider-contract.js';
import { makeResource } from '../../helpers/resources.js';
import type { RedfishLab } from './redfish-lab.js';
import { startRedfishLab } from './redfish-lab.js';

const secrets = new SecretResolver({ env: {} });
const PROFILES: Profile[] = ['generic', 'idrac', 'ilo', 'legacy'];

function open(lab: RedfishLab, name: string, extra: Record<string, unknown> = {}, signal: AbortSignal = AbortSignal.timeout(10_000)): Promise<RedfishSession> {
  return redfishProvider.open(lab.target(name, extra), { secrets, signal, log: testLog(), connectTimeoutMs: 5_000 });
}

/** read -> diff -> apply -> read: converges a resource like the runner does; returns it with the new memo. */
async function converge<S>(s: RedfishSession, h: KindHandler<S, unknown, RedfishSession>, r: Resource<S>, ctx: OpContext = opContext()): Promise<Resource<S>> {
  const changes = h.diff(r, await h.read(s, r, ctx));
  const applied = await h.apply(s, r, changes, ctx);
  const next = applied?.memo !== undefined ? { ...r, memo: applied.memo } : r;
  expect(h.diff(next, await h.read(s, next, opContext()))).toEqual([]);
  return next;
}

function passwordFile(lab: RedfishLab, name: string, value: string): string {
  const path = join(lab.dir, name);
  writeFileSync(path, value);
  return `file:${path}`;
}

for (const profile of PROFILES) {
  describeProviderContract(`redfish against the simulator (${profile})`, async () => {
    const lab = await startRedfishLab(['node1'], { profile });
    const opsPassword = passwordFile(lab, 'ops-password', 'ops-password-1');
    return {
      provider: redfishProvider,
      target: lab.target('node1'),
      secrets,
      cases: [
        {
          kind: 'redfish.System',
          create: makeResource<SystemSpec>('redfish.System', 'node1', { assetTag: 'plumb-1', indicatorLed: 'Lit', boot: { source: 'Pxe', enabled: 'Continuous' }, bios: { ProcTurboMode: 'Disabled' }, reboot: 'IfRequired' }),
          update: makeResource<SystemSpec>('redfish.System', 'node1', { assetTag: 'plumb-2', indicatorLed: 'Lit', boot: { source: 'Hdd', enabled: 'Continuous' }, bios: { ProcTurboMode: 'Enabled' }, reboot: 'IfRequired' }),
        },
        {
          kind: 'redfish.Manager',
          create: makeResource<ManagerSpec>('redfish.Manager', 'bmc', { timeZone: '+01:00', ntp: { enabled: true, servers: ['ntp1.example.net'] }, protocols: { IPMI: { enabled: false } } }),
          update: makeResource<ManagerSpec>('redfish.Manager', 'bmc', { timeZone: '+02:00', ntp: { enabled: true, servers: ['ntp2.example.net', '10.0.0.1'] }, protocols: { IPMI: { enabled: false } } }),
        },
        {
          kind: 'redfish.Account',
          create: makeResource<AccountSpec>('redfish.Account', 'ops', { username: 'ops', role: 'Operator', password: opsPassword }),
          update: makeResource<AccountSpec>('redfish.Account', 'ops', { username: 'ops', role: 'ReadOnly', enabled: false, password: opsPassword }),
        },
        {
          kind: 'redfish.VirtualMedia',
          create: makeResource<VirtualMediaSpec>('redfish.VirtualMedia', 'iso', { image: 'http://repo.example/images/a.iso' }),
          update: makeResource<VirtualMediaSpec>('redfish.VirtualMedia', 'iso', { image: 'http://repo.example/images/b.iso', writeProtected: false }),
        },
        {
          kind: 'redfish.Firmware',
          create: makeResource<FirmwareSpec>('redfish.Firmware', 'nic', { component: 'NIC1', version: '22.40.1', image: 'http://repo.example/fw/NIC1-22.40.1.bin' }),
          update: makeResource<FirmwareSpec>('redfish.Firmware', 'nic', { component: 'NIC1', version: '22.41.0', image: 'http://repo.example/fw/NIC1-22.41.0.bin' }),
        },
      ],
      writes: () => lab.sim.bmc('node1').counters.writes,
      async teardown() {
        await lab.stop();
        await rm(lab.dir, { recursive: true, force: true });
      },
    };
  });
}

describe.each(PROFILES)('redfish provider against the simulator (%s): kinds and faults', (profile) => {
  let lab: RedfishLab;
  let s: RedfishSession;
  const bmc = (): SimBmc => lab.sim.bmc('node1');
  beforeAll(async () => {
    lab = await startRedfishLab(['node1'], { profile });
    s = await open(lab, 'node1');
  });
  afterAll(async () => {
    await s?.close();
    await lab?.stop();
    await rm(lab.dir, { recursive: true, force: true });
  });
  afterEach(() => {
    const f = bmc().faults;
    f.latencyMs = undefined;
    f.errorRate = undefined;
    f.preconditionStorm = undefined;
    f.dropConnections = undefined;
    f.slowBodyMs = undefined;
    f.ignoreGracefulShutdown = undefined;
    f.wrongCertificate = false;
  });

  it('one session serves many operations; close logs out', async () => {
    const other = await open(lab, 'node1');
    const before = { ...bmc().counters };
    const r = makeResource<SystemSpec>('redfish.System', 'node1', { powerState: 'On' });
    for (let i = 0; i < 5; i++) await systemKind.read(other, r, opContext());
    expect(bmc().counters.sessionsCreated).toBe(before.sessionsCreated);
    expect(bmc().counters.authAttempts).toBe(before.authAttempts);
    const active = bmc().counters.activeSessions;
    await other.close();
    expect(bmc().counters.activeSessions).toBe(active - 1);
    expect(bmc().counters.sessionsDeleted).toBe(before.sessionsDeleted + 1);
  });

  it('BIOS with reboot Never: staged, pending reboot, and not written again', async () => {
    const r = makeResource<SystemSpec>('redfish.System', 'node1', { bios: { SriovGlobalEnable: 'Enabled', NumaNodesPerSocket: '2' } });
    const first = await systemKind.read(s, r, opContext());
    const changes = systemKind.diff(r, first);
    expect(changes.map((c) => c.path).sort()).toEqual(['/bios/NumaNodesPerSocket', '/bios/SriovGlobalEnable']);
    const resets = bmc().counters.resets;
    await systemKind.apply(s, r, changes, opContext());
    expect(bmc().state.biosPending).toEqual({ SriovGlobalEnable: 'Enabled', NumaNodesPerSocket: 2 }); // sent as the BMC types it
    const after = (await systemKind.read(s, r, opContext()))!;
    expect(systemKind.diff(r, after)).toEqual([]);
    expect(systemKind.pendingReboot!(r, after)).toBe('BIOS SriovGlobalEnable=Enabled, NumaNodesPerSocket=2 staged; applies at next reboot');
    const writes = bmc().counters.writes;
    for (let i = 0; i < 3; i++) expect(systemKind.diff(r, await systemKind.read(s, r, opContext()))).toEqual([]);
    expect(bmc().counters.writes).toBe(writes);
    expect(bmc().counters.resets).toBe(resets);
  });

  it('BIOS with reboot IfRequired: exactly one reset, then converged', async () => {
    const r = makeResource<SystemSpec>('redfish.System', 'node1', { bios: { SriovGlobalEnable: 'Enabled', NumaNodesPerSocket: 2 }, reboot: 'IfRequired' });
    const resets = bmc().counters.resets;
    await converge(s, systemKind, r);
    expect(bmc().counters.resets).toBe(resets + 1);
    expect(bmc().state.biosPending).toEqual({});
    expect(bmc().state.biosCurrent.SriovGlobalEnable).toBe('Enabled');
    expect(bmc().state.powerState).toBe('On');
    const again = (await systemKind.read(s, r, opContext()))!;
    expect(systemKind.pendingReboot!(r, again)).toBeUndefined();
  });

  it('after a crash: a journaled reset still under way is waited for, not repeated', async () => {
    bmc().state.biosCurrent.ProcX2Apic = 'Enabled';
    bmc().state.biosPending = { ProcX2Apic: 'Disabled' };
    const spec: SystemSpec = { bios: { ProcX2Apic: 'Disabled' }, reboot: 'IfRequired' };
    // The reset the crashed process issued, already running.
    const sys = await s.getJson(await systemUriOf(s), AbortSignal.timeout(5_000));
    await s.post((sys.Actions as Record<string, { target: string }>)['#ComputerSystem.Reset']!.target, { ResetType: 'ForceRestart' }, AbortSignal.timeout(5_000));
    const resets = bmc().counters.resets;
    const r: Resource<SystemSpec> = { ...makeResource<SystemSpec>('redfish.System', 'node1', spec), resume: { startedAt: Date.now() - 100, progress: { resetIssuedAt: Date.now() - 50, resetType: 'ForceRestart' } } };
    await converge(s, systemKind, r);
    expect(bmc().counters.resets).toBe(resets);
    expect(bmc().state.biosCurrent.ProcX2Apic).toBe('Disabled');
  });

  it('after a crash: a journaled reset with no effect after timeouts.resetStale is issued again, once', async () => {
    const stale = await open(lab, 'node1', { timeouts: { pollInterval: '20ms', resetStale: '200ms' } });
    try {
      bmc().state.biosCurrent.ProcX2Apic = 'Enabled';
      bmc().state.biosPending = { ProcX2Apic: 'Disabled' };
      const resets = bmc().counters.resets;
      // Journaled just before the crash, but the POST never reached the BMC.
      const r: Resource<SystemSpec> = { ...makeResource<SystemSpec>('redfish.System', 'node1', { bios: { ProcX2Apic: 'Disabled' }, reboot: 'IfRequired' }), resume: { startedAt: Date.now(), progress: { resetIssuedAt: Date.now(), resetType: 'ForceRestart' } } };
      const started = Date.now();
      await converge(stale, systemKind, r);
      expect(Date.now() - started).toBeGreaterThanOrEqual(180);
      expect(bmc().counters.resets).toBe(resets + 1);
      expect(bmc().state.biosCurrent.ProcX2Apic).toBe('Disabled');
    } finally {
      await stale.close();
    }
  });

  it('an unknown BIOS attribute, or a value the BMC refuses: SpecError with the BMC text', async () => {
    const unknown = makeResource<SystemSpec>('redfish.System', 'node1', { bios: { NoSuchAttribute: 'x' } });
    await expect(systemKind.read(s, unknown, opContext())).rejects.toBeInstanceOf(SpecError);
    const bad = makeResource<SystemSpec>('redfish.System', 'node1', { bios: { ProcTurboMode: 'Maybe' } });
    const err = await systemKind.apply(s, bad, systemKind.diff(bad, await systemKind.read(s, bad, opContext())), opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as Error).message).toMatch(/Maybe/);
    expect((err as Error).message).toMatch(/PropertyValueNotInList/);
  });

  it.runIf(profile === 'legacy')('a boot source the BMC does not offer (legacy: no UefiHttp) is a SpecError at /boot/source, before any write', async () => {
    const r = makeResource<SystemSpec>('redfish.System', 'node1', { boot: { source: 'UefiHttp', enabled: 'Continuous' } });
    const writes = bmc().counters.writes;
    const err = await systemKind.apply(s, r, systemKind.diff(r, await systemKind.read(s, r, opContext())), opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect(err).toMatchObject({ pointer: '/boot/source', notSent: true });
    expect((err as Error).message).toBe('redfish.System/node1: boot.source UefiHttp is not offered by node1 (BootSourceOverrideTarget@Redfish.AllowableValues: None, Pxe, Hdd, Cd, BiosSetup)');
    expect(bmc().counters.writes).toBe(writes);
  });

  it('one-shot boot override: applied once, consumed by the next boot, never drift', async () => {
    const boot = { source: 'Pxe' as const, enabled: 'Once' as const, mode: 'UEFI' as const };
    const r = await converge(s, systemKind, makeResource<SystemSpec>('redfish.System', 'node1', { boot }));
    expect(bmc().state.boot).toMatchObject({ target: 'Pxe', enabled: 'Once' });
    // The next boot (someone else's reset) uses it up.
    const system = await s.getJson(await systemUriOf(s), AbortSignal.timeout(5_000));
    await s.post((system.Actions as Record<string, { target: string }>)['#ComputerSystem.Reset']!.target, { ResetType: 'ForceRestart' }, AbortSignal.timeout(5_000));
    await waitFor(() => bmc().state.powerState === 'On' && bmc().state.boot.enabled === 'Disabled');
    expect(bmc().state.lastBootTarget).toBe('Pxe');
    const writes = bmc().counters.writes;
    expect(systemKind.diff(r, await systemKind.read(s, r, opContext()))).toEqual([]);
    expect(bmc().counters.writes).toBe(writes);
    // A changed spec is a new action.
    const cd = { ...r, spec: { boot: { ...boot, source: 'Cd' as const } } };
    expect(systemKind.diff(cd, await systemKind.read(s, cd, opContext())).map((c) => c.path)).toEqual(['/boot']);
  });

  it('power off: GracefulShutdown; a hung OS is forced off after the grace period; then on again', async () => {
    const off = makeResource<SystemSpec>('redfish.System', 'node1', { powerState: 'Off', gracePeriod: '300ms' });
    bmc().faults.ignoreGracefulShutdown = true;
    const started = Date.now();
    await converge(s, systemKind, off);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(bmc().state.powerState).toBe('Off');
    bmc().faults.ignoreGracefulShutdown = false;
    await converge(s, systemKind, makeResource<SystemSpec>('redfish.System', 'node1', { powerState: 'On' }));
    expect(bmc().state.powerState).toBe('On');
    await converge(s, systemKind, makeResource<SystemSpec>('redfish.System', 'node1', { powerState: 'Off', powerOff: 'ForceOff' }));
    expect(bmc().state.powerState).toBe('Off');
    await converge(s, systemKind, makeResource<SystemSpec>('redfish.System', 'node1', { powerState: 'On' }));
  });

  it('412 storms: one is absorbed by a re-read, two fail retryably', async () => {
    const tag = (t: string) => makeResource<SystemSpec>('redfish.System', 'node1', { assetTag: t });
    bmc().faults.preconditionStorm = 1;
    await converge(s, systemKind, tag('storm-1'));
    if (profile === 'legacy') return; // no ETags: no If-Match, no 412
    bmc().faults.preconditionStorm = 2;
    const r = tag('storm-2');
    const err = await systemKind.apply(s, r, systemKind.diff(r, await systemKind.read(s, r, opContext())), opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(true);
  });

  it('expired sessions: logs in again once and carries on', async () => {
    const logins = bmc().counters.sessionsCreated;
    bmc().expireSessions();
    const r = makeResource<SystemSpec>('redfish.System', 'node1', { assetTag: 'after-expiry' });
    await converge(s, systemKind, r);
    expect(bmc().counters.sessionsCreated).toBe(logins + 1);
  });

  it('timeZone UTC or Z is written as +00:00 (the DMTF pattern), exactly as it is compared', async () => {
    for (const zone of ['UTC', 'Z', 'utc']) {
      bmc().state.timeZone = '+01:00';
      const writes = bmc().counters.writes;
      await converge(s, managerKind, makeResource<ManagerSpec>('redfish.Manager', 'bmc', { timeZone: zone }));
      expect(bmc().state.timeZone).toBe('+00:00');
      expect(bmc().counters.writes - writes).toBe(1);
    }
  });

  it('503s and dropped connections are retryable; the session survives them', async () => {
    const r = makeResource<ManagerSpec>('redfish.Manager', 'bmc', { timeZone: '+00:00' });
    bmc().faults.errorRate = 1;
    const err = await managerKind.read(s, r, opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(true);
    bmc().faults.errorRate = 0;
    bmc().faults.dropConnections = 1;
    const dropped = await managerKind.read(s, r, opContext()).catch((e: unknown) => e);
    // The BMC had the request when it dropped the connection: sent, no answer.
    expect(dropped).toBeInstanceOf(SessionLostError);
    expect((dropped as SessionLostError).retryable).toBe(true);
    expect(s.alive).toBe(true);
    expect(managerKind.diff(r, await managerKind.read(s, r, opContext()))).toEqual([]);
  });

  it('a certificate swapped mid-session refuses an action before any byte of it is sent: not an unknown outcome', async () => {
    // A session of its own: one connection, as its requests go one at a time.
    const own = await open(lab, 'node1');
    const system = await own.getJson(await systemUriOf(own), AbortSignal.timeout(5_000));
    const target = (system.Actions as Record<string, { target: string }>)['#ComputerSystem.Reset']!.target;
    const before = { ...bmc().counters };
    bmc().faults.wrongCertificate = true;
    try {
      // The swap closes the kept-alive connection, which the client may not have noticed yet: a request
      // written onto it is a drop after sending (unknown). One read uses it up; the action needs a new handshake.
      await own.getJson(await systemUriOf(own), AbortSignal.timeout(5_000)).catch(() => undefined);
      const err = await own.post(target, { ResetType: 'ForceRestart' }, AbortSignal.timeout(5_000)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostKeyError);
      expect(outcomeUnknownAfterSend(err)).toBe(false);
    } finally {
      bmc().faults.wrongCertificate = false;
      await own.close();
    }
    expect(bmc().counters.resets).toBe(before.resets);
    expect(bmc().counters.requests - before.requests).toBeLessThanOrEqual(1); // at most the read on the old connection
  });

  it('slow bodies are read whole', async () => {
    bmc().faults.slowBodyMs = 200;
    const r = makeResource<ManagerSpec>('redfish.Manager', 'bmc', { timeZone: '+00:00' });
    expect(managerKind.diff(r, await managerKind.read(s, r, opContext()))).toEqual([]);
  });

  it('account passwords: a changed secret is applied again; the value never leaves the process', async () => {
    const ref = passwordFile(lab, 'acct-pw', 'first-secret-1');
    let r = await converge(s, accountKind, makeResource<AccountSpec>('redfish.Account', 'deploy', { username: 'deploy', role: 'Operator', password: ref }));
    expect(JSON.stringify(r.memo)).toMatch(/^\{"passwordHash":"hmac-sha256:[0-9a-f]{64}"\}$/);
    expect(lab.sim.bmc('node1').state.accounts.find((a) => a.userName === 'deploy')!.password).toBe('first-secret-1');
    const writes = bmc().counters.writes;
    expect(accountKind.diff(r, await accountKind.read(s, r, opContext()))).toEqual([]);
    expect(bmc().counters.writes).toBe(writes);
    passwordFile(lab, 'acct-pw', 'second-secret-2');
    const changes = accountKind.diff(r, await accountKind.read(s, r, opContext()));
    expect(changes.map((c) => c.path)).toEqual(['/password']);
    expect(JSON.stringify(changes)).not.toContain('second-secret-2');
    r = await converge(s, accountKind, r);
    expect(lab.sim.bmc('node1').state.accounts.find((a) => a.userName === 'deploy')!.password).toBe('second-secret-2');
    await accountKind.remove!(s, r, opContext());
    expect(await accountKind.read(s, r, opContext())).toBeUndefined();
  });

  it('refuses to disable or remove the account Plumb logs in with', async () => {
    const me = makeResource<AccountSpec>('redfish.Account', 'admin', { username: 'admin', role: 'Administrator', enabled: false, password: lab.passwordRef });
    await expect(accountKind.apply(s, me, [{ path: '/enabled', before: true, after: false }], opContext())).rejects.toBeInstanceOf(SpecError);
    await expect(accountKind.remove!(s, me, opContext())).rejects.toBeInstanceOf(SpecError);
  });

  it('firmware: SimpleUpdate, the task followed to completion; a bad image fails with the task message', async () => {
    const r = makeResource<FirmwareSpec>('redfish.Firmware', 'bios-fw', { component: 'BIOS', version: '2.19.1', image: 'http://repo.example/fw/BIOS-2.19.1.bin' });
    const updates = bmc().counters.updates;
    await converge(s, firmwareKind, r);
    expect(bmc().counters.updates).toBe(updates + 1);
    expect(bmc().state.firmware.find((f) => f.id === 'BIOS')!.version).toBe('2.19.1');
    const bad = makeResource<FirmwareSpec>('redfish.Firmware', 'bmc-fw', { component: 'BMC', version: '9.9', image: 'http://repo.example/fw/nothing-9.9.bin' });
    const err = await firmwareKind.apply(s, bad, firmwareKind.diff(bad, await firmwareKind.read(s, bad, opContext())), opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/Exception/);
  });

  it('firmware: a deadline mid-update, then a retry follows the same task (no second update)', async () => {
    const r = makeResource<FirmwareSpec>('redfish.Firmware', 'nic-fw', { component: 'NIC1', version: '23.0.0', image: 'http://repo.example/fw/NIC1-23.0.0.bin' });
    const updates = bmc().counters.updates;
    const short = opContext(AbortSignal.timeout(60));
    await expect(firmwareKind.apply(s, r, firmwareKind.diff(r, await firmwareKind.read(s, r, opContext())), short)).rejects.toMatchObject({ code: 'PLUMB_TIMEOUT' });
    await converge(s, firmwareKind, r);
    expect(bmc().counters.updates).toBe(updates + 1);
  });

  it('firmware after a crash: follows the journaled task, or a task still running, never a second update', async () => {
    const start = async (image: string): Promise<string> => {
      const svc = await s.getJson('/redfish/v1/UpdateService', AbortSignal.timeout(5_000));
      const target = (svc.Actions as Record<string, { target: string }>)['#UpdateService.SimpleUpdate']!.target;
      const res = await s.post(target, { ImageURI: image }, AbortSignal.timeout(5_000));
      return s.path(res.headers.location!);
    };
    // Crash after the task monitor was journaled.
    const image1 = 'http://repo.example/fw/NIC1-30.0.0.bin';
    const monitor = await start(image1);
    const updates = bmc().counters.updates;
    const r1: Resource<FirmwareSpec> = { ...makeResource<FirmwareSpec>('redfish.Firmware', 'nic-a', { component: 'NIC1', version: '30.0.0', image: image1 }), resume: { startedAt: Date.now(), progress: { updateRequestedAt: Date.now(), image: image1, taskMonitor: monitor } } };
    await converge(s, firmwareKind, r1);
    expect(bmc().counters.updates).toBe(updates);
    // Crash between journaling the request and the BMC's answer: the running task is found and followed.
    const image2 = 'http://repo.example/fw/NIC1-31.0.0.bin';
    await start(image2);
    const r2: Resource<FirmwareSpec> = { ...makeResource<FirmwareSpec>('redfish.Firmware', 'nic-b', { component: 'NIC1', version: '31.0.0', image: image2 }), resume: { startedAt: Date.now(), progress: { updateRequestedAt: Date.now(), image: image2 } } };
    await converge(s, firmwareKind, r2);
    expect(bmc().counters.updates).toBe(updates + 1);
    // Journaled, but the request never reached the BMC and no task runs: a new update is requested.
    const image3 = 'http://repo.example/fw/NIC1-32.0.0.bin';
    const r3: Resource<FirmwareSpec> = { ...makeResource<FirmwareSpec>('redfish.Firmware', 'nic-c', { component: 'NIC1', version: '32.0.0', image: image3 }), resume: { startedAt: Date.now(), progress: { updateRequestedAt: Date.now(), image: image3 } } };
    await converge(s, firmwareKind, r3);
    expect(bmc().counters.updates).toBe(updates + 2);
  });

  it('virtual media: insert, swap, eject', async () => {
    const r = await converge(s, virtualMediaKind, makeResource<VirtualMediaSpec>('redfish.VirtualMedia', 'iso', { image: 'http://repo.example/x.iso' }));
    expect(bmc().state.virtualMedia).toMatchObject({ image: 'http://repo.example/x.iso', inserted: true, writeProtected: true });
    await converge(s, virtualMediaKind, { ...r, spec: { image: 'http://repo.example/y.iso' } });
    expect(bmc().state.virtualMedia.image).toBe('http://repo.example/y.iso');
    await virtualMediaKind.remove!(s, r, opContext());
    expect(bmc().state.virtualMedia.inserted).toBe(false);
  });

  it('a converged pass of every kind costs GETs only: no writes, no logins', async () => {
    const ref = passwordFile(lab, 'reads-pw', 'reads-secret-1');
    const resources: Array<[KindHandler<never, unknown, RedfishSession>, Resource<never>]> = [];
    const add = async <S,>(h: KindHandler<S, unknown, RedfishSession>, r: Resource<S>): Promise<void> => {
      resources.push([h as unknown as KindHandler<never, unknown, RedfishSession>, (await converge(s, h, r)) as unknown as Resource<never>]);
    };
    await add(systemKind, makeResource<SystemSpec>('redfish.System', 'node1', { powerState: 'On', assetTag: 'reads', bios: { ProcC1E: 'Disabled' }, reboot: 'IfRequired' }));
    await add(managerKind, makeResource<ManagerSpec>('redfish.Manager', 'bmc', { timeZone: '+03:00' }));
    await add(accountKind, makeResource<AccountSpec>('redfish.Account', 'reader', { username: 'reader', role: 'ReadOnly', password: ref }));
    await add(virtualMediaKind, makeResource<VirtualMediaSpec>('redfish.VirtualMedia', 'iso', { image: 'http://repo.example/z.iso' }));
    await add(firmwareKind, makeResource<FirmwareSpec>('redfish.Firmware', 'bmc-fw', { component: 'BMC', version: '6.10.30.00', image: 'http://repo.example/fw/BMC-6.10.30.00.bin' }));
    const before = { ...bmc().counters };
    const gets: Record<string, number> = {};
    for (const [h, r] of resources) {
      const g = bmc().counters.gets;
      expect(h.diff(r, await h.read(s, r, opContext()))).toEqual([]);
      gets[h.kind] = bmc().counters.gets - g;
    }
    expect(bmc().counters.writes).toBe(before.writes);
    expect(bmc().counters.authAttempts).toBe(before.authAttempts);
    // What each kind needs, with discovery cached by the session.
    expect(gets).toEqual({ 'redfish.System': 3, 'redfish.Manager': 1, 'redfish.Account': 1, 'redfish.VirtualMedia': 1, 'redfish.Firmware': 1 });
  });

  it('TLS pin mismatch: refused before anything is sent; the BMC saw no credentials', async () => {
    bmc().faults.wrongCertificate = true;
    const auth = bmc().counters.authAttempts;
    const requests = bmc().counters.requests;
    const err = await open(lab, 'node1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyError);
    expect((err as Error).message).toContain(lab.sim.wrongCertFingerprint);
    expect(bmc().counters.authAttempts).toBe(auth);
    expect(bmc().counters.requests).toBe(requests);
    // The pooled session's next connection is refused the same way.
    const err2 = await managerKind.read(s, makeResource<ManagerSpec>('redfish.Manager', 'bmc', { timeZone: '+00:00' }), opContext()).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(HostKeyError);
    expect(bmc().counters.authAttempts).toBe(auth);
  });

  it('caFile trust works too; a wrong password is an AuthError', async () => {
    const viaCa = await open(lab, 'node1', { certFingerprint: undefined, caFile: lab.sim.caFile });
    await viaCa.close();
    const err = await open(lab, 'node1', { password: passwordFile(lab, 'wrong-pw', 'not-the-password') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).not.toContain('not-the-password');
  });
});

function systemUriOf(s: RedfishSession): Promise<string> {
  return systemUri(s, AbortSignal.timeout(5_000));
}

async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}


