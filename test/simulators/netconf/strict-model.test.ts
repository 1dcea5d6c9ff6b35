import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NetconfSimulator, SimDevice } from '../../../fixtures/simulators/netconf/index.js';
import { NC, SW, SYS, TestNetconfClient, errorTags, firstDevice, isOk, seedXml, sleep, startSim } from './netconf-test-client.js';

/**
 * The typed model beyond what the contract suite covers against netconfd
 * (ietf-interfaces, ietf-ip): ietf-system and plumb-switch are as strict,
 * get-schema renders every advertised module, and a confirmed commit that
 * ends while running is locked leaves running as it is (counted).
 */
let sim: NetconfSimulator;
let device: SimDevice;
let nc: TestNetconfClient;

beforeAll(async () => {
  sim = await startSim({ confirmTimeoutUnitMs: 20 });
  device = firstDevice(sim);
  nc = await TestNetconfClient.open(device);
});
afterAll(async () => {
  await nc.close();
  await sim.stop();
});
beforeEach(async () => {
  await nc.rpc('<discard-changes/>');
  device.setRunning(seedXml('dev001', 0));
});

const edit = (config: string): Promise<string> => nc.editConfig('candidate', config);

describe('netconf simulator: typed modules', () => {
  it('plumb-switch: VLAN ids 1..4094, port mode access|trunk, names up to 32 characters', async () => {
    const vlans = (body: string): string => `<vlans xmlns="${SW}">${body}</vlans>`;
    const range = await edit(vlans('<vlan><id>4095</id></vlan>'));
    expect(errorTags(range)).toEqual(['invalid-value']);
    expect(range).toContain('<error-app-tag>not-in-range</error-app-tag>');
    expect(range).toContain("<error-path>/nc:rpc/nc:edit-config/nc:config/sw:vlans/sw:vlan[sw:id=&apos;4095&apos;]/sw:id</error-path>");
    expect(errorTags(await edit(vlans(`<vlan><id>5</id><name>${'x'.repeat(33)}</name></vlan>`)))).toEqual(['invalid-value']);
    const mode = await edit(`<ports xmlns="${SW}"><port><name>eth1</name><mode>hybrid</mode></port></ports>`);
    expect(mode).toContain('<error-app-tag>not-in-value-set</error-app-tag>');
    expect(errorTags(await edit(`<ports xmlns="${SW}"><port><name>eth2</name><trunk-vlans>0</trunk-vlans></port></ports>`))).toEqual(['invalid-value']);
    expect(isOk(await edit(vlans('<vlan><id>4094</id><name>top</name></vlan>')))).toBe(true);
  });

  it('ietf-system: an NTP port above 65535, an NTP server without its transport, an unknown leaf', async () => {
    const server = (body: string): string => `<system xmlns="${SYS}"><ntp><server><name>a</name>${body}</server></ntp></system>`;
    const port = await edit(server('<udp><address>192.0.2.1</address><port>99999</port></udp>'));
    expect(errorTags(port)).toEqual(['invalid-value']);
    expect(port).toContain("sys:server[sys:name=&apos;a&apos;]/sys:udp/sys:port</error-path>");
    const choice = await edit(server('<iburst>true</iburst>'));
    expect(errorTags(choice)).toEqual(['data-missing']);
    expect(choice).toContain('<error-app-tag>missing-choice</error-app-tag>');
    expect(choice).toContain('<missing-choice>transport</missing-choice>');
    const address = await edit(server('<udp><port>123</port></udp>'));
    expect(address).toContain('<error-app-tag>instance-required</error-app-tag>');
    expect(errorTags(await edit(server('<address>192.0.2.1</address>')))).toEqual(['unknown-element']);
    expect(isOk(await edit(server('<udp><address>ntp.example.net</address><port>123</port></udp>')))).toBe(true);
  });

  it('get-schema renders each advertised module from the model, imports and augments included', async () => {
    const schema = async (module: string): Promise<string> =>
      /<data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">([\s\S]*)<\/data>/.exec(await nc.rpc(`<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><identifier>${module}</identifier></get-schema>`))?.[1] ?? '';
    const ip = await schema('ietf-ip');
    expect(ip).toContain('import ietf-interfaces');
    expect(ip).toContain('augment &quot;/if:interfaces/if:interface&quot;');
    expect(ip).toContain('range &quot;0..32&quot;');
    expect(await schema('plumb-switch')).toContain('leaf-list trunk-vlans');
    expect(await schema('ietf-system')).toContain('choice transport');
    expect(await schema('iana-if-type')).toContain('identity ethernetCsmacd');
    expect(await schema('ietf-netconf-monitoring')).toContain('rpc get-schema');
  });
});

describe('netconf simulator: confirmed commit under a running lock', () => {
  it('a timeout while running is locked ends the pending commit and keeps running (lockedRollbacks), as netconfd does', async () => {
    const other = await TestNetconfClient.open(device);
    await other.ok('<lock><target><running/></target></lock>');
    await other.ok(`<edit-config><target><candidate/></target><config><vlans xmlns="${SW}" xmlns:nc="${NC}"><vlan><id>77</id></vlan></vlans></config></edit-config>`);
    const before = { ...device.counters };
    await other.ok('<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>');
    for (let i = 0; i < 200 && device.confirmedCommitPending; i += 1) await sleep(10);
    expect(device.confirmedCommitPending).toBe(false);
    expect(device.running()).toContain('<id>77</id>');
    expect(device.counters.lockedRollbacks - before.lockedRollbacks).toBe(1);
    expect(device.counters.rollbacks - before.rollbacks).toBe(0);
    await other.close();
  });
});
