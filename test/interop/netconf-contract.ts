/**
 * The NETCONF contract: what a server does on the wire, written once and run
 * against both the project's simulator and the real netconfd (yuma123 2.13),
 * so that any divergence between the two fails a test
 * (test/interop/netconf-contract.test.ts). Cases use only what both model:
 * ietf-interfaces and ietf-ip. Every reply is read through the provider's own
 * NETCONF client, and errors are compared field by field (error-type,
 * error-tag, error-app-tag, error-path, error-message, and the error-info
 * children bad-element, bad-attribute, bad-namespace, bad-value, session-id).
 */
import { expect } from 'vitest';
import { NetconfClient } from '../../providers/netconf/client/session.js';
import { RpcError } from '../../providers/netconf/client/errors.js';
import { child, type XmlElement } from '../../providers/netconf/client/xml.js';
import { testLog } from '../helpers/provider-contract.js';

export const NC = 'urn:ietf:params:xml:ns:netconf:base:1.0';
export const IF = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
export const IP = 'urn:ietf:params:xml:ns:yang:ietf-ip';
export const IANA = 'urn:ietf:params:xml:ns:yang:iana-if-type';
export const NCM = 'urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring';

const CAP = (name: string): string => `urn:ietf:params:netconf:capability:${name}`;
const BASE10 = 'urn:ietf:params:netconf:base:1.0';
const BASE11 = 'urn:ietf:params:netconf:base:1.1';

/** A server under contract: how to reach it, and which base versions it speaks. */
export interface ContractServer {
  /** `both`: base:1.0 and base:1.1; `1.0`: base:1.0 only. */
  bases: 'both' | '1.0';
  port: number;
  username: string;
  privateKey: Buffer;
  hostKeyFingerprint: string;
}

type Framing = 'auto' | 'base:1.0' | 'base:1.1';

/** What a case compares of an rpc-error. */
export interface ErrorShape {
  type: string;
  tag: string;
  appTag?: string;
  path?: string;
  message?: string;
  info?: Record<string, string>;
}

const INFO_KEYS = ['bad-element', 'bad-attribute', 'bad-namespace', 'bad-value', 'session-id'];

export class ContractHarness {
  private readonly open = new Set<NetconfClient>();
  private counter = 0;

  constructor(readonly server: ContractServer) {}

  /** The session base:1.1 is spoken on when the client offers both. */
  get base11(): boolean {
    return this.server.bases === 'both';
  }

  async session(framing: Framing = 'auto'): Promise<NetconfClient> {
    const client = await NetconfClient.connect({
      name: `contract-${++this.counter}`,
      host: '127.0.0.1',
      port: this.server.port,
      username: this.server.username,
      privateKey: this.server.privateKey,
      hostKey: { kind: 'fingerprint', fingerprint: this.server.hostKeyFingerprint },
      hostName: `[127.0.0.1]:${this.server.port}`,
      connectTimeoutMs: 15_000,
      framing,
      signal: AbortSignal.timeout(20_000),
      log: testLog(),
    });
    this.open.add(client);
    return client;
  }

  async close(client: NetconfClient): Promise<void> {
    this.open.delete(client);
    await client.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.open].map((c) => this.close(c)));
  }

  rpc(client: NetconfClient, body: string): Promise<XmlElement> {
    return client.rpc(body, 'contract rpc', { signal: AbortSignal.timeout(20_000), timeoutMs: 15_000 });
  }

  async ok(client: NetconfClient, body: string): Promise<void> {
    const reply = await this.rpc(client, body);
    expect(child(reply, 'ok', NC), body).toBeDefined();
  }

  /** The rpc must fail; returns its first error in the compared shape. */
  async error(client: NetconfClient, body: string): Promise<ErrorShape> {
    try {
      await this.rpc(client, body);
    } catch (err) {
      if (!(err instanceof RpcError)) throw err;
      const e = err.errors[0]!;
      const info: Record<string, string> = {};
      for (const k of INFO_KEYS) if (e.info[k] !== undefined) info[k] = e.info[k];
      return { type: e.type, tag: e.tag, ...(e.appTag ? { appTag: e.appTag } : {}), ...(e.path ? { path: e.path } : {}), ...(e.message ? { message: e.message } : {}), ...(Object.keys(info).length > 0 ? { info } : {}) };
    }
    throw new Error(`expected an rpc-error for ${body}`);
  }

  /** Interfaces of a datastore, order-insensitive, as a comparable text. */
  async interfaces(client: NetconfClient, source: 'running' | 'candidate'): Promise<string> {
    const reply = await this.rpc(client, `<get-config><source><${source}/></source><filter type="subtree"><interfaces xmlns="${IF}"/></filter></get-config>`);
    return canon(child(reply, 'data', NC)?.children ?? []);
  }

  /** Edit the candidate (inner XML of `<interfaces>`), merge. */
  editIfs(client: NetconfClient, inner: string, options = ''): Promise<XmlElement> {
    return this.rpc(client, editXml(inner, options));
  }

  /**
   * Retries `check` (a state to reach: a session end seen, a timeout passed) up
   * to `ms`, every `everyMs`. Waits for a confirm timeout poll slower than once
   * a second: netconfd only runs its timers after a second without RPCs.
   */
  async eventually(what: string, check: () => Promise<void>, ms = 10_000, everyMs = 100): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      try {
        await check();
        return;
      } catch (err) {
        if (Date.now() > end) throw new Error(`${what}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** Running (and the candidate) back to BASELINE, nothing locked, nothing pending. */
  async reset(): Promise<void> {
    const s = await this.session();
    await this.eventually('the locks of the last case are released', async () => {
      await this.ok(s, '<discard-changes/>');
    });
    await this.ok(s, `<edit-config><target><candidate/></target><config xmlns:nc="${NC}"><interfaces xmlns="${IF}" nc:operation="replace">${BASELINE}</interfaces></config></edit-config>`);
    await this.ok(s, '<commit/>');
    expect(await this.interfaces(s, 'running')).toBe(BASELINE_CANON);
    await this.close(s);
  }
}

export function editXml(inner: string, options = ''): string {
  return `<edit-config><target><candidate/></target>${options}<config xmlns:nc="${NC}"><interfaces xmlns="${IF}">${inner}</interfaces></config></edit-config>`;
}

const TYPE = `<type xmlns:ianaift="${IANA}">ianaift:ethernetCsmacd</type>`;
export function iface(name: string, extra = '', type = TYPE): string {
  return `<interface><name>${name}</name>${type}${extra}</interface>`;
}

export const BASELINE =
  iface('eth0', `<description>uplink</description><enabled>true</enabled><ipv4 xmlns="${IP}"><address><ip>10.0.0.1</ip><prefix-length>24</prefix-length></address></ipv4>`) + iface('eth1', '<description>access</description>');

/** A tree as text with children sorted: equal contents, equal text, whatever the order. */
export function canon(nodes: readonly XmlElement[]): string {
  const one = (e: XmlElement): string => {
    if (e.children.length === 0) return `${e.name}=${e.qvalue ?? e.text.trim()}`;
    return `${e.name}{${e.children.map(one).sort().join(',')}}`;
  };
  return nodes.map(one).sort().join(',');
}

const BASELINE_CANON = `interfaces{interface{description=access,name=eth1,type={${IANA}}ethernetCsmacd},interface{description=uplink,enabled=true,ipv4{address{ip=10.0.0.1,prefix-length=24}},name=eth0,type={${IANA}}ethernetCsmacd}}`;
export const ifCanon = (entries: string[]): string => `interfaces{${entries.sort().join(',')}}`;
export const ETH0 = `interface{description=uplink,enabled=true,ipv4{address{ip=10.0.0.1,prefix-length=24}},name=eth0,type={${IANA}}ethernetCsmacd}`;
export const ETH1 = `interface{description=access,name=eth1,type={${IANA}}ethernetCsmacd}`;
const plain = (name: string, extra: string[] = []): string => `interface{${[...extra, `name=${name}`, `type={${IANA}}ethernetCsmacd`].sort().join(',')}}`;

const EDIT = '/nc:rpc/nc:edit-config/nc:config';
const IFACE = (name: string): string => `${EDIT}/if:interfaces/if:interface[if:name='${name}']`;

export interface ContractCase {
  name: string;
  /** Only on servers speaking these base versions; default all. */
  bases?: 'both' | '1.0';
  run(h: ContractHarness): Promise<void>;
}

export const CONTRACT_CASES: ContractCase[] = [
  // --- hello ---------------------------------------------------------------
  {
    name: 'hello: both base versions, chunked framing, :candidate, :confirmed-commit and :validate in 1.0 and 1.1, :rollback-on-error, :xpath, the modules',
    bases: 'both',
    async run(h) {
      const s = await h.session();
      expect(s.framing).toBe('chunked');
      expect(s.sessionId).toMatch(/^[1-9][0-9]*$/);
      const caps = [...s.capabilities];
      for (const c of [BASE10, BASE11, CAP('candidate:1.0'), CAP('confirmed-commit:1.0'), CAP('confirmed-commit:1.1'), CAP('validate:1.0'), CAP('validate:1.1'), CAP('rollback-on-error:1.0'), CAP('xpath:1.0')]) {
        expect(caps, c).toContain(c);
      }
      expect(caps).not.toContain(CAP('writable-running:1.0'));
      for (const m of ['ietf-interfaces', 'ietf-ip', 'iana-if-type', 'ietf-netconf-monitoring']) expect(caps.some((c) => c.includes(`?module=${m}&`)), m).toBe(true);
      const old = await h.session('base:1.0');
      expect(old.framing).toBe('eom');
      expect(Number(old.sessionId)).not.toBe(Number(s.sessionId));
    },
  },
  {
    name: 'hello: a base:1.0 server lists only the 1.0 versions of :confirmed-commit and :validate, and frames with ]]>]]>',
    bases: '1.0',
    async run(h) {
      const s = await h.session();
      expect(s.framing).toBe('eom');
      const caps = [...s.capabilities];
      expect(caps).toContain(BASE10);
      expect(caps).not.toContain(BASE11);
      for (const c of [CAP('candidate:1.0'), CAP('confirmed-commit:1.0'), CAP('validate:1.0'), CAP('rollback-on-error:1.0'), CAP('xpath:1.0')]) expect(caps, c).toContain(c);
      expect(caps).not.toContain(CAP('confirmed-commit:1.1'));
      expect(caps).not.toContain(CAP('validate:1.1'));
    },
  },

  // --- lock / unlock ---------------------------------------------------------
  {
    name: 'lock: held locks are denied with the holder in session-id (to the holder too); unlock by another session is in-use, of an unheld lock wrong config state',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, '<lock><target><running/></target></lock>');
      const denied = { type: 'protocol', tag: 'lock-denied', appTag: 'no-access', message: 'lock denied', info: { 'session-id': a.sessionId } };
      expect(await h.error(a, '<lock><target><running/></target></lock>')).toEqual(denied);
      expect(await h.error(b, '<lock><target><running/></target></lock>')).toEqual(denied);
      expect(await h.error(b, '<unlock><target><running/></target></unlock>')).toEqual({ type: 'protocol', tag: 'in-use', appTag: 'no-access', message: 'config locked' });
      expect(await h.error(b, '<unlock><target><candidate/></target></unlock>')).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'no-access', message: 'wrong config state' });
      await h.ok(b, '<lock><target><candidate/></target></lock>');
      expect(await h.error(a, '<lock><target><candidate/></target></lock>')).toEqual({ ...denied, info: { 'session-id': b.sessionId } });
      await h.ok(a, '<unlock><target><running/></target></unlock>');
      await h.ok(b, '<unlock><target><candidate/></target></unlock>');
      expect(await h.error(a, '<unlock><target><running/></target></unlock>')).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'no-access', message: 'wrong config state' });
    },
  },
  {
    name: "lock: another session's locks block edit-config (application in-use), discard-changes and commit (in-use); a session's end releases its locks",
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, '<lock><target><candidate/></target></lock>');
      expect(await h.error(b, editXml(iface('eth1', '<description>b</description>')))).toEqual({ type: 'application', tag: 'in-use', appTag: 'no-access', path: EDIT, message: 'config locked' });
      expect(await h.error(b, '<discard-changes/>')).toEqual({ type: 'protocol', tag: 'in-use', appTag: 'no-access', message: 'config locked' });
      expect(await h.error(b, '<commit/>')).toEqual({ type: 'protocol', tag: 'in-use', appTag: 'no-access', message: 'config locked' });
      await h.ok(a, '<unlock><target><candidate/></target></unlock>');
      await h.ok(a, '<lock><target><running/></target></lock>');
      expect(await h.error(b, '<commit/>')).toEqual({ type: 'protocol', tag: 'in-use', appTag: 'no-access', message: 'config locked' });
      await h.close(a);
      await h.eventually('the running lock is released with its session', () => h.ok(b, '<lock><target><running/></target></lock>'));
      await h.ok(b, '<unlock><target><running/></target></unlock>');
    },
  },
  {
    name: 'lock: a candidate with uncommitted edits (of any session, the locker too) cannot be locked: resource-denied until discard-changes',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, editXml(iface('eth1', '<description>pending</description>')));
      const refused = { type: 'protocol', tag: 'resource-denied', appTag: 'no-access', message: 'candidate cannot be locked, discard-changes needed' };
      expect(await h.error(b, '<lock><target><candidate/></target></lock>')).toEqual(refused);
      expect(await h.error(a, '<lock><target><candidate/></target></lock>')).toEqual(refused);
      // An edit that changes nothing counts as an edit.
      await h.ok(b, '<discard-changes/>');
      await h.ok(b, editXml(iface('eth1', '<description>access</description>')));
      expect(await h.error(a, '<lock><target><candidate/></target></lock>')).toEqual(refused);
      await h.ok(b, '<discard-changes/>');
      await h.ok(a, '<lock><target><candidate/></target></lock>');
      await h.ok(a, '<unlock><target><candidate/></target></unlock>');
    },
  },
  {
    name: 'lock: an unknown datastore is unknown-element, one the server does not have (startup) config not found',
    async run(h) {
      const s = await h.session();
      expect(await h.error(s, '<lock><target><startup/></target></lock>')).toEqual({ type: 'protocol', tag: 'invalid-value', appTag: 'data-incomplete', path: '/nc:rpc/nc:lock/nc:target', message: 'config not found', info: { 'bad-value': 'startup' } });
      expect(await h.error(s, '<lock><target><bogus/></target></lock>')).toEqual({ type: 'protocol', tag: 'unknown-element', appTag: 'data-invalid', path: '/nc:rpc/nc:lock/nc:target', message: 'unknown object', info: { 'bad-element': 'nc:bogus' } });
    },
  },

  {
    name: 'unlock of the candidate throws its uncommitted edits away; kill-session ends another session and frees its locks, and refuses oneself or an unknown id',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, '<lock><target><candidate/></target></lock>');
      await h.ok(a, editXml(iface('eth2')));
      await h.ok(a, '<unlock><target><candidate/></target></unlock>');
      expect(await h.interfaces(a, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
      await h.ok(b, '<lock><target><running/></target></lock>');
      const invalid = { type: 'protocol', tag: 'invalid-value', appTag: 'data-invalid', message: 'invalid value' };
      expect(await h.error(a, `<kill-session><session-id>${a.sessionId}</session-id></kill-session>`)).toEqual(invalid);
      expect(await h.error(a, '<kill-session><session-id>99999</session-id></kill-session>')).toEqual(invalid);
      await h.ok(a, `<kill-session><session-id>${b.sessionId}</session-id></kill-session>`);
      await h.eventually('the killed session lets go of running', () => h.ok(a, '<lock><target><running/></target></lock>'));
      await h.ok(a, '<unlock><target><running/></target></unlock>');
    },
  },
  {
    name: 'an unknown operation is unknown-element (definition not found); delete-config has nothing to delete (no startup)',
    async run(h) {
      const s = await h.session();
      expect(await h.error(s, '<frobnicate/>')).toEqual({ type: 'rpc', tag: 'unknown-element', appTag: 'data-incomplete', path: '/nc:rpc/frobnicate', message: 'definition not found', info: { 'bad-element': 'nc:frobnicate' } });
      expect(await h.error(s, '<delete-config><target><startup/></target></delete-config>')).toEqual({ type: 'protocol', tag: 'invalid-value', appTag: 'data-incomplete', path: '/nc:rpc/nc:delete-config/nc:target', message: 'config not found', info: { 'bad-value': 'startup' } });
      expect(await h.error(s, '<delete-config><target><candidate/></target></delete-config>')).toEqual({ type: 'protocol', tag: 'unknown-element', appTag: 'data-invalid', path: '/nc:rpc/nc:delete-config/nc:target', message: 'unknown object', info: { 'bad-element': 'nc:candidate' } });
    },
  },

  // --- edit-config -------------------------------------------------------------
  {
    name: 'edit-config merge changes one leaf and keeps the rest; the candidate only, until commit',
    async run(h) {
      const s = await h.session();
      await h.ok(s, editXml(iface('eth1', '<description>changed</description>')) );
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, plain('eth1', ['description=changed'])]));
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1]));
      await h.ok(s, '<commit/>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, plain('eth1', ['description=changed'])]));
    },
  },
  {
    name: 'edit-config replace rebuilds an entry; create adds, or data-exists; delete removes, or data-missing; remove never fails (base:1.1)',
    bases: 'both',
    async run(h) {
      const s = await h.session();
      await h.ok(s, editXml(`<interface nc:operation="replace"><name>eth0</name>${TYPE}<enabled>false</enabled></interface>`));
      await h.ok(s, editXml(`<interface nc:operation="create"><name>eth2</name>${TYPE}</interface>`));
      expect(await h.error(s, editXml(`<interface nc:operation="create"><name>eth2</name>${TYPE}</interface>`))).toEqual({ type: 'application', tag: 'data-exists', appTag: 'no-access', path: IFACE('eth2'), message: 'data exists' });
      await h.ok(s, editXml('<interface nc:operation="delete"><name>eth1</name></interface>'));
      expect(await h.error(s, editXml('<interface nc:operation="delete"><name>eth9</name></interface>'))).toEqual({ type: 'application', tag: 'data-missing', appTag: 'data-incomplete', path: IFACE('eth9'), message: 'data missing' });
      expect(await h.error(s, editXml('<interface><name>eth2</name><description nc:operation="delete"/></interface>'))).toEqual({ type: 'application', tag: 'data-missing', appTag: 'data-incomplete', path: `${IFACE('eth2')}/if:description`, message: 'data missing' });
      await h.ok(s, editXml('<interface nc:operation="remove"><name>eth9</name></interface>'));
      await h.ok(s, editXml('<interface nc:operation="remove"><name>eth2</name></interface>'));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([plain('eth0', ['enabled=false'])]));
    },
  },
  {
    name: 'edit-config on a base:1.0 session: remove is a base:1.1 operation (unknown-element, no-support); delete works',
    async run(h) {
      const s = await h.session('base:1.0');
      expect(await h.error(s, editXml('<interface nc:operation="remove"><name>eth1</name></interface>'))).toEqual({ type: 'application', tag: 'unknown-element', appTag: 'no-support', path: IFACE('eth1'), message: 'base:1.1 protocol not enabled' });
      await h.ok(s, editXml('<interface nc:operation="delete"><name>eth1</name></interface>'));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0]));
    },
  },
  {
    name: 'edit-config takes an unqualified <config> and an unqualified operation attribute (as nc:operation); other attributes are unknown-attribute, a bad operation bad-attribute',
    async run(h) {
      const s = await h.session();
      await h.ok(s, `<edit-config><target><candidate/></target><config xmlns=""><interfaces xmlns="${IF}">${iface('eth5')}</interfaces></config></edit-config>`);
      await h.ok(s, editXml('<interface operation="delete"><name>eth1</name></interface>'));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, plain('eth5')]));
      expect(await h.error(s, editXml('<interface operation="delete"><name>eth1</name></interface>'))).toMatchObject({ tag: 'data-missing', path: IFACE('eth1') });
      expect(await h.error(s, editXml('<interface foo="bar"><name>eth0</name></interface>'))).toEqual({
        type: 'protocol',
        tag: 'unknown-attribute',
        appTag: 'data-invalid',
        path: `${EDIT}/if:interfaces/if:interface[1]`,
        message: 'unknown attribute',
        info: { 'bad-attribute': 'foo', 'bad-element': 'if:interface' },
      });
      expect(await h.error(s, editXml('<interface nc:operation="upsert"><name>eth0</name></interface>'))).toEqual({
        type: 'protocol',
        tag: 'bad-attribute',
        appTag: 'data-invalid',
        path: `${EDIT}/if:interfaces/if:interface[1]`,
        message: 'invalid value',
        info: { 'bad-attribute': 'nc:operation', 'bad-element': 'if:interface', 'bad-value': 'upsert' },
      });
    },
  },
  {
    name: 'edit-config: a list entry without its key is missing-element; a new interface without its mandatory type is data-missing, and changes nothing',
    async run(h) {
      const s = await h.session();
      expect(await h.error(s, editXml('<interface><description>no key</description></interface>'))).toEqual({
        type: 'application',
        tag: 'missing-element',
        appTag: 'data-invalid',
        path: `${EDIT}/if:interfaces/if:interface[1]`,
        message: 'expected key leaf in list',
        info: { 'bad-element': 'if:name' },
      });
      expect(await h.error(s, editXml('<interface><name>eth8</name><description>no type</description></interface>'))).toEqual({
        type: 'application',
        tag: 'data-missing',
        appTag: 'instance-required',
        path: "/if:interfaces/if:interface[if:name='eth8']/if:type",
        message: 'required value instance not found',
        info: { 'bad-value': 'type' },
      });
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
      expect(await h.error(s, editXml(iface('eth8', `<ipv4 xmlns="${IP}"><address><ip>10.1.1.9</ip></address></ipv4>`)))).toMatchObject({ type: 'application', tag: 'data-missing', appTag: 'missing-choice', path: "/if:interfaces/if:interface[if:name='eth8']/ip:ipv4/ip:address[ip:ip='10.1.1.9']", message: 'missing mandatory choice' });
    },
  },
  {
    name: 'edit-config refuses bad values: out of range, not in an enumeration, not a boolean, an unknown identity, a malformed address (invalid-value)',
    async run(h) {
      const s = await h.session();
      const invalid = (path: string, appTag: string, message: string, value: string): ErrorShape => ({ type: 'protocol', tag: 'invalid-value', appTag, path, message, info: { 'bad-value': value } });
      const ipv4 = `${IFACE('eth1')}/ip:ipv4`;
      expect(await h.error(s, editXml(iface('eth1', `<ipv4 xmlns="${IP}"><mtu>99999</mtu></ipv4>`)))).toEqual(invalid(`${ipv4}/ip:mtu`, 'not-in-range', 'value not in range', '99999'));
      expect(await h.error(s, editXml(iface('eth1', `<ipv4 xmlns="${IP}"><address><ip>10.1.1.1</ip><prefix-length>33</prefix-length></address></ipv4>`)))).toEqual(
        invalid(`${ipv4}/ip:address[ip:ip='10.1.1.1']/ip:prefix-length`, 'not-in-range', 'value not in range', '33'),
      );
      expect(await h.error(s, editXml(iface('eth1', `<ipv4 xmlns="${IP}"><address><ip>10.1.1.999</ip><prefix-length>24</prefix-length></address></ipv4>`)))).toEqual(
        invalid(`${ipv4}/ip:address[ip:ip='10.1.1.999']/ip:ip`, 'pattern-test-failed', 'pattern match failed', '10.1.1.999'),
      );
      expect(await h.error(s, editXml(iface('eth1', '<enabled>maybe</enabled>')))).toEqual(invalid(`${IFACE('eth1')}/if:enabled`, 'data-invalid', 'invalid value', 'maybe'));
      expect(await h.error(s, editXml(iface('eth1', '<link-up-down-trap-enable>sometimes</link-up-down-trap-enable>')))).toEqual(invalid(`${IFACE('eth1')}/if:link-up-down-trap-enable`, 'not-in-value-set', 'value not in set', 'sometimes'));
      expect(await h.error(s, editXml(iface('eth1', '', `<type xmlns:ianaift="${IANA}">ianaift:noSuchType</type>`)))).toEqual(invalid(`${IFACE('eth1')}/if:type`, 'data-invalid', 'invalid value', 'ianaift:noSuchType'));
      expect(await h.error(s, editXml(iface('eth1', '', '<type>ethernetCsmacd</type>')))).toEqual(invalid(`${IFACE('eth1')}/if:type`, 'data-invalid', 'invalid value', 'ethernetCsmacd'));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
    },
  },
  {
    name: 'edit-config refuses unknown elements (unknown-element, at the parent) and unknown namespaces (unknown-namespace)',
    async run(h) {
      const s = await h.session();
      expect(await h.error(s, editXml(iface('eth1', '<bogus>1</bogus>')))).toEqual({ type: 'protocol', tag: 'unknown-element', appTag: 'data-invalid', path: IFACE('eth1'), message: 'unknown object', info: { 'bad-element': 'if:bogus' } });
      expect(await h.error(s, editXml('<bogus/>'))).toEqual({ type: 'protocol', tag: 'unknown-element', appTag: 'data-invalid', path: `${EDIT}/if:interfaces`, message: 'unknown object', info: { 'bad-element': 'if:bogus' } });
      expect(await h.error(s, editXml(iface('eth1', `<mtu xmlns="${IP}">1500</mtu>`)))).toEqual({ type: 'protocol', tag: 'unknown-element', appTag: 'data-invalid', path: IFACE('eth1'), message: 'unknown object', info: { 'bad-element': 'ip:mtu' } });
      const unknownNs = { type: 'protocol', tag: 'unknown-namespace', appTag: 'data-invalid', message: 'unknown namespace', info: { 'bad-element': 'inv:foo', 'bad-namespace': 'urn:example:nosuch' } };
      expect(await h.error(s, `<edit-config><target><candidate/></target><config><foo xmlns="urn:example:nosuch"/></config></edit-config>`)).toEqual(unknownNs);
      expect(await h.error(s, editXml(iface('eth1', '<foo xmlns="urn:example:nosuch">1</foo>')))).toEqual(unknownNs);
    },
  },
  {
    name: 'edit-config of running on a device with a candidate: operation-failed, cannot write to this configuration directly',
    async run(h) {
      const s = await h.session();
      expect(await h.error(s, `<edit-config><target><running/></target><config><interfaces xmlns="${IF}">${iface('eth1')}</interfaces></config></edit-config>`)).toEqual({
        type: 'protocol',
        tag: 'operation-failed',
        appTag: 'no-access',
        path: '/nc:rpc/nc:edit-config/nc:target',
        message: 'cannot write to this configuration directly',
        info: { 'bad-value': 'running' },
      });
    },
  },

  // --- validate, commit, discard-changes -----------------------------------
  {
    name: 'validate changes no datastore, and checks inline content like edit-config does',
    async run(h) {
      const s = await h.session();
      await h.ok(s, editXml(iface('eth2')));
      await h.ok(s, '<validate><source><candidate/></source></validate>');
      await h.ok(s, '<validate><source><running/></source></validate>');
      await h.ok(s, `<validate><source><config><interfaces xmlns="${IF}">${iface('eth7')}</interfaces></config></source></validate>`);
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1, plain('eth2')]));
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1]));
      expect(await h.error(s, `<validate><source><config><interfaces xmlns="${IF}"><interface><name>v2</name><mtu>1</mtu></interface></interfaces></config></source></validate>`)).toEqual({
        type: 'protocol',
        tag: 'unknown-element',
        appTag: 'data-invalid',
        path: "/nc:rpc/nc:validate/nc:source/nc:config/if:interfaces/if:interface[if:name='v2']",
        message: 'unknown object',
        info: { 'bad-element': 'if:mtu' },
      });
    },
  },
  {
    name: 'validate of the candidate (netconfd): a commit right after it is a no-op that resets the candidate to running; after validate, only what is edited later is committed',
    async run(h) {
      const s = await h.session();
      await h.ok(s, editXml(iface('eth2')));
      await h.ok(s, '<validate><source><candidate/></source></validate>');
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1, plain('eth2')]));
      await h.ok(s, '<commit/>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1]));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
      await h.ok(s, editXml(iface('eth2')));
      await h.ok(s, '<validate><source><candidate/></source></validate>');
      await h.ok(s, editXml(iface('eth3')));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1, plain('eth2'), plain('eth3')]));
      await h.ok(s, '<commit/>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth3')]));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1, plain('eth3')]));
      // Validating running or an inline config does not do this.
      await h.ok(s, editXml(iface('eth4')));
      await h.ok(s, '<validate><source><running/></source></validate>');
      await h.ok(s, '<commit/>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth3'), plain('eth4')]));
    },
  },
  {
    name: 'discard-changes puts the candidate back to running',
    async run(h) {
      const s = await h.session();
      await h.ok(s, editXml('<interface nc:operation="delete"><name>eth0</name></interface>'));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH1]));
      await h.ok(s, '<discard-changes/>');
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
    },
  },

  // --- confirmed commit --------------------------------------------------------
  {
    name: 'confirmed commit applies at once and blocks others (in-use, outstanding-confirmed-commit: commit, lock running, even for the issuer); the issuer confirms with a plain commit',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, editXml(iface('eth2')));
      await h.ok(a, '<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>');
      expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth2')]));
      const outstanding = { type: 'protocol', tag: 'in-use', appTag: 'outstanding-confirmed-commit', message: 'cannot perform the operation with confirmed-commit pending' };
      expect(await h.error(b, '<commit/>')).toEqual(outstanding);
      expect(await h.error(b, '<lock><target><running/></target></lock>')).toEqual(outstanding);
      expect(await h.error(a, '<lock><target><running/></target></lock>')).toEqual(outstanding);
      await h.ok(a, '<commit/>');
      await h.ok(b, '<lock><target><running/></target></lock>');
      await h.ok(b, '<unlock><target><running/></target></unlock>');
      expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth2')]));
    },
  },
  {
    name: 'confirmed commit: the confirm timeout rolls running back, once a second has passed without any RPC (netconfd runs its timers only then)',
    async run(h) {
      const s = await h.session();
      const b = await h.session();
      await h.ok(s, editXml(iface('eth2')));
      await h.ok(s, '<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>');
      // RPCs about 100 ms apart (here from another session) for well past the timeout: it waits.
      for (let i = 0; i < 20; i++) {
        expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth2')]));
        await new Promise((r) => setTimeout(r, 100));
      }
      await h.eventually('running rolls back when the confirm timeout passes', async () => expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1])), 10_000, 1_500);
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
    },
  },
  {
    name: 'confirmed commit: the issuing session ending without persist rolls running back (nothing locked)',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, '<lock><target><candidate/></target></lock>');
      await h.ok(a, editXml(iface('eth2')));
      await h.ok(a, '<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>');
      await h.close(a);
      await h.eventually('running rolls back when the issuing session ends', async () => expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1])));
    },
  },
  {
    name: 'confirmed commit ended while running is locked (session end, or timeout) keeps the unconfirmed config in running (netconfd)',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, '<lock><target><running/></target></lock>');
      await h.ok(a, editXml(iface('eth2')));
      await h.ok(a, '<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>');
      await h.close(a);
      // Nothing is pending any more (running can be locked again), yet running kept eth2.
      await h.eventually('the pending commit ends with its session', () => h.ok(b, '<lock><target><running/></target></lock>'));
      expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth2')]));
      const c = await h.session();
      await h.ok(b, editXml(iface('eth3')));
      await h.ok(b, '<commit><confirmed/><confirm-timeout>1</confirm-timeout></commit>');
      // While the commit is pending, locking running is in-use; once it has ended, the lock b holds is what refuses.
      await h.eventually('the confirm timeout passes', async () => expect((await h.error(c, '<lock><target><running/></target></lock>')).tag).toBe('lock-denied'), 10_000, 1_500);
      expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth2'), plain('eth3')]));
      await h.ok(b, '<unlock><target><running/></target></unlock>');
    },
  },
  {
    name: 'cancel-commit rolls back when running is not locked; with running locked it answers <ok/> and running keeps the new config (netconfd)',
    bases: 'both',
    async run(h) {
      const s = await h.session();
      await h.ok(s, '<lock><target><candidate/></target></lock>');
      await h.ok(s, editXml(iface('eth2')));
      await h.ok(s, '<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>');
      await h.ok(s, '<cancel-commit/>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1]));
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
      await h.ok(s, '<unlock><target><candidate/></target></unlock>');

      await h.ok(s, '<lock><target><running/></target></lock>');
      await h.ok(s, editXml(iface('eth3')));
      await h.ok(s, '<commit><confirmed/><confirm-timeout>60</confirm-timeout><persist>p1</persist></commit>');
      await h.ok(s, '<cancel-commit><persist-id>p1</persist-id></cancel-commit>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth3')]));
      expect(await h.error(s, '<cancel-commit><persist-id>p1</persist-id></cancel-commit>')).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'general-error', message: 'operation failed' });
      await h.ok(s, '<unlock><target><running/></target></unlock>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth3')]));
    },
  },
  {
    name: 'confirmed commit with persist: another session confirms or cancels by persist-id; a wrong one is invalid-value, none data-missing (cancel) or in-use (commit)',
    bases: 'both',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, editXml(iface('eth2')));
      await h.ok(a, '<commit><confirmed/><confirm-timeout>60</confirm-timeout><persist>tok</persist></commit>');
      expect(await h.error(b, '<commit><persist-id>bad</persist-id></commit>')).toEqual({ type: 'protocol', tag: 'invalid-value', appTag: 'data-invalid', path: '/nc:rpc/nc:commit/nc:persist-id', message: 'invalid value' });
      expect(await h.error(b, '<commit/>')).toEqual({ type: 'protocol', tag: 'in-use', appTag: 'outstanding-confirmed-commit', message: 'cannot perform the operation with confirmed-commit pending' });
      expect(await h.error(b, '<cancel-commit/>')).toEqual({ type: 'protocol', tag: 'data-missing', appTag: 'data-incomplete', message: 'missing parameter' });
      await h.ok(b, '<cancel-commit><persist-id>tok</persist-id></cancel-commit>');
      expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1]));
      await h.ok(a, editXml(iface('eth3')));
      await h.ok(a, '<commit><confirmed/><confirm-timeout>60</confirm-timeout><persist>tok2</persist></commit>');
      await h.close(a);
      expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth3')]));
      await h.ok(b, '<commit><persist-id>tok2</persist-id></commit>');
      expect(await h.interfaces(b, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth3')]));
    },
  },
  {
    name: 'confirmed commit without persist: other sessions cannot cancel it (operation-failed); a follow-up confirmed commit keeps the first backup',
    bases: 'both',
    async run(h) {
      const a = await h.session();
      const b = await h.session();
      await h.ok(a, editXml(iface('eth2')));
      await h.ok(a, '<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>');
      expect(await h.error(b, '<cancel-commit/>')).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'general-error', message: 'operation failed' });
      expect(await h.error(a, '<cancel-commit><persist-id>x</persist-id></cancel-commit>')).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'general-error', message: 'persistent confirmed commit not active' });
      await h.ok(a, editXml(iface('eth3')));
      await h.ok(a, '<commit><confirmed/><confirm-timeout>60</confirm-timeout></commit>');
      expect(await h.interfaces(a, 'running')).toBe(ifCanon([ETH0, ETH1, plain('eth2'), plain('eth3')]));
      await h.ok(a, '<cancel-commit/>');
      expect(await h.interfaces(a, 'running')).toBe(ifCanon([ETH0, ETH1]));
    },
  },
  {
    name: 'commit and cancel-commit errors: nothing pending, a bad confirm-timeout',
    async run(h) {
      const s = await h.session();
      expect(await h.error(s, '<commit><confirmed/><confirm-timeout>0</confirm-timeout></commit>')).toEqual({ type: 'protocol', tag: 'invalid-value', appTag: 'not-in-range', path: '/nc:rpc/nc:commit/nc:confirm-timeout', message: 'value not in range', info: { 'bad-value': '0' } });
      expect(await h.error(s, '<commit><confirmed/><confirm-timeout>soon</confirm-timeout></commit>')).toEqual({
        type: 'protocol',
        tag: 'bad-element',
        appTag: 'data-invalid',
        path: '/nc:rpc/nc:commit/nc:confirm-timeout',
        message: 'invalid number',
        info: { 'bad-element': 'nc:confirm-timeout', 'bad-value': 'soon' },
      });
      if (h.base11) {
        expect(await h.error(s, '<commit><persist-id>zz</persist-id></commit>')).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'general-error', path: '/nc:rpc/nc:commit/nc:persist-id', message: 'persistent confirmed commit not active' });
        expect(await h.error(s, '<cancel-commit/>')).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'general-error', message: 'operation failed' });
      }
    },
  },
  {
    name: 'a base:1.0 server knows neither <persist> nor cancel-commit (confirmed-commit:1.0)',
    bases: '1.0',
    async run(h) {
      const s = await h.session();
      await h.ok(s, editXml(iface('eth2')));
      expect(await h.error(s, '<commit><confirmed/><confirm-timeout>60</confirm-timeout><persist>x</persist></commit>')).toEqual({
        type: 'protocol',
        tag: 'unknown-element',
        appTag: 'no-support',
        path: '/nc:rpc/nc:commit/nc:persist',
        message: 'base:1.1 protocol not enabled',
        info: { 'bad-element': 'nc:commit' },
      });
      expect(await h.error(s, '<cancel-commit/>')).toEqual({ type: 'protocol', tag: 'unknown-element', appTag: 'data-incomplete', message: 'unknown element', info: { 'bad-element': 'nc:cancel-commit' } });
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([ETH0, ETH1]));
    },
  },

  {
    name: 'a base:1.0 session on a server that also speaks base:1.1 refuses <persist> and cancel-commit too, though the hello lists :confirmed-commit:1.1',
    bases: 'both',
    async run(h) {
      const s = await h.session('base:1.0');
      expect([...s.capabilities]).toContain(CAP('confirmed-commit:1.1'));
      await h.ok(s, editXml(iface('eth2')));
      expect(await h.error(s, '<commit><confirmed/><confirm-timeout>60</confirm-timeout><persist>x</persist></commit>')).toMatchObject({ tag: 'unknown-element', appTag: 'no-support', path: '/nc:rpc/nc:commit/nc:persist' });
      expect(await h.error(s, '<cancel-commit/>')).toMatchObject({ tag: 'unknown-element', info: { 'bad-element': 'nc:cancel-commit' } });
    },
  },

  // --- get-config filters ------------------------------------------------------
  {
    name: 'get-config subtree filter: content match on a key, selection of a leaf, nested namespaces, an unknown namespace selects nothing',
    async run(h) {
      const s = await h.session();
      const get = async (filter: string): Promise<string> => canon(child(await h.rpc(s, `<get-config><source><running/></source><filter type="subtree">${filter}</filter></get-config>`), 'data', NC)?.children ?? []);
      expect(await get(`<interfaces xmlns="${IF}"><interface><name>eth1</name></interface></interfaces>`)).toBe(ifCanon([ETH1]));
      expect(await get(`<interfaces xmlns="${IF}"><interface><description/></interface></interfaces>`)).toBe(ifCanon(['interface{description=access,name=eth1}', 'interface{description=uplink,name=eth0}']));
      expect(await get(`<interfaces xmlns="${IF}"><interface><name>eth0</name><ipv4 xmlns="${IP}"/></interface></interfaces>`)).toBe(ifCanon(['interface{ipv4{address{ip=10.0.0.1,prefix-length=24}},name=eth0}']));
      expect(await get('<foo xmlns="urn:example:nosuch"/>')).toBe('');
      expect(await get(`<interfaces xmlns="${IF}"><interface><name>eth9</name></interface></interfaces>`)).toBe('');
    },
  },
  {
    name: 'get-config xpath filter: a list entry by key, a leaf of every entry (with its keys), a predicate on a non-key leaf, no match, and its errors',
    async run(h) {
      const s = await h.session();
      const get = async (select: string): Promise<string> =>
        canon(child(await h.rpc(s, `<get-config><source><running/></source><filter type="xpath" xmlns:if="${IF}" select="${select}"/></get-config>`), 'data', NC)?.children ?? []);
      expect(await get("/if:interfaces/if:interface[if:name='eth1']")).toBe(ifCanon([ETH1]));
      expect(await get('/if:interfaces/if:interface/if:description')).toBe(ifCanon(['interface{description=access,name=eth1}', 'interface{description=uplink,name=eth0}']));
      expect(await get("/if:interfaces/if:interface[if:description='uplink']/if:name")).toBe(ifCanon(['interface{name=eth0}']));
      expect(await get('//if:name')).toBe(ifCanon(['interface{name=eth0}', 'interface{name=eth1}']));
      expect(await get('/if:interfaces')).toBe(ifCanon([ETH0, ETH1]));
      expect(await get("/if:interfaces/if:interface[if:name='eth9']")).toBe('');
      expect(await h.error(s, '<get-config><source><running/></source><filter type="xpath" select="/zz:interfaces"/></get-config>')).toEqual({
        type: 'protocol',
        tag: 'bad-attribute',
        appTag: 'data-invalid',
        message: 'invalid XPath expression syntax',
        info: { 'bad-attribute': 'nc:select', 'bad-element': 'nc:filter', 'bad-value': '/zz:interfaces' },
      });
      expect(await h.error(s, '<get-config><source><running/></source><filter type="xpath"/></get-config>')).toEqual({
        type: 'protocol',
        tag: 'missing-attribute',
        appTag: 'data-incomplete',
        path: '/nc:rpc/nc:get-config/nc:filter',
        message: 'missing attribute',
        info: { 'bad-attribute': 'select', 'bad-element': 'nc:filter' },
      });
      expect(await h.error(s, '<get-config><source><running/></source><filter type="bogus"/></get-config>')).toEqual({
        type: 'protocol',
        tag: 'bad-attribute',
        appTag: 'not-in-value-set',
        path: '/nc:rpc/nc:get-config/nc:filter',
        message: 'value not in set',
        info: { 'bad-attribute': 'type', 'bad-element': 'nc:filter', 'bad-value': 'bogus' },
      });
    },
  },

  // --- copy-config, get-schema ---------------------------------------------------
  {
    name: 'copy-config: running to candidate, an inline config to candidate (replacing it whole); running is not a target (operation-not-supported)',
    async run(h) {
      const s = await h.session();
      await h.ok(s, editXml(iface('eth2')));
      await h.ok(s, '<copy-config><target><candidate/></target><source><running/></source></copy-config>');
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([ETH0, ETH1]));
      await h.ok(s, `<copy-config><target><candidate/></target><source><config><interfaces xmlns="${IF}">${iface('eth1', '<description>copied</description>')}</interfaces></config></source></copy-config>`);
      expect(await h.interfaces(s, 'candidate')).toBe(ifCanon([plain('eth1', ['description=copied'])]));
      expect(await h.error(s, '<copy-config><target><running/></target><source><candidate/></source></copy-config>')).toEqual({ type: 'protocol', tag: 'operation-not-supported', appTag: 'no-support', path: '/nc:rpc/nc:copy-config/nc:target', message: 'operation not supported' });
      await h.ok(s, '<commit/>');
      expect(await h.interfaces(s, 'running')).toBe(ifCanon([plain('eth1', ['description=copied'])]));
    },
  },
  {
    name: 'get-schema returns the YANG text of an advertised module (any version, or the advertised one); unknown modules, versions and formats are refused',
    async run(h) {
      const s = await h.session();
      const advertised = [...s.capabilities].find((c) => c.startsWith(`${IF}?`)) ?? '';
      const revision = /revision=([0-9-]+)/.exec(advertised)?.[1] ?? '';
      expect(revision).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      const schema = async (args: string): Promise<string> => child(await h.rpc(s, `<get-schema xmlns="${NCM}">${args}</get-schema>`), 'data')?.text ?? '';
      for (const text of [await schema('<identifier>ietf-interfaces</identifier>'), await schema(`<identifier>ietf-interfaces</identifier><version>${revision}</version><format>yang</format>`)]) {
        expect(text).toMatch(/^\s*module ietf-interfaces \{/);
        expect(text).toContain(`namespace "${IF}";`);
        expect(text).toContain(`revision ${revision}`);
        expect(text).toMatch(/list interface \{/);
      }
      expect(await schema('<identifier>ietf-ip</identifier>')).toContain(`namespace "${IP}";`);
      const path = (leaf: string): string => `/nc:rpc/ncm:get-schema/ncm:${leaf}`;
      expect(await h.error(s, `<get-schema xmlns="${NCM}"><identifier>no-such-module</identifier></get-schema>`)).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'no-matches', path: path('identifier'), message: 'no matches found' });
      expect(await h.error(s, `<get-schema xmlns="${NCM}"><identifier>ietf-interfaces</identifier><version>1999-01-01</version></get-schema>`)).toEqual({ type: 'protocol', tag: 'operation-failed', appTag: 'no-matches', path: path('version'), message: 'no matches found' });
      expect(await h.error(s, `<get-schema xmlns="${NCM}"><identifier>ietf-interfaces</identifier><format>yin</format></get-schema>`)).toEqual({ type: 'protocol', tag: 'invalid-value', appTag: 'data-invalid', path: path('format'), message: 'value not supported', info: { 'bad-value': 'yin' } });
      expect(await h.error(s, `<get-schema xmlns="${NCM}"/>`)).toEqual({ type: 'protocol', tag: 'data-missing', appTag: 'instance-required', path: path('identifier'), message: 'required value instance not found', info: { 'bad-value': 'identifier' } });
    },
  },
];
