import { afterEach, describe, expect, it } from 'vitest';
import type { NetconfSimulator } from '../../../fixtures/simulators/netconf/index.js';
import { SW, TestNetconfClient, errorInfoSessionId, errorTags, firstDevice, isOk, settlesWithin, sleep, startSim } from './netconf-test-client.js';

const LOCK_CANDIDATE = '<lock><target><candidate/></target></lock>';
const UNLOCK_CANDIDATE = '<unlock><target><candidate/></target></unlock>';
const vlan = (id: number): string => `<vlans xmlns="${SW}"><vlan><id>${id}</id><name>v${id}</name></vlan></vlans>`;

let sim: NetconfSimulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

describe('netconf simulator: locks', () => {
  it('denies a held lock to another session with the holder in error-info, and blocks its edits with in-use', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    const b = await TestNetconfClient.open(device);
    await a.ok(LOCK_CANDIDATE);
    expect(device.lockHolders.candidate).toBe(a.sessionId);

    const denied = await b.rpc(LOCK_CANDIDATE);
    expect(errorTags(denied)).toEqual(['lock-denied']);
    expect(errorInfoSessionId(denied)).toBe(String(a.sessionId));
    // Locking again from the holder is denied too.
    expect(errorTags(await a.rpc(LOCK_CANDIDATE))).toEqual(['lock-denied']);

    // netconfd names no session in these.
    const inUse = await b.editConfig('candidate', vlan(20));
    expect(errorTags(inUse)).toEqual(['in-use']);
    expect(inUse).toContain('<error-type>application</error-type>');
    expect(errorInfoSessionId(inUse)).toBeUndefined();
    expect(errorTags(await b.rpc('<commit/>'))).toEqual(['in-use']);
    expect(errorTags(await b.rpc('<discard-changes/>'))).toEqual(['in-use']);
    expect(errorTags(await b.rpc(UNLOCK_CANDIDATE))).toEqual(['in-use']);

    expect(isOk(await a.editConfig('candidate', vlan(20)))).toBe(true);
    await a.ok('<commit/>');
    await a.ok(UNLOCK_CANDIDATE);
    await b.ok(LOCK_CANDIDATE);
    expect(device.running()).toContain('<vlan><id>20</id>');
    await a.close();
    await b.close();
  });

  it('locks running independently of the candidate; unlock of an unheld lock fails', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    const b = await TestNetconfClient.open(device);
    await a.ok('<lock><target><running/></target></lock>');
    await b.ok(LOCK_CANDIDATE);
    expect(device.lockHolders).toEqual({ running: a.sessionId, candidate: b.sessionId });
    expect(isOk(await b.editConfig('candidate', vlan(30)))).toBe(true);
    // The commit would change running, which a holds.
    expect(errorTags(await b.rpc('<commit/>'))).toEqual(['in-use']);
    expect(errorTags(await a.rpc(UNLOCK_CANDIDATE))).toEqual(['in-use']);
    await a.ok('<unlock><target><running/></target></unlock>');
    await a.close();
    await b.close();
  });

  it('releases the locks of a session that ends, and throws away its uncommitted candidate changes', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const before = device.running();
    const a = await TestNetconfClient.open(device);
    await a.ok(LOCK_CANDIDATE);
    await a.ok(`<edit-config><target><candidate/></target><config>${vlan(40)}</config></edit-config>`);
    expect(device.candidate()).toContain('<id>40</id>');
    await a.close();
    for (let i = 0; i < 50 && device.openSessions > 0; i += 1) await sleep(10);
    expect(device.lockHolders).toEqual({});
    expect(device.candidate()).toBe(before);
    const b = await TestNetconfClient.open(device);
    await b.ok(LOCK_CANDIDATE);
    await b.close();
  });

  it('unlocking the candidate without commit discards the changes', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    await a.ok(LOCK_CANDIDATE);
    await a.ok(`<edit-config><target><candidate/></target><config>${vlan(41)}</config></edit-config>`);
    await a.ok(UNLOCK_CANDIDATE);
    expect(device.candidate()).toBe(device.running());
    await a.close();
  });

  it('refuses to lock a candidate holding uncommitted changes (of any session, its own too), until they are discarded', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    const b = await TestNetconfClient.open(device);
    await a.ok(`<edit-config><target><candidate/></target><config>${vlan(50)}</config></edit-config>`);
    // As on netconfd, its own changes stop a session from locking as well.
    expect(errorTags(await a.rpc(LOCK_CANDIDATE))).toEqual(['resource-denied']);
    const denied = await b.rpc(LOCK_CANDIDATE);
    expect(errorTags(denied)).toEqual(['resource-denied']);
    expect(denied).toContain('candidate cannot be locked, discard-changes needed');
    expect(errorInfoSessionId(denied)).toBeUndefined();
    await b.ok('<discard-changes/>');
    await b.ok(LOCK_CANDIDATE);
    await a.close();
    await b.close();
  });

  it('kill-session ends the other session and frees its lock; killing yourself or a stranger is invalid-value', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    const b = await TestNetconfClient.open(device);
    await a.ok(LOCK_CANDIDATE);
    expect(errorTags(await b.rpc(`<kill-session><session-id>${b.sessionId}</session-id></kill-session>`))).toEqual(['invalid-value']);
    expect(errorTags(await b.rpc('<kill-session><session-id>9999</session-id></kill-session>'))).toEqual(['invalid-value']);
    await b.ok(`<kill-session><session-id>${a.sessionId}</session-id></kill-session>`);
    expect(await settlesWithin(a.connectionClosed, 2000)).toBe(true);
    expect(device.lockHolders).toEqual({});
    await b.ok(LOCK_CANDIDATE);
    await b.close();
  });

  it('close-session answers ok, then closes the channel and frees the locks', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const a = await TestNetconfClient.open(device);
    await a.ok(LOCK_CANDIDATE);
    await a.ok('<close-session/>');
    expect(await settlesWithin(a.channelClosed, 2000)).toBe(true);
    expect(device.lockHolders).toEqual({});
    expect(device.openSessions).toBe(0);
    await a.close();
  });
});
