import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetconfSimulator } from '../../../fixtures/simulators/netconf/index.js';
import { IF, SW, SYS, TestNetconfClient, dataOf, errorTags, firstDevice, startSim } from './netconf-test-client.js';

let sim: NetconfSimulator;
let nc: TestNetconfClient;

beforeAll(async () => {
  sim = await startSim();
  nc = await TestNetconfClient.open(firstDevice(sim));
});
afterAll(async () => {
  await nc.close();
  await sim.stop();
});

const filtered = async (filter: string, source: 'running' | 'candidate' = 'running'): Promise<string> =>
  dataOf(await nc.getConfig(source, `<filter type="subtree">${filter}</filter>`));

describe('netconf simulator: get-config subtree filters', () => {
  it('returns the whole datastore without a filter, and nothing for an empty filter', async () => {
    const all = dataOf(await nc.getConfig());
    expect(all).toContain(`<system xmlns="${SYS}">`);
    expect(all).toContain(`<interfaces xmlns="${IF}">`);
    expect(all).toContain(`<vlans xmlns="${SW}">`);
    expect(await filtered('')).toBe('');
  });

  it('selects by namespace: the same name in another namespace matches nothing; no namespace matches any', async () => {
    const system = await filtered(`<system xmlns="${SYS}"/>`);
    expect(system).toMatch(new RegExp(`^<system xmlns="${SYS}">.*</system>$`));
    expect(system).toContain('<hostname>dev001</hostname>');
    expect(await filtered('<system xmlns="urn:example:other"/>')).toBe('');
    expect(await filtered('<vlans xmlns=""/>')).toContain('<vlan><id>10</id>');
  });

  it('content match on a list key selects that entry whole', async () => {
    const eth1 = await filtered(`<interfaces xmlns="${IF}"><interface><name>eth1</name></interface></interfaces>`);
    expect(eth1).toMatch(new RegExp(`^<interfaces xmlns="${IF}"><interface><name>eth1</name>.*</interface></interfaces>$`));
    expect(eth1).toContain('<description>access port</description>');
    expect(eth1).not.toContain('eth0');
    expect(await filtered(`<interfaces xmlns="${IF}"><interface><name>eth9</name></interface></interfaces>`)).toBe('');
  });

  it('selection nodes pick leaves; content match plus selection returns the key and the selected leaves', async () => {
    const names = await filtered(`<interfaces xmlns="${IF}"><interface><name/></interface></interfaces>`);
    expect(names).toBe(`<interfaces xmlns="${IF}"><interface><name>eth0</name></interface><interface><name>eth1</name></interface><interface><name>eth2</name></interface><interface><name>eth3</name></interface></interfaces>`);
    const description = await filtered(`<vlans xmlns="${SW}"><vlan><id>10</id><description/></vlan></vlans>`);
    expect(description).toBe(`<vlans xmlns="${SW}"><vlan><id>10</id><description>management network</description></vlan></vlans>`);
    // An entry matching the key but lacking the selected leaf comes back with its key only.
    expect(await filtered(`<vlans xmlns="${SW}"><vlan><id>1</id><description/></vlan></vlans>`)).toBe(`<vlans xmlns="${SW}"><vlan><id>1</id></vlan></vlans>`);
  });

  it('content match on a non-key leaf filters entries; several filter entries of one list combine', async () => {
    const trunks = await filtered(`<ports xmlns="${SW}"><port><mode>trunk</mode></port></ports>`);
    expect(trunks).toContain('<name>eth2</name>');
    expect(trunks).not.toContain('<name>eth1</name>');
    const two = await filtered(`<vlans xmlns="${SW}"><vlan><id>1</id></vlan><vlan><id>10</id><name/></vlan></vlans>`);
    expect(two).toBe(`<vlans xmlns="${SW}"><vlan><id>1</id><name>default</name></vlan><vlan><id>10</id><name>mgmt</name></vlan></vlans>`);
  });

  it('nests containment nodes through namespaces (ietf-ip inside ietf-interfaces)', async () => {
    const ip = await filtered(`<interfaces xmlns="${IF}"><interface><name>eth0</name><ipv4 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"/></interface></interfaces>`);
    expect(ip).toBe(
      `<interfaces xmlns="${IF}"><interface><name>eth0</name><ipv4 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><address><ip>10.0.1.1</ip><prefix-length>24</prefix-length></address></ipv4></interface></interfaces>`,
    );
  });

  it('filters the candidate as well, and get returns running', async () => {
    expect(await filtered(`<system xmlns="${SYS}"><hostname/></system>`, 'candidate')).toBe(`<system xmlns="${SYS}"><hostname>dev001</hostname></system>`);
    const get = dataOf(await nc.rpc(`<get><filter type="subtree"><system xmlns="${SYS}"><hostname/></system></filter></get>`));
    expect(get).toBe(`<system xmlns="${SYS}"><hostname>dev001</hostname></system>`);
  });

  it('refuses bad xpath filters, unknown filter types and unknown sources', async () => {
    expect(errorTags(await nc.getConfig('running', '<filter type="xpath" select="/zz:system"/>'))).toEqual(['bad-attribute']);
    expect(errorTags(await nc.getConfig('running', '<filter type="regex"/>'))).toEqual(['bad-attribute']);
    expect(dataOf(await nc.getConfig('running', `<filter type="xpath" xmlns:sys="${SYS}" select="/sys:system/sys:hostname"/>`))).toBe(`<system xmlns="${SYS}"><hostname>dev001</hostname></system>`);
    expect(errorTags(await nc.rpc('<get-config><source><startup/></source></get-config>'))).toEqual(['invalid-value']);
    expect(errorTags(await nc.rpc('<get-config/>'))).toEqual(['missing-element']);
  });
});
