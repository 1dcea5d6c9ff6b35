import { afterEach, describe, expect, it } from 'vitest';
import type { NetconfSimulator } from '../../../fixtures/simulators/netconf/index.js';
import { SW, TestNetconfClient, errorInfoSessionId, errorTags, firstDevice, isOk, sleep, startSim } from './netconf-test-client.js';

const vlanEdit = (id: number): string => `<edit-config><target><candidate/></target><config><vlans xmlns="${SW}"><vlan><id>${id}</id><name>v${id}</name></vlan></vlans></config></edit-config>`;
const hasVlan = (xml: string, id: number): boolean => xml.includes(`<vlan><id>${id}</id>`);
/** One confirm-timeout second lasts this many ms in these tests. */
const UNIT_MS = 40;

let sim: NetconfSimulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

async function waitFor(check: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not reached');
    await sleep(5);
  }
}

describe('netconf simulator: commit and friends', () => {
  it('commit copies the candidate to running; discard-changes resets the candidate; validate checks', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(20));
    expect(hasVlan(device.running(), 20)).toBe(false);
    await nc.ok('<commit/>');
    expect(hasVlan(device.running(), 20)).toBe(true);
    expect(device.candidate()).toBe(device.running());

    // As on netconfd: a commit right after validating the candidate commits nothing, and resets the candidate.
    await nc.ok(vlanEdit(22));
    await nc.ok('<validate><source><candidate/></source></validate>');
    expect(hasVlan(device.candidate(), 22)).toBe(true);
    await nc.ok('<commit/>');
    expect(hasVlan(device.running(), 22)).toBe(false);
    expect(device.candidate()).toBe(device.running());

    await nc.ok(vlanEdit(21));
    await nc.ok('<discard-changes/>');
    expect(hasVlan(device.candidate(), 21)).toBe(false);
    expect(device.candidate()).toBe(device.running());

    const dup = await nc.rpc(`<validate><source><config><vlans xmlns="${SW}"><vlan><id>5</id></vlan><vlan><id>5</id></vlan></vlans></config></source></validate>`);
    expect(errorTags(dup)).toEqual(['operation-failed']);
    expect(dup).toContain('<error-app-tag>data-not-unique</error-app-tag>');
    await nc.ok(`<validate><source><config><vlans xmlns="${SW}"><vlan><id>5</id></vlan></vlans></config></source></validate>`);
    await nc.close();
  });

  it('confirmed commit applies at once and a later commit from the same session confirms it', async () => {
    sim = await startSim({ confirmTimeoutUnitMs: UNIT_MS });
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(30));
    await nc.ok('<commit><confirmed/><confirm-timeout>5</confirm-timeout></commit>');
    expect(hasVlan(device.running(), 30)).toBe(true);
    expect(device.confirmedCommitPending).toBe(true);
    await nc.ok('<commit/>');
    expect(device.confirmedCommitPending).toBe(false);
    await sleep(5 * UNIT_MS + 100);
    expect(hasVlan(device.running(), 30)).toBe(true);
    expect(device.counters).toMatchObject({ commits: 2, confirmedCommits: 1, confirms: 1, rollbacks: 0 });
    await nc.close();
  });

  it('rolls running back when the confirm-timeout passes', async () => {
    sim = await startSim({ confirmTimeoutUnitMs: UNIT_MS });
    const device = firstDevice(sim);
    const before = device.running();
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(31));
    await nc.ok('<commit><confirmed/><confirm-timeout>2</confirm-timeout></commit>');
    expect(hasVlan(device.running(), 31)).toBe(true);
    await sleep(UNIT_MS);
    expect(hasVlan(device.running(), 31)).toBe(true);
    await waitFor(() => !device.confirmedCommitPending);
    expect(device.running()).toBe(before);
    expect(device.candidate()).toBe(before);
    expect(device.counters.rollbacks).toBe(1);
    // Too late to confirm now: this is a plain commit of an unchanged candidate.
    await nc.ok('<commit/>');
    expect(device.running()).toBe(before);
    await nc.close();
  });

  it('a follow-up confirmed commit extends the timeout and keeps the first backup', async () => {
    sim = await startSim({ confirmTimeoutUnitMs: UNIT_MS });
    const device = firstDevice(sim);
    const before = device.running();
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(32));
    await nc.ok('<commit><confirmed/><confirm-timeout>3</confirm-timeout></commit>');
    await nc.ok(vlanEdit(33));
    await nc.ok('<commit><confirmed/><confirm-timeout>3</confirm-timeout></commit>');
    expect(hasVlan(device.running(), 33)).toBe(true);
    await waitFor(() => !device.confirmedCommitPending);
    expect(device.running()).toBe(before);
    await nc.close();
  });

  it('rolls back at once when the issuing session ends without persist', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const before = device.running();
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(34));
    await nc.ok('<commit><confirmed/></commit>');
    expect(hasVlan(device.running(), 34)).toBe(true);
    await nc.close();
    await waitFor(() => !device.confirmedCommitPending);
    expect(device.running()).toBe(before);
    expect(device.counters.rollbacks).toBe(1);
  });

  it('with persist, survives its session and is confirmed from another session by persist-id', async () => {
    sim = await startSim({ confirmTimeoutUnitMs: UNIT_MS });
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    await a.ok(vlanEdit(35));
    await a.ok('<commit><confirmed/><confirm-timeout>10</confirm-timeout><persist>plumb-42</persist></commit>');
    await a.close();
    await waitFor(() => device.openSessions === 0);
    expect(device.confirmedCommitPending).toBe(true);
    expect(hasVlan(device.running(), 35)).toBe(true);

    const b = await TestNetconfClient.open(device);
    // Running cannot be locked while a confirmed commit is pending, even with its session gone (netconfd).
    expect(errorTags(await b.rpc('<lock><target><running/></target></lock>'))).toEqual(['in-use']);
    expect(errorTags(await b.rpc('<commit/>'))).toEqual(['in-use']);
    expect(errorTags(await b.rpc('<commit><persist-id>wrong</persist-id></commit>'))).toEqual(['invalid-value']);
    await b.ok('<commit><persist-id>plumb-42</persist-id></commit>');
    expect(device.confirmedCommitPending).toBe(false);
    await sleep(10 * UNIT_MS + 100);
    expect(hasVlan(device.running(), 35)).toBe(true);
    expect(device.counters.confirms).toBe(1);
    await b.close();
  });

  it('without persist, another session can neither confirm nor lock running while it is pending', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    const b = await TestNetconfClient.open(device);
    await a.ok(vlanEdit(36));
    await a.ok('<commit><confirmed/></commit>');
    const denied = await b.rpc('<commit/>');
    expect(errorTags(denied)).toEqual(['in-use']);
    expect(denied).toContain('<error-app-tag>outstanding-confirmed-commit</error-app-tag>');
    expect(errorInfoSessionId(denied)).toBeUndefined();
    expect(errorTags(await b.rpc('<commit><persist-id>x</persist-id></commit>'))).toEqual(['operation-failed']);
    expect(errorTags(await b.rpc('<lock><target><running/></target></lock>'))).toEqual(['in-use']);
    expect(errorTags(await b.rpc('<cancel-commit/>'))).toEqual(['operation-failed']);
    await a.ok('<commit/>');
    await b.ok('<lock><target><running/></target></lock>');
    await a.close();
    await b.close();
  });

  it('cancel-commit rolls back at once: from the issuing session, or by persist-id from another', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const before = device.running();
    const a = await TestNetconfClient.open(device);
    expect(errorTags(await a.rpc('<cancel-commit/>'))).toEqual(['operation-failed']);
    await a.ok(vlanEdit(37));
    await a.ok('<commit><confirmed/></commit>');
    await a.ok('<cancel-commit/>');
    expect(device.running()).toBe(before);
    expect(device.confirmedCommitPending).toBe(false);

    await a.ok(vlanEdit(38));
    await a.ok('<commit><confirmed/><persist>p1</persist></commit>');
    const b = await TestNetconfClient.open(device);
    await b.ok('<cancel-commit><persist-id>p1</persist-id></cancel-commit>');
    expect(device.running()).toBe(before);
    expect(device.counters.rollbacks).toBe(2);
    await a.close();
    await b.close();
  });

  it('refuses a bad confirm-timeout and a persist-id with nothing pending', async () => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim));
    expect(errorTags(await nc.rpc('<commit><confirmed/><confirm-timeout>0</confirm-timeout></commit>'))).toEqual(['invalid-value']);
    expect(errorTags(await nc.rpc('<commit><confirmed/><confirm-timeout>soon</confirm-timeout></commit>'))).toEqual(['bad-element']);
    expect(errorTags(await nc.rpc('<commit><persist-id>p</persist-id></commit>'))).toEqual(['operation-failed']);
    expect(firstDevice(sim).confirmedCommitPending).toBe(false);
    await nc.close();
  });
});

describe('netconf simulator: running-only profile', () => {
  it('edits running directly; the candidate is a datastore it has not (config not found), commit and friends answer operation-not-supported', async () => {
    sim = await startSim({ profile: 'running-only' });
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    await nc.ok('<lock><target><running/></target></lock>');
    const edit = await nc.rpc(
      `<edit-config><target><running/></target><error-option>rollback-on-error</error-option><config><vlans xmlns="${SW}"><vlan><id>60</id><name>direct</name></vlan></vlans></config></edit-config>`,
    );
    expect(isOk(edit)).toBe(true);
    expect(hasVlan(device.running(), 60)).toBe(true);

    const before = device.running();
    const failing = await nc.rpc(
      `<edit-config><target><running/></target><error-option>rollback-on-error</error-option><config><vlans xmlns="${SW}" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><vlan><id>61</id></vlan><vlan nc:operation="create"><id>60</id></vlan></vlans></config></edit-config>`,
    );
    expect(errorTags(failing)).toEqual(['data-exists']);
    expect(device.running()).toBe(before);

    for (const rpc of [vlanEdit(62), '<get-config><source><candidate/></source></get-config>', '<lock><target><candidate/></target></lock>', '<validate><source><candidate/></source></validate>']) {
      const reply = await nc.rpc(rpc);
      expect(errorTags(reply), rpc).toEqual(['invalid-value']);
      expect(reply).toContain('config not found');
    }
    for (const rpc of [
      '<commit/>',
      '<commit><confirmed/></commit>',
      '<discard-changes/>',
      '<cancel-commit/>',
    ]) {
      expect(errorTags(await nc.rpc(rpc)), rpc).toEqual(['operation-not-supported']);
    }
    await nc.ok('<validate><source><running/></source></validate>');
    await nc.ok('<unlock><target><running/></target></unlock>');
    await nc.close();
  });
});
