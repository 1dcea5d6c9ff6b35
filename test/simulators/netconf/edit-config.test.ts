import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NetconfSimulator, SimDevice } from '../../../fixtures/simulators/netconf/index.js';
import { IF, NC, SW, SYS, TestNetconfClient, dataOf, errorTags, firstDevice, isOk, seedXml, startSim } from './netconf-test-client.js';

/** One list entry's XML out of canonical datastore text (entries do not nest in these tests). */
function entry(xml: string, element: string, key: string): string | undefined {
  return new RegExp(`<${element}><(?:name|id)>${key}</(?:name|id)>.*?</${element}>`).exec(xml)?.[0];
}

const ifs = (body: string): string => `<interfaces xmlns="${IF}" xmlns:nc="${NC}">${body}</interfaces>`;
const vlans = (body: string): string => `<vlans xmlns="${SW}" xmlns:nc="${NC}">${body}</vlans>`;

let sim: NetconfSimulator;
let device: SimDevice;
let nc: TestNetconfClient;

beforeAll(async () => {
  sim = await startSim();
  device = firstDevice(sim);
  nc = await TestNetconfClient.open(device);
});
afterAll(async () => {
  await nc.close();
  await sim.stop();
});
beforeEach(() => {
  device.setRunning(seedXml('dev001', 0));
});

describe('netconf simulator: edit-config', () => {
  it('merges into lists by key: changes one leaf, keeps the others, adds new entries; running waits for commit', async () => {
    const before = device.running();
    const reply = await nc.editConfig(
      'candidate',
      ifs('<interface><name>eth1</name><description>to rack 7</description></interface><interface><name>eth4</name><enabled>true</enabled><type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type></interface>'),
    );
    expect(isOk(reply)).toBe(true);
    const candidate = device.candidate();
    const eth1 = entry(candidate, 'interface', 'eth1') ?? '';
    expect(eth1).toContain('<description>to rack 7</description>');
    expect(eth1).toContain('<enabled>true</enabled>');
    expect(eth1).toContain('ianaift:ethernetCsmacd</type>');
    expect(entry(candidate, 'interface', 'eth0')).toContain('<description>uplink</description>');
    expect(entry(candidate, 'interface', 'eth4')).toBe('<interface><name>eth4</name><enabled>true</enabled><type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type></interface>');
    expect([...candidate.matchAll(/<interface>/g)]).toHaveLength(5);
    expect(device.running()).toBe(before);
  });

  it('treats leaf-lists as sets', async () => {
    await nc.ok(
      `<edit-config><target><candidate/></target><config><ports xmlns="${SW}"><port><name>eth2</name><trunk-vlans>10</trunk-vlans><trunk-vlans>20</trunk-vlans></port></ports></config></edit-config>`,
    );
    expect(entry(device.candidate(), 'port', 'eth2')).toBe(
      '<port><name>eth2</name><mode>trunk</mode><trunk-vlans>1</trunk-vlans><trunk-vlans>10</trunk-vlans><trunk-vlans>20</trunk-vlans></port>',
    );
    await nc.ok(
      `<edit-config><target><candidate/></target><config><ports xmlns="${SW}" xmlns:nc="${NC}"><port><name>eth2</name><trunk-vlans nc:operation="delete">1</trunk-vlans></port></ports></config></edit-config>`,
    );
    expect(entry(device.candidate(), 'port', 'eth2')).toBe('<port><name>eth2</name><mode>trunk</mode><trunk-vlans>10</trunk-vlans><trunk-vlans>20</trunk-vlans></port>');
  });

  it('replaces a list entry whole', async () => {
    await nc.ok(`<edit-config><target><candidate/></target><config>${ifs('<interface nc:operation="replace"><name>eth1</name><enabled>false</enabled><type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type></interface>')}</config></edit-config>`);
    const candidate = device.candidate();
    expect(entry(candidate, 'interface', 'eth1')).toBe('<interface><name>eth1</name><enabled>false</enabled><type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type></interface>');
    expect(entry(candidate, 'interface', 'eth0')).toContain('<description>uplink</description>');
  });

  it('create: data-exists on an existing entry, with an error-path; a new entry is created', async () => {
    const exists = await nc.editConfig('candidate', vlans('<vlan nc:operation="create"><id>10</id><name>again</name></vlan>'));
    expect(errorTags(exists)).toEqual(['data-exists']);
    expect(exists).toContain('<error-path>/nc:rpc/nc:edit-config/nc:config/sw:vlans/sw:vlan[sw:id=&apos;10&apos;]</error-path>');
    expect(exists).toContain('xmlns:sw="urn:example:plumb:switch"');
    expect(exists).toContain('<error-type>application</error-type>');
    expect(isOk(await nc.editConfig('candidate', vlans('<vlan nc:operation="create"><id>30</id><name>voice</name></vlan>')))).toBe(true);
    expect(entry(device.candidate(), 'vlan', '30')).toBe('<vlan><id>30</id><name>voice</name></vlan>');
  });

  it('delete: data-missing when absent, removes when present; remove: no error when absent', async () => {
    expect(errorTags(await nc.editConfig('candidate', vlans('<vlan nc:operation="delete"><id>99</id></vlan>')))).toEqual(['data-missing']);
    expect(isOk(await nc.editConfig('candidate', vlans('<vlan nc:operation="remove"><id>99</id></vlan>')))).toBe(true);
    expect(isOk(await nc.editConfig('candidate', vlans('<vlan nc:operation="delete"><id>10</id></vlan>')))).toBe(true);
    expect(entry(device.candidate(), 'vlan', '10')).toBeUndefined();
    expect(entry(device.candidate(), 'vlan', '1')).toBeDefined();
    expect(isOk(await nc.editConfig('candidate', vlans('<vlan nc:operation="remove"><id>1</id></vlan>')))).toBe(true);
    expect(device.candidate()).not.toContain('<vlan>');
  });

  it('accepts the operation attribute under any prefix bound to the base namespace', async () => {
    const reply = await nc.editConfig('candidate', `<vlans xmlns="${SW}" xmlns:xc="${NC}"><vlan xc:operation="delete"><id>10</id></vlan></vlans>`);
    expect(isOk(reply)).toBe(true);
    expect(entry(device.candidate(), 'vlan', '10')).toBeUndefined();
  });

  it('default-operation none: only explicit operations act, and a missing level with delete is data-missing', async () => {
    const ok = await nc.editConfig(
      'candidate',
      vlans('<vlan><id>10</id><name>renamed-but-ignored</name><description nc:operation="delete"/></vlan>') + `<system xmlns="${SYS}"><hostname>ignored</hostname></system>`,
      '<default-operation>none</default-operation>',
    );
    expect(isOk(ok)).toBe(true);
    expect(entry(device.candidate(), 'vlan', '10')).toBe('<vlan><id>10</id><name>mgmt</name></vlan>');
    expect(device.candidate()).toContain('<hostname>dev001</hostname>');
    const missing = await nc.editConfig('candidate', vlans('<vlan><id>99</id><name nc:operation="delete"/></vlan>'), '<default-operation>none</default-operation>');
    expect(errorTags(missing)).toEqual(['data-missing']);
    const created = await nc.editConfig('candidate', vlans('<vlan><id>99</id><name nc:operation="merge">new</name></vlan>'), '<default-operation>none</default-operation>');
    expect(isOk(created)).toBe(true);
    expect(entry(device.candidate(), 'vlan', '99')).toBe('<vlan><id>99</id><name>new</name></vlan>');
  });

  it('default-operation replace: the config replaces the whole datastore', async () => {
    await nc.ok(`<edit-config><target><candidate/></target><default-operation>replace</default-operation><config><system xmlns="${SYS}"><hostname>only</hostname></system></config></edit-config>`);
    expect(device.candidate()).toBe(`<config xmlns="${NC}"><system xmlns="${SYS}"><hostname>only</hostname></system></config>`);
  });

  it('rollback-on-error leaves the target unchanged when any part fails', async () => {
    const before = device.candidate();
    const reply = await nc.editConfig(
      'candidate',
      ifs('<interface><name>eth1</name><description>changed</description></interface><interface nc:operation="create"><name>eth0</name></interface>'),
      '<error-option>rollback-on-error</error-option>',
    );
    expect(errorTags(reply)).toEqual(['data-exists']);
    expect(device.candidate()).toBe(before);
  });

  it('stop-on-error keeps the parts before the failure; continue-on-error reports every failure and applies the rest', async () => {
    const stop = await nc.editConfig(
      'candidate',
      ifs('<interface><name>eth1</name><description>first</description></interface><interface nc:operation="create"><name>eth0</name></interface><interface><name>eth2</name><description>never</description></interface>'),
    );
    expect(errorTags(stop)).toEqual(['data-exists']);
    expect(entry(device.candidate(), 'interface', 'eth1')).toContain('<description>first</description>');
    expect(entry(device.candidate(), 'interface', 'eth2')).not.toContain('never');

    const cont = await nc.editConfig(
      'candidate',
      vlans('<vlan nc:operation="create"><id>1</id></vlan><vlan><id>20</id><name>twenty</name></vlan><vlan nc:operation="delete"><id>77</id></vlan>'),
      '<error-option>continue-on-error</error-option>',
    );
    expect(errorTags(cont)).toEqual(['data-exists', 'data-missing']);
    expect(entry(device.candidate(), 'vlan', '20')).toBe('<vlan><id>20</id><name>twenty</name></vlan>');
  });

  it('refuses a bad operation value, a list entry without its key, and a bad default-operation', async () => {
    expect(errorTags(await nc.editConfig('candidate', vlans('<vlan nc:operation="upsert"><id>5</id></vlan>')))).toEqual(['bad-attribute']);
    // Any other attribute is unknown-attribute; an unqualified `operation` is taken as nc:operation, as netconfd does.
    const other = await nc.editConfig('candidate', vlans('<vlan foo="bar"><id>10</id></vlan>'));
    expect(errorTags(other)).toEqual(['unknown-attribute']);
    expect(other).toContain('<bad-attribute>foo</bad-attribute>');
    expect(isOk(await nc.editConfig('candidate', vlans('<vlan operation="delete"><id>10</id></vlan>')))).toBe(true);
    expect(entry(device.candidate(), 'vlan', '10')).toBeUndefined();
    const keyless = await nc.editConfig('candidate', vlans('<vlan><name>no id</name></vlan>'));
    expect(errorTags(keyless)).toEqual(['missing-element']);
    expect(keyless).toContain('<bad-element xmlns:sw="urn:example:plumb:switch">sw:id</bad-element>');
    expect(errorTags(await nc.editConfig('candidate', vlans('<vlan><id>5</id></vlan>'), '<default-operation>upsert</default-operation>'))).toEqual(['invalid-value']);
    expect(errorTags(await nc.rpc('<edit-config><target><candidate/></target></edit-config>'))).toEqual(['missing-element']);
  });

  it('refuses edits of running on a device without :writable-running', async () => {
    const before = device.running();
    expect(errorTags(await nc.editConfig('running', vlans('<vlan><id>5</id></vlan>')))).toEqual(['operation-failed']);
    expect(device.running()).toBe(before);
  });

  it('test-only checks without applying', async () => {
    const before = device.candidate();
    expect(isOk(await nc.editConfig('candidate', vlans('<vlan><id>5</id></vlan>'), '<test-option>test-only</test-option>'))).toBe(true);
    expect(errorTags(await nc.editConfig('candidate', vlans('<vlan nc:operation="create"><id>1</id></vlan>'), '<test-option>test-only</test-option>'))).toEqual(['data-exists']);
    expect(device.candidate()).toBe(before);
  });

  it('keeps identityref values by namespace, not by prefix', async () => {
    await nc.ok(
      `<edit-config><target><candidate/></target><config><interfaces xmlns="${IF}"><interface><name>eth0</name><type xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type">t:ethernetCsmacd</type></interface></interfaces></config></edit-config>`,
    );
    expect(device.candidate()).toBe(device.running());
    await nc.ok(
      `<edit-config><target><candidate/></target><config><interfaces xmlns="${IF}"><interface><name>eth3</name><type xmlns:ift="urn:ietf:params:xml:ns:yang:iana-if-type">ift:softwareLoopback</type></interface></interfaces></config></edit-config>`,
    );
    const data = dataOf(await nc.getConfig('candidate'));
    expect(data).toContain('<type xmlns:ift="urn:ietf:params:xml:ns:yang:iana-if-type">ift:softwareLoopback</type>');
  });

  it('escapes text on the way out', async () => {
    await nc.ok(`<edit-config><target><candidate/></target><config>${vlans('<vlan><id>10</id><description>a &lt;b&gt; &amp; "c" \'d\'</description></vlan>')}</config></edit-config>`);
    expect(dataOf(await nc.getConfig('candidate'))).toContain('<description>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</description>');
  });
});
