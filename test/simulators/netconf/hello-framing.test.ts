import { afterEach, describe, expect, it } from 'vitest';
import type { NetconfSimulator } from '../../../fixtures/simulators/netconf/index.js';
import {
  BASE10,
  BASE11,
  NC,
  TestNetconfClient,
  errorTags,
  firstDevice,
  frameChunked,
  frameEom,
  helloXml,
  isOk,
  settlesWithin,
  sleep,
  startSim,
} from './netconf-test-client.js';

const CANDIDATE = 'urn:ietf:params:netconf:capability:candidate:1.0';
const CONFIRMED = 'urn:ietf:params:netconf:capability:confirmed-commit:1.1';
const CONFIRMED10 = 'urn:ietf:params:netconf:capability:confirmed-commit:1.0';
const VALIDATE = 'urn:ietf:params:netconf:capability:validate:1.1';
const VALIDATE10 = 'urn:ietf:params:netconf:capability:validate:1.0';
const XPATH = 'urn:ietf:params:netconf:capability:xpath:1.0';
const ROLLBACK = 'urn:ietf:params:netconf:capability:rollback-on-error:1.0';
const WRITABLE_RUNNING = 'urn:ietf:params:netconf:capability:writable-running:1.0';

function capabilitiesOf(hello: string): string[] {
  return [...hello.matchAll(/<capability>([^<]*)<\/capability>/g)].map((m) => (m[1] ?? '').replace(/&amp;/g, '&'));
}

let sim: NetconfSimulator | undefined;
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
});

describe('netconf simulator: hello and capabilities', () => {
  it('advertises the capabilities of each profile, with a session-id', async () => {
    sim = await startSim({ devices: ['a', 'b', 'c'], profile: (_name, i) => (['full', 'base10', 'running-only'] as const)[i] ?? 'full' });
    const [full, base10, runningOnly] = sim.devices;
    if (full === undefined || base10 === undefined || runningOnly === undefined) throw new Error('devices');
    const caps = async (device: typeof full): Promise<string[]> => {
      const nc = await TestNetconfClient.open(device);
      expect(nc.sessionId).toBeGreaterThan(0);
      await nc.close();
      return capabilitiesOf(nc.serverHello);
    };
    const fullCaps = await caps(full);
    expect(fullCaps).toEqual(expect.arrayContaining([BASE10, BASE11, CANDIDATE, CONFIRMED10, CONFIRMED, VALIDATE10, VALIDATE, ROLLBACK, XPATH]));
    expect(fullCaps).toContain('urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring&revision=2010-10-04');
    expect(fullCaps).not.toContain(WRITABLE_RUNNING);
    expect(fullCaps).toContain('urn:ietf:params:xml:ns:yang:ietf-interfaces?module=ietf-interfaces&revision=2018-02-20');

    const base10Caps = await caps(base10);
    // As netconfd --protocols=netconf1.0: only the 1.0 versions of :confirmed-commit and :validate.
    expect(base10Caps).toEqual(expect.arrayContaining([BASE10, CANDIDATE, CONFIRMED10, VALIDATE10, ROLLBACK, XPATH]));
    expect(base10Caps).not.toContain(BASE11);
    expect(base10Caps).not.toContain(CONFIRMED);
    expect(base10Caps).not.toContain(VALIDATE);
    expect(base10Caps).not.toContain(WRITABLE_RUNNING);

    const roCaps = await caps(runningOnly);
    expect(roCaps).toEqual(expect.arrayContaining([BASE10, BASE11, VALIDATE10, VALIDATE, ROLLBACK, WRITABLE_RUNNING]));
    expect(roCaps).not.toContain(CANDIDATE);
    expect(roCaps).not.toContain(CONFIRMED);
    expect(roCaps).not.toContain(CONFIRMED10);
  });

  it('gives each session its own session-id', async () => {
    sim = await startSim();
    const a = await TestNetconfClient.open(firstDevice(sim));
    const b = await TestNetconfClient.open(firstDevice(sim));
    expect(b.sessionId).not.toBe(a.sessionId);
    expect(firstDevice(sim).openSessions).toBe(2);
    await a.close();
    await b.close();
  });

  it('uses chunked framing only when both hellos list base:1.1', async () => {
    sim = await startSim({ devices: ['full', 'old'], profile: (name) => (name === 'old' ? 'base10' : 'full') });
    const full = sim.device('full');
    const old = sim.device('old');

    const both = await TestNetconfClient.open(full, { capabilities: [BASE10, BASE11] });
    both.write(frameChunked(both.rpcXml('<get-config><source><running/></source></get-config>').xml));
    const chunkedRaw = await rawReply(both);
    expect(chunkedRaw.startsWith('\n#')).toBe(true);
    expect(chunkedRaw.endsWith('\n##\n')).toBe(true);
    await both.close();

    const client10 = await TestNetconfClient.open(full, { capabilities: [BASE10] });
    expect(client10.chunked).toBe(false);
    expect(isOk(await client10.rpc('<lock><target><candidate/></target></lock>'))).toBe(true);
    await client10.close();

    // A base10 device ignores the client's 1.1: end-of-message framing.
    const toOld = await TestNetconfClient.open(old, { capabilities: [BASE10, BASE11] });
    expect(toOld.chunked).toBe(false);
    toOld.write(frameEom(toOld.rpcXml('<get-config><source><running/></source></get-config>').xml));
    const eomRaw = await rawReply(toOld);
    expect(eomRaw.endsWith(']]>]]>')).toBe(true);
    await toOld.close();
  });

  it('closes the session on a hello without a common base version, or a second hello', async () => {
    sim = await startSim({ profile: 'base10' });
    const device = firstDevice(sim);
    const only11 = await TestNetconfClient.open(device, { capabilities: [BASE11] });
    expect(await settlesWithin(only11.channelClosed, 2000)).toBe(true);
    only11.client.end();

    const noBase = await TestNetconfClient.open(device, { capabilities: ['urn:example:nothing'] });
    expect(await settlesWithin(noBase.channelClosed, 2000)).toBe(true);
    noBase.client.end();

    const twice = await TestNetconfClient.open(device, { capabilities: [BASE10] });
    twice.write(frameEom(helloXml([BASE10])));
    expect(await settlesWithin(twice.channelClosed, 2000)).toBe(true);
    twice.client.end();
  });
});

/** The next raw bytes from the server, undecoded (one reply is small and arrives in one piece). */
function rawReply(nc: TestNetconfClient): Promise<string> {
  return new Promise((resolve) => {
    nc.channel.prependOnceListener('data', (data: Buffer) => resolve(data.toString('utf8')));
  });
}

describe('netconf simulator: framing', () => {
  it('echoes message-id and every other rpc attribute, and answers in order', async () => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim));
    nc.write(
      nc.frame(`<rpc message-id="abc-1" xmlns="${NC}" xmlns:ex="http://example.net/content/1.0" ex:user-id="fred"><get-config><source><running/></source></get-config></rpc>`),
    );
    const reply = await nc.next();
    expect(reply).toMatch(/<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/);
    expect(reply).toContain('message-id="abc-1"');
    expect(reply).toContain('xmlns:ex="http://example.net/content/1.0"');
    expect(reply).toContain('ex:user-id="fred"');
    await nc.close();
  });

  it('answers an rpc without message-id with missing-attribute, and bad XML with malformed-message, and keeps the session', async () => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim));
    nc.write(nc.frame(`<rpc xmlns="${NC}"><get-config><source><running/></source></get-config></rpc>`));
    const missing = await nc.next();
    expect(errorTags(missing)).toEqual(['missing-attribute']);
    expect(missing).toContain('<bad-attribute>message-id</bad-attribute>');
    nc.write(nc.frame(`<rpc xmlns="${NC}" message-id="9"><get-config>`));
    expect(errorTags(await nc.next())).toEqual(['malformed-message']);
    expect(errorTags(await nc.rpc('<frobnicate/>'))).toEqual(['unknown-element']);
    expect(isOk(await nc.rpc('<lock><target><candidate/></target></lock>'))).toBe(true);
    await nc.close();
  });

  it('reassembles chunks split across writes, down to single bytes', async () => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim));
    const { xml, messageId } = nc.rpcXml('<get-config><source><running/></source></get-config>');
    const framed = frameChunked(xml, 7);
    for (const byte of framed) {
      nc.write(Buffer.from([byte]));
      if (byte % 5 === 0) await sleep(0);
    }
    const reply = await nc.next();
    expect(reply).toContain(`message-id="${messageId}"`);
    expect(reply).toContain('<hostname>dev001</hostname>');
    await nc.close();
  });

  it('takes many messages in one write and answers each, in order', async () => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim));
    const ids: string[] = [];
    const frames: Buffer[] = [];
    for (let i = 0; i < 20; i += 1) {
      const { xml, messageId } = nc.rpcXml('<get-config><source><running/></source><filter type="subtree"><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname/></system></filter></get-config>');
      ids.push(messageId);
      frames.push(frameChunked(xml, 50));
    }
    nc.write(Buffer.concat(frames));
    for (const id of ids) expect(await nc.next()).toContain(`message-id="${id}"`);
    await nc.close();
  });

  it('takes the client hello and the first rpc in one write, switching to chunked framing between them', async () => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim), { capabilities: null });
    const { xml, messageId } = nc.rpcXml('<lock><target><running/></target></lock>');
    nc.write(Buffer.concat([frameEom(helloXml([BASE10, BASE11])), frameChunked(xml)]));
    nc.chunked = true;
    const reply = await nc.next();
    expect(reply).toContain(`message-id="${messageId}"`);
    expect(isOk(reply)).toBe(true);
    await nc.close();
  });

  it('does not treat ]]>]]> inside chunked data as a delimiter', async () => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim));
    nc.write(nc.frame(`<rpc xmlns="${NC}" message-id="x]]>]]>y"><!-- ]]>]]> --><get-config><source><running/></source></get-config></rpc>`));
    const reply = await nc.next();
    expect(reply).toContain('message-id="x]]&gt;]]&gt;y"');
    expect(reply).toContain('<data>');
    await nc.close();
  });

  it.each([
    ['a zero-length chunk', '\n#0\n'],
    ['a chunk size with a leading zero', '\n#012\n<rpc></rpc>\n##\n'],
    ['a non-numeric chunk size', '\n#abc\n'],
    ['data outside a chunk', 'garbage'],
    ['end of chunks with no chunk', '\n##\n'],
    ['a chunk size above 4294967295', '\n#4294967296\n'],
  ])('closes the session on malformed chunked framing: %s', async (_what, bytes) => {
    sim = await startSim();
    const nc = await TestNetconfClient.open(firstDevice(sim));
    await nc.rpc('<get-config><source><running/></source></get-config>');
    nc.write(bytes);
    expect(await settlesWithin(nc.channelClosed, 2000)).toBe(true);
    expect(firstDevice(sim).openSessions).toBe(0);
    nc.client.end();
  });

  it('closes the session on a message over maxMessageBytes, in either framing, and keeps serving others', async () => {
    sim = await startSim({ maxMessageBytes: 4096 });
    const device = firstDevice(sim);
    const big = `<edit-config><target><candidate/></target><config><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>${'x'.repeat(8000)}</hostname></system></config></edit-config>`;

    const chunked = await TestNetconfClient.open(device);
    chunked.write(frameChunked(chunked.rpcXml(big).xml, 1000));
    expect(await settlesWithin(chunked.channelClosed, 2000)).toBe(true);
    chunked.client.end();

    const declared = await TestNetconfClient.open(device);
    declared.write('\n#100000\n<rpc');
    expect(await settlesWithin(declared.channelClosed, 2000)).toBe(true);
    declared.client.end();

    const eom = await TestNetconfClient.open(device, { capabilities: [BASE10] });
    const raw = Buffer.from(eom.rpcXml(big).xml);
    eom.write(raw.subarray(0, 3000));
    await sleep(20);
    eom.write(raw.subarray(3000));
    expect(await settlesWithin(eom.channelClosed, 2000)).toBe(true);
    eom.client.end();

    expect(device.counters.editConfigs).toBe(0);
    const fine = await TestNetconfClient.open(device);
    expect(isOk(await fine.rpc('<lock><target><candidate/></target></lock>'))).toBe(true);
    await fine.close();
  });

  it('splits long replies into several chunks', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `<interface><name>ge-0/0/${i}</name><description>port ${i}</description></interface>`).join('');
    sim = await startSim({ initialRunning: () => `<config xmlns="${NC}"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">${names}</interfaces></config>` });
    const nc = await TestNetconfClient.open(firstDevice(sim));
    const chunks: string[] = [];
    nc.channel.on('data', (d: Buffer) => chunks.push(d.toString('latin1')));
    const reply = await nc.rpc('<get-config><source><running/></source></get-config>');
    expect(reply).toContain('<name>ge-0/0/199</name>');
    expect(chunks.join('').match(/\n#\d+\n/g)?.length ?? 0).toBeGreaterThan(1);
    await nc.close();
  });
});
