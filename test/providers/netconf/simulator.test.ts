/**
 * The netconf provider against the NETCONF device simulator: the provider
 * contract for every profile (full, base10, running-only), then transaction
 * scenarios with the simulator's faults and counters.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { netconfProvider, RpcError, type ConfigSpec, type NetconfSession } from '../../../providers/netconf/index.js';
import { HostKeyError, ProviderError, SessionLostError, TimeoutError, VerifyError } from '../../../src/errors.js';
import type { BatchItem, Resource } from '../../../src/provider.js';
import { describeProviderContract, opContext, testLog } from '../../helpers/provider-contract.js';
import { makeResource } from '../../helpers/resources.js';
import { interfaceSpec, secrets, startNetconfLab, SW_NS, vlanResource, vlanSpec, type NetconfLab } from './netconf-lab.js';

const configKind = netconfProvider.kinds[0]!;

for (const profile of ['full', 'base10', 'running-only'] as const) {
  let lab: NetconfLab;
  describeProviderContract(`netconf on the simulator (${profile})`, async () => {
    lab = await startNetconfLab(['sw1'], { profile, empty: true });
    return {
      provider: netconfProvider,
      target: lab.target('sw1'),
      secrets,
      cases: [
        {
          kind: 'netconf.Config',
          create: vlanResource('contract-vlans', 'sw1', [{ id: 100, name: 'users' }, { id: 200, name: 'voice' }]),
          update: vlanResource('contract-vlans', 'sw1', [{ id: 100, name: 'staff', description: 'renamed' }, { id: 200, name: 'voice' }]),
        },
        {
          kind: 'netconf.Config',
          create: makeResource('netconf.Config', 'contract-ports', { mode: 'replace', keys: { 'ports/port': ['name'] }, config: { ports: { '@xmlns': SW_NS, port: [{ name: 'eth1', mode: 'access', 'access-vlan': 10 }] } } } satisfies ConfigSpec, { target: 'sw1' }),
          update: makeResource('netconf.Config', 'contract-ports', { mode: 'replace', keys: { 'ports/port': ['name'] }, config: { ports: { '@xmlns': SW_NS, port: [{ name: 'eth1', mode: 'trunk', 'trunk-vlans': [1, 10, 100] }] } } } satisfies ConfigSpec, { target: 'sw1' }),
        },
      ],
      writes: () => {
        const c = lab.sim.device('sw1').counters;
        return c.editConfigs + c.commits;
      },
      teardown: () => lab.stop(),
    };
  });
}

describe('transactions on the simulator', () => {
  let lab: NetconfLab;
  let s: NetconfSession;
  const dev = () => lab.sim.device('sw1');
  const item = (r: Resource, remove = false): BatchItem => ({ r, changes: [], remove });

  beforeAll(async () => {
    lab = await startNetconfLab(['sw1', 'ro1', 'b10'], { profile: (n) => (n === 'ro1' ? 'running-only' : n === 'b10' ? 'base10' : 'full') });
  });
  afterAll(async () => {
    await s?.close();
    await lab.stop();
  });
  beforeEach(async () => {
    for (const d of lab.sim.devices) d.faults = {};
    if (!s?.alive) s = await lab.open('sw1');
  });

  it('the whole batch is one transaction: lock, one edit-config per resource, confirmed commit, re-read, confirm', async () => {
    const before = { ...dev().counters };
    const a = vlanResource('tx-a', 'sw1', [{ id: 301, name: 'a' }]);
    const b = vlanResource('tx-b', 'sw1', [{ id: 302, name: 'b' }]);
    const progress: unknown[] = [];
    const ctx = { ...opContext(), checkpoint: (p: unknown) => progress.push(p) };
    const applied = await netconfProvider.applyBatch!(s, [item(a), item(b)], ctx as never);
    expect(applied).toHaveLength(2);
    const c = dev().counters;
    expect(c.editConfigs - before.editConfigs).toBe(2);
    expect(c.confirmedCommits - before.confirmedCommits).toBe(1);
    expect(c.confirms - before.confirms).toBe(1);
    expect(c.commits - before.commits).toBe(2); // the confirmed commit and its confirmation
    expect(progress).toMatchObject([{ persistId: expect.stringMatching(/^[0-9a-f]{32}$/), confirmBy: expect.any(Number) }]);
    expect(dev().running()).toContain('<id>301</id>');
    expect(dev().lockHolders).toEqual({});
    expect(dev().confirmedCommitPending).toBe(false);
  });

  it('a failure in the middle leaves the device unchanged (the candidate is discarded, locks released)', async () => {
    const running = dev().running();
    const before = dev().counters.editConfigs;
    // The second resource declares the wrong key for vlans/vlan: the device refuses its edit (missing-element).
    const a = vlanResource('mid-a', 'sw1', [{ id: 401, name: 'a' }]);
    const b = makeResource('netconf.Config', 'mid-b', { keys: { 'vlans/vlan': ['name'] }, config: { vlans: { '@xmlns': SW_NS, vlan: [{ name: 'b' }] } } } satisfies ConfigSpec, { target: 'sw1' });
    const c = vlanResource('mid-c', 'sw1', [{ id: 403, name: 'c' }]);
    const err = await netconfProvider.applyBatch!(s, [item(a), item(b), item(c)], opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).tag).toBe('missing-element');
    expect((err as RpcError).retryable).toBe(false);
    expect((err as RpcError).message).toMatch(/edit-config of netconf.Config\/mid-b/);
    expect(dev().counters.editConfigs - before).toBe(2); // a went into the candidate, b failed, c was never sent
    expect(dev().running()).toBe(running);
    expect(dev().candidate()).toBe(running);
    expect(dev().lockHolders).toEqual({});
    expect(s.alive).toBe(true);
  });

  it('a commit that answers <ok/> but changes nothing is caught by the re-read of running, and cancelled', async () => {
    dev().faults = { commitOkNoChange: true };
    const running = dev().running();
    const r = vlanResource('nochange', 'sw1', [{ id: 501, name: 'x' }]);
    const err = await configKind.apply(s, r, configKind.diff(r, undefined), opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as Error).message).toMatch(/netconf.Config\/nochange differs at \/config\/vlans\/vlan\/501/);
    expect(dev().running()).toBe(running);
    expect(dev().lockHolders).toEqual({});
    dev().faults = {};
    await configKind.apply(s, r, configKind.diff(r, undefined), opContext());
    expect(configKind.diff(r, await configKind.read(s, r, opContext()))).toEqual([]);
  });

  it('a lock held by another session is a retryable lock-denied error; nothing is written', async () => {
    const other = await lab.open('sw1');
    await other.lock('running', AbortSignal.timeout(5_000));
    const before = dev().counters.editConfigs;
    const r = vlanResource('locked', 'sw1', [{ id: 601, name: 'x' }]);
    const err = await configKind.apply(s, r, configKind.diff(r, undefined), opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).tag).toBe('lock-denied');
    expect((err as RpcError).retryable).toBe(true);
    expect((err as RpcError).info['session-id']).toBe(other.client.sessionId);
    expect(dev().counters.editConfigs).toBe(before);
    await other.close();
    // The other session's end released its lock: the same apply now goes through.
    await configKind.apply(s, r, configKind.diff(r, undefined), opContext());
    expect(dev().running()).toContain('<id>601</id>');
  });

  it('running-only device: lock running, ONE edit-config with rollback-on-error, no commit', async () => {
    const ro = await lab.open('ro1');
    const d = lab.sim.device('ro1');
    expect(ro.hasCandidate).toBe(false);
    const before = { ...d.counters };
    const a = vlanResource('ro-a', 'ro1', [{ id: 701, name: 'a' }]);
    const b = vlanResource('ro-b', 'ro1', [{ id: 702, name: 'b' }]);
    await netconfProvider.applyBatch!(ro, [item(a), item(b)], opContext());
    expect(d.counters.editConfigs - before.editConfigs).toBe(1);
    expect(d.counters.commits - before.commits).toBe(0);
    expect(d.running()).toMatch(/<id>701<\/id>[\s\S]*<id>702<\/id>/);
    // A failing edit changes nothing at all.
    const running = d.running();
    d.faults = { rpcError: { rpc: 'edit-config', tag: 'invalid-value', count: 1 } };
    const c = vlanResource('ro-c', 'ro1', [{ id: 703, name: 'c' }]);
    await expect(netconfProvider.applyBatch!(ro, [item(c), item(a, true)], opContext())).rejects.toBeInstanceOf(RpcError);
    expect(d.running()).toBe(running);
    expect(d.lockHolders).toEqual({});
    await ro.close();
  });

  it('base10 device: end-of-message framing, delete instead of remove, confirmed commit', async () => {
    const b10 = await lab.open('b10');
    expect(b10.client.framing).toBe('eom');
    const d = lab.sim.device('b10');
    const r = vlanResource('b10-v', 'b10', [{ id: 801, name: 'x' }]);
    await configKind.apply(b10, r, configKind.diff(r, undefined), opContext());
    expect(configKind.diff(r, await configKind.read(b10, r, opContext()))).toEqual([]);
    expect(d.counters.confirms).toBeGreaterThan(0);
    await configKind.remove!(b10, r, opContext());
    expect(await configKind.read(b10, r, opContext())).toBeUndefined();
    await b10.close();
  });

  it('deletion removes exactly what the resource named, in merge mode', async () => {
    // eth1 has a description ("access port") the resource does not name; the resource owns eth1's enabled leaf only.
    const r = makeResource('netconf.Config', 'eth1-enabled', interfaceSpec([{ name: 'eth1', enabled: false }]), { target: 'sw1' });
    await configKind.apply(s, r, configKind.diff(r, await configKind.read(s, r, opContext())), opContext());
    const eth1 = (): string => /<interface><name>eth1<\/name>.*?<\/interface>/.exec(dev().running())?.[0] ?? '';
    expect(eth1()).toMatch(/<description>access port<\/description>.*<enabled>false<\/enabled>/);
    await configKind.remove!(s, r, opContext());
    expect(eth1()).toContain('<description>access port</description>');
    expect(eth1()).not.toContain('<enabled>');
    expect(await configKind.read(s, r, opContext())).toBeUndefined();
  });

  it('a hung RPC times out with TimeoutError and the session is dropped (its locks die with it)', async () => {
    const t = await lab.open('sw1', { rpcTimeout: '300ms' });
    dev().faults = { hangRpc: 'get-config' };
    const r = vlanResource('hang', 'sw1', [{ id: 901, name: 'x' }]);
    const started = Date.now();
    await expect(configKind.read(t, r, opContext())).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(t.alive).toBe(false);
    await expect(configKind.read(t, r, opContext())).rejects.toBeInstanceOf(SessionLostError);
  });

  it('the connection dropped on commit fails the transaction with SessionLostError (retryable)', async () => {
    const t = await lab.open('sw1');
    dev().faults = { dropOnCommit: 'before' };
    const running = dev().running();
    const r = vlanResource('drop', 'sw1', [{ id: 902, name: 'x' }]);
    const err = await configKind.apply(t, r, configKind.diff(r, undefined), opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionLostError);
    expect((err as SessionLostError).retryable).toBe(true);
    expect(t.alive).toBe(false);
    expect(dev().running()).toBe(running);
  });

  it('an interrupted confirmed commit (resume.progress.persistId) is cancelled before the read', async () => {
    const t = await lab.open('sw1');
    const r = vlanResource('resume', 'sw1', [{ id: 903, name: 'x' }]);
    // Leave a confirmed commit unconfirmed, as a crash between commit and confirm would.
    await t.lock('running', AbortSignal.timeout(5_000));
    await t.lock('candidate', AbortSignal.timeout(5_000));
    await t.editConfig('candidate', [], {}, AbortSignal.timeout(5_000)).catch(() => {});
    await t.rpc(`<edit-config><target><candidate/></target><config><vlans xmlns="${SW_NS}"><vlan><id>903</id><name>x</name></vlan></vlans></config></edit-config>`, 'edit-config', AbortSignal.timeout(5_000));
    await t.commit({ confirmed: { timeoutS: 60, persist: 'p-resume' } }, AbortSignal.timeout(5_000));
    t.client.destroy();
    expect(dev().confirmedCommitPending).toBe(true);
    expect(configKind.diff(r, await configKind.read(s, r, opContext()))).toEqual([]); // looks converged, but unconfirmed
    const resumed: Resource = { ...r, resume: { startedAt: Date.now(), progress: { persistId: 'p-resume', confirmBy: Date.now() + 60_000 } } };
    const actual = await configKind.read(s, resumed, opContext());
    expect(dev().confirmedCommitPending).toBe(false);
    expect(actual).toBeUndefined();
    expect(dev().running()).not.toContain('<id>903</id>');
  });

  it('refuses a host key other than the pinned one before sending credentials', async () => {
    const wrong = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const sessions = dev().counters.sessions;
    await expect(netconfProvider.open(lab.target('sw1', { hostKey: wrong }), { secrets, signal: AbortSignal.timeout(5_000), log: testLog(), connectTimeoutMs: 5_000 })).rejects.toBeInstanceOf(HostKeyError);
    expect(dev().counters.sessions).toBe(sessions);
  });

  it('a spec that names a list without keys is a SpecError before anything is sent', async () => {
    const r = makeResource('netconf.Config', 'nokeys', { config: { vlans: { '@xmlns': SW_NS, vlan: [{ id: 1, name: 'x' }] } } } satisfies ConfigSpec, { target: 'sw1' });
    const rpcs = dev().counters.rpcs;
    await expect(configKind.read(s, r, opContext())).rejects.toThrow(/declare its key leaves/);
    expect(dev().counters.rpcs).toBe(rpcs);
    expect(() => configKind.diff(vlanResource('ok', 'sw1', [{ id: 1, name: 'x' }]), undefined)).not.toThrow();
    void ProviderError;
    void vlanSpec;
  });
});

describe('message size limits on the simulator', () => {
  it('a reply larger than maxMessageSize closes the session with a typed error', async () => {
    const lab = await startNetconfLab(['big']);
    try {
      const vlans = Array.from({ length: 3000 }, (_, i) => `<vlan><id>${i + 2}</id><name>vlan-${'x'.repeat(40)}-${i}</name></vlan>`).join('');
      lab.sim.device('big').setRunning(`<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><vlans xmlns="${SW_NS}">${vlans}</vlans></config>`);
      const s = await lab.open('big', { maxMessageSize: 65536 });
      const err = await s.getConfig('running', undefined, AbortSignal.timeout(5_000)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as Error).message).toMatch(/message too large/);
      expect(s.alive).toBe(false);
    } finally {
      await lab.stop();
    }
  });
});
