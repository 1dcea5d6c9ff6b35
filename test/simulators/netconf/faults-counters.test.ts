import { afterEach, describe, expect, it } from 'vitest';
import type { NetconfSimulator } from '../../../fixtures/simulators/netconf/index.js';
import { SW, SYS, TestNetconfClient, errorTags, firstDevice, isOk, settlesWithin, startSim } from './netconf-test-client.js';

const vlanEdit = (id: number): string => `<edit-config><target><candidate/></target><config><vlans xmlns="${SW}"><vlan><id>${id}</id><name>v${id}</name></vlan></vlans></config></edit-config>`;
const GET_RUNNING = '<get-config><source><running/></source></get-config>';

let sim: NetconfSimulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

describe('netconf simulator: faults', () => {
  it('latencyMs delays every rpc, counted from arrival so pipelined rpcs overlap', async () => {
    sim = await startSim({ latencyMs: 80 });
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    let begin = Date.now();
    await nc.rpc(GET_RUNNING);
    expect(Date.now() - begin).toBeGreaterThanOrEqual(75);

    device.faults.latencyMs = 150;
    begin = Date.now();
    const frames = [0, 1, 2].map(() => nc.frame(nc.rpcXml(GET_RUNNING).xml));
    nc.write(Buffer.concat(frames));
    for (let i = 0; i < 3; i += 1) await nc.next();
    const elapsed = Date.now() - begin;
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(400);

    device.faults.latencyMs = 0;
    begin = Date.now();
    await nc.rpc(GET_RUNNING);
    expect(Date.now() - begin).toBeLessThan(60);
    await nc.close();
  });

  it("dropOnCommit 'before' closes the connection without a reply and without committing, then clears itself", async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const before = device.running();
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(70));
    device.faults.dropOnCommit = 'before';
    const reply = nc.rpc('<commit/>', 3000);
    reply.catch(() => undefined);
    expect(await settlesWithin(nc.connectionClosed, 2000)).toBe(true);
    await expect(reply).rejects.toThrow(/channel closed/);
    expect(device.running()).toBe(before);
    expect(device.faults.dropOnCommit).toBeUndefined();
    expect(device.counters.commits).toBe(1);

    const again = await TestNetconfClient.open(device);
    await again.ok(vlanEdit(70));
    await again.ok('<commit/>');
    expect(device.running()).toContain('<vlan><id>70</id>');
    await again.close();
  });

  it("dropOnCommit 'after' commits, then closes the connection without a reply", async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    await nc.ok('<lock><target><candidate/></target></lock>');
    await nc.ok(vlanEdit(71));
    device.faults.dropOnCommit = 'after';
    nc.write(nc.frame(nc.rpcXml('<commit/>').xml));
    expect(await settlesWithin(nc.connectionClosed, 2000)).toBe(true);
    expect(device.running()).toContain('<vlan><id>71</id>');
    expect(device.lockHolders).toEqual({});
  });

  it("dropOnCommit 'after' on a confirmed commit without persist: the session ends, so running rolls back", async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const before = device.running();
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(72));
    device.faults.dropOnCommit = 'after';
    nc.write(nc.frame(nc.rpcXml('<commit><confirmed/></commit>').xml));
    expect(await settlesWithin(nc.connectionClosed, 2000)).toBe(true);
    expect(device.running()).toBe(before);
    expect(device.counters.rollbacks).toBe(1);
  });

  it('rpcError answers the next N matching rpcs with the error, without running them', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const before = device.candidate();
    const nc = await TestNetconfClient.open(device);
    device.faults.rpcError = { rpc: 'edit-config', tag: 'resource-denied', count: 2, message: 'out of memory' };
    // Other rpcs are not affected.
    expect(isOk(await nc.rpc('<lock><target><candidate/></target></lock>'))).toBe(true);
    for (let i = 0; i < 2; i += 1) {
      const reply = await nc.rpc(vlanEdit(73));
      expect(errorTags(reply)).toEqual(['resource-denied']);
      expect(reply).toContain('<error-type>application</error-type>');
      expect(reply).toContain('out of memory');
    }
    expect(device.candidate()).toBe(before);
    expect(device.faults.rpcError).toBeUndefined();
    expect(isOk(await nc.rpc(vlanEdit(73)))).toBe(true);
    expect(device.counters.editConfigs).toBe(3);
    await nc.close();
  });

  it('hangRpc leaves the next matching rpc (and the session behind it) unanswered, then clears itself', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    await nc.rpc(GET_RUNNING);
    device.faults.hangRpc = 'get-config';
    await nc.ok('<lock><target><candidate/></target></lock>');
    const hung = nc.rpc(GET_RUNNING, 300);
    await expect(hung).rejects.toThrow(/no message/);
    expect(device.faults.hangRpc).toBeUndefined();
    const behind = nc.rpc('<unlock><target><candidate/></target></unlock>', 200);
    await expect(behind).rejects.toThrow(/no message/);

    const other = await TestNetconfClient.open(device);
    expect(await other.rpc(GET_RUNNING)).toContain('<data>');
    await other.close();
    await nc.close();
  });

  it('commitOkNoChange answers ok to commit and changes nothing', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const before = device.running();
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(74));
    device.faults.commitOkNoChange = true;
    await nc.ok('<commit/>');
    await nc.ok('<commit><confirmed/></commit>');
    expect(device.running()).toBe(before);
    expect(device.confirmedCommitPending).toBe(false);
    device.faults.commitOkNoChange = false;
    await nc.ok('<commit/>');
    expect(device.running()).toContain('<vlan><id>74</id>');
    await nc.close();
  });

  it('faults can be replaced as a whole object', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    device.faults = { rpcError: { rpc: 'get-config', tag: 'operation-failed' } };
    const nc = await TestNetconfClient.open(device);
    expect(errorTags(await nc.rpc(GET_RUNNING))).toEqual(['operation-failed']);
    expect(isOk(await nc.rpc(GET_RUNNING))).toBe(false);
    expect(await nc.rpc(GET_RUNNING)).toContain('<data>');
    await nc.close();
  });
});

describe('netconf simulator: counters', () => {
  it('read-only traffic leaves editConfigs and commits at 0', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    await nc.rpc(GET_RUNNING);
    await nc.rpc(`<get-config><source><candidate/></source><filter type="subtree"><system xmlns="${SYS}"/></filter></get-config>`);
    await nc.rpc('<get/>');
    await nc.ok('<lock><target><running/></target></lock>');
    await nc.ok('<unlock><target><running/></target></unlock>');
    await nc.close();
    expect(device.counters).toEqual({
      sessions: 1,
      rpcs: 5,
      getConfigs: 3,
      editConfigs: 0,
      commits: 0,
      confirmedCommits: 0,
      confirms: 0,
      rollbacks: 0,
      lockedRollbacks: 0,
      locks: 1,
      discards: 0,
    });
  });

  it('counts writes, commits and discards, failed ones included; resetCounters zeroes them', async () => {
    sim = await startSim();
    const device = firstDevice(sim);
    const nc = await TestNetconfClient.open(device);
    await nc.ok(vlanEdit(80));
    expect(errorTags(await nc.rpc(`<edit-config><target><running/></target><config/></edit-config>`))).toEqual(['operation-failed']);
    await nc.ok('<commit><confirmed/></commit>');
    await nc.ok('<commit/>');
    await nc.ok('<discard-changes/>');
    expect(device.counters).toMatchObject({ sessions: 1, rpcs: 5, editConfigs: 2, commits: 2, confirmedCommits: 1, confirms: 1, discards: 1 });
    device.resetCounters();
    expect(Object.values(device.counters).every((v) => v === 0)).toBe(true);
    await nc.close();
  });
});
