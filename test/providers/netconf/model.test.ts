import { describe, expect, it } from 'vitest';
import { NC_NS, parseXml, serializeXml, type XmlElement } from '../../../providers/netconf/client/xml.js';
import { applyEdit, combineEdits, compile, diffConfig, ownsSomething, readFilter, removeEdit, toActual, type ConfigActual, type ConfigSpec } from '../../../providers/netconf/model.js';
import { SpecError } from '../../../src/errors.js';

const IF = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
const IANA = 'urn:ietf:params:xml:ns:yang:iana-if-type';
const SW = 'urn:example:plumb:switch';

const spec = (over: Partial<ConfigSpec> = {}): ConfigSpec => ({
  keys: { 'interfaces/interface': ['name'], 'ports/port': ['name'] },
  config: {
    interfaces: {
      '@xmlns': IF,
      interface: [
        { name: 'eth0', description: 'uplink', enabled: true, type: { '@xmlns:ianaift': IANA, '#text': 'ianaift:ethernetCsmacd' } },
        { name: 'eth1', mtu: 9000 },
      ],
    },
    ports: { '@xmlns': SW, port: [{ name: 'eth2', 'trunk-vlans': [10, 20] }] },
  },
  ...over,
});

/** What a device would answer, as <data> content. */
const actual = (xml: string): ConfigActual => ({ datastore: 'running', nodes: toActual(parseXml(`<data xmlns="${NC_NS}">${xml}</data>`).children) });
const xml = (els: XmlElement[]): string => els.map((e) => serializeXml(e, NC_NS)).join('');

const CONVERGED = `<interfaces xmlns="${IF}"><interface><name>eth1</name><mtu>9000</mtu></interface><interface><name>eth0</name><type xmlns:x="${IANA}">x:ethernetCsmacd</type><enabled>true</enabled><description>uplink</description></interface></interfaces><ports xmlns="${SW}"><port><name>eth2</name><trunk-vlans>20</trunk-vlans><trunk-vlans>10</trunk-vlans></port></ports>`;

describe('diff: canonical, namespace-aware', () => {
  it('list order, leaf order, leaf-list order and identityref prefixes do not matter', () => {
    expect(diffConfig(compile(spec()), actual(CONVERGED))).toEqual([]);
  });

  it('a leaf in another namespace is another leaf; an identity in another namespace differs', () => {
    const other = CONVERGED.replace('<mtu>9000</mtu>', '<mtu xmlns="urn:other">9000</mtu>').replace(`xmlns:x="${IANA}"`, 'xmlns:x="urn:not-iana"');
    expect(diffConfig(compile(spec()), actual(other)).map((c) => c.path)).toEqual(['/config/interfaces/interface/eth0/type', '/config/interfaces/interface/eth1/mtu']);
  });

  it('change paths name list entries by key; notes say before -> after', () => {
    const changed = CONVERGED.replace('<description>uplink</description>', '<description>old</description>');
    expect(diffConfig(compile(spec()), actual(changed))).toEqual([{ path: '/config/interfaces/interface/eth0/description', before: 'old', after: 'uplink', note: '"old" -> "uplink"' }]);
  });

  it('a missing list entry is one change; a missing leaf-list value names what to add', () => {
    const missing = CONVERGED.replace(/<interface><name>eth1<\/name><mtu>9000<\/mtu><\/interface>/, '').replace('<trunk-vlans>20</trunk-vlans>', '');
    expect(diffConfig(compile(spec()), actual(missing))).toEqual([
      { path: '/config/interfaces/interface/eth1', before: undefined, after: { name: 'eth1', mtu: 9000 }, note: 'list entry to create' },
      { path: '/config/ports/port/eth2/trunk-vlans', before: ['10'], after: ['10', '20'], note: 'leaf-list to add: 20' },
    ]);
  });

  it('merge mode ignores what it does not name; replace mode wants the subtree equal', () => {
    const extra = CONVERGED.replace('<mtu>9000</mtu>', '<mtu>9000</mtu><description>by hand</description>').replace('<trunk-vlans>10</trunk-vlans>', '<trunk-vlans>10</trunk-vlans><trunk-vlans>30</trunk-vlans>') + '';
    const withExtraEntry = extra.replace('</interfaces>', '<interface><name>eth9</name></interface></interfaces>');
    expect(diffConfig(compile(spec()), actual(withExtraEntry))).toEqual([]);
    const replace = diffConfig(compile(spec({ mode: 'replace' })), actual(withExtraEntry));
    expect(replace.map((c) => [c.path, c.before, c.after])).toEqual([
      ['/config/interfaces/interface/eth1/description', 'by hand', undefined],
      ['/config/interfaces/interface/eth9', { name: 'eth9' }, undefined],
      ['/config/ports/port/eth2/trunk-vlans', ['10', '20', '30'], ['10', '20']],
    ]);
  });

  it('absent: every top element planned, leaves and list entries', () => {
    expect(diffConfig(compile(spec()), undefined).map((c) => c.path)).toEqual(['/config/interfaces/interface/eth0', '/config/interfaces/interface/eth1', '/config/ports/port/eth2']);
  });

  it('booleans, numbers and null map to text; null is an empty element', () => {
    const d = compile({ config: { sys: { '@xmlns': 'urn:s', on: false, n: 1.5, empty: null } } });
    expect(xml(applyEdit(d))).toBe('<sys xmlns="urn:s"><on>false</on><n>1.5</n><empty/></sys>');
    expect(diffConfig(d, actual('<sys xmlns="urn:s"><on>false</on><n>1.5</n><empty/></sys>'))).toEqual([]);
  });

  it('device element names are data: __proto__ in a reply is reported, never assigned', () => {
    const d = compile({ mode: 'replace', config: { sys: { '@xmlns': 'urn:s', a: 1 } } });
    const changes = diffConfig(d, actual('<sys xmlns="urn:s"><a>1</a><__proto__><polluted>yes</polluted></__proto__></sys>'));
    expect(changes).toHaveLength(1);
    expect(changes[0]!.path).toBe('/config/sys/__proto__');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('filters and edits', () => {
  it('merge read filter: containment down to named leaves, entries by key, leaf-lists whole', () => {
    expect(xml(readFilter(compile(spec())))).toBe(
      `<interfaces xmlns="${IF}"><interface><name>eth0</name><description/><enabled/><type xmlns:ianaift="${IANA}"/></interface><interface><name>eth1</name><mtu/></interface></interfaces><ports xmlns="${SW}"><port><name>eth2</name><trunk-vlans/></port></ports>`,
    );
    expect(xml(readFilter(compile(spec()), true))).toBe(`<interfaces xmlns="${IF}"><interface><name>eth0</name></interface><interface><name>eth1</name></interface></interfaces><ports xmlns="${SW}"><port><name>eth2</name></port></ports>`);
  });

  it('replace read filter selects the top elements whole; apply replaces them', () => {
    const d = compile(spec({ mode: 'replace' }));
    expect(xml(readFilter(d))).toBe(`<interfaces xmlns="${IF}"/><ports xmlns="${SW}"/>`);
    expect(xml(applyEdit(d))).toMatch(new RegExp(`^<interfaces xmlns="${IF}" xmlns:nc="${NC_NS}" nc:operation="replace"><interface><name>eth0</name>`));
  });

  it('merge apply writes everything named, without operation attributes', () => {
    expect(xml(applyEdit(compile(spec())))).toBe(
      `<interfaces xmlns="${IF}"><interface><name>eth0</name><description>uplink</description><enabled>true</enabled><type xmlns:ianaift="${IANA}">ianaift:ethernetCsmacd</type></interface><interface><name>eth1</name><mtu>9000</mtu></interface></interfaces><ports xmlns="${SW}"><port><name>eth2</name><trunk-vlans>10</trunk-vlans><trunk-vlans>20</trunk-vlans></port></ports>`,
    );
  });

  it('removal (merge): whole entries it fully owns, only its leaves from shared ones, its leaf-list values', () => {
    const d = compile(spec());
    const device = actual(CONVERGED.replace('<mtu>9000</mtu>', '<mtu>9000</mtu><description>someone else</description>').replace('<trunk-vlans>10</trunk-vlans>', '<trunk-vlans>10</trunk-vlans><trunk-vlans>99</trunk-vlans>'));
    const op = (o: string): string => `xmlns:nc="${NC_NS}" nc:operation="${o}"`;
    expect(xml(removeEdit(d, device.nodes))).toBe(
      `<interfaces xmlns="${IF}"><interface ${op('remove')}><name>eth0</name></interface><interface><name>eth1</name><mtu ${op('remove')}/></interface></interfaces><ports xmlns="${SW}"><port><name>eth2</name><trunk-vlans ${op('remove')}>10</trunk-vlans><trunk-vlans ${op('remove')}>20</trunk-vlans></port></ports>`,
    );
    expect(xml(removeEdit(d, device.nodes, 'delete'))).toContain('nc:operation="delete"');
    expect(removeEdit(d, [])).toEqual([]);
  });

  it('ownership: absent when nothing it owns is there', () => {
    const d = compile(spec());
    expect(ownsSomething(d, actual(`<interfaces xmlns="${IF}"><interface><name>eth1</name><description>x</description></interface></interfaces>`).nodes)).toBe(false);
    expect(ownsSomething(d, actual(`<interfaces xmlns="${IF}"><interface><name>eth1</name><mtu>1</mtu></interface></interfaces>`).nodes)).toBe(true);
    expect(ownsSomething(compile(spec({ mode: 'replace' })), actual(`<interfaces xmlns="${IF}"/>`).nodes)).toBe(false);
  });

  it('several resources combine into one edit; two owners of one leaf are a conflict', () => {
    const a = compile({ keys: { 'vlans/vlan': ['id'] }, config: { vlans: { '@xmlns': SW, vlan: [{ id: 1, name: 'a' }] } } });
    const b = compile({ keys: { 'vlans/vlan': ['id'] }, config: { vlans: { '@xmlns': SW, vlan: [{ id: 2, name: 'b' }, { id: 1, description: 'x' }] } } });
    expect(xml(combineEdits([{ id: 'A', elements: applyEdit(a) }, { id: 'B', elements: applyEdit(b) }]))).toBe(
      `<vlans xmlns="${SW}"><vlan><id>1</id><name>a</name><description>x</description></vlan><vlan><id>2</id><name>b</name></vlan></vlans>`,
    );
    const c = compile({ keys: { 'vlans/vlan': ['id'] }, config: { vlans: { '@xmlns': SW, vlan: [{ id: 1, name: 'other' }] } } });
    expect(() => combineEdits([{ id: 'A', elements: applyEdit(a) }, { id: 'C', elements: applyEdit(c) }])).toThrow(/C and A both write \/vlans\/vlan\/name/);
    const r = compile({ mode: 'replace', config: { vlans: { '@xmlns': SW, vlan: { id: 1 } } }, keys: { 'vlans/vlan': ['id'] } });
    expect(() => combineEdits([{ id: 'A', elements: applyEdit(a) }, { id: 'R', elements: applyEdit(r) }])).toThrow(SpecError);
  });
});

describe('spec validation', () => {
  const bad = (config: ConfigSpec['config'], keys?: ConfigSpec['keys'], mode?: ConfigSpec['mode']): string => {
    try {
      compile({ config, ...(keys ? { keys } : {}), ...(mode ? { mode } : {}) }, 'netconf.Config/x');
    } catch (err) {
      expect(err).toBeInstanceOf(SpecError);
      return (err as Error).message;
    }
    throw new Error('no SpecError');
  };
  it('explains what is wrong, with a pointer into spec', () => {
    expect(bad({ vlans: { '@xmlns': SW, vlan: [{ id: 1 }] } })).toBe('netconf.Config/x: spec/config/vlans/vlan: "vlans/vlan" is a list (an array of maps): declare its key leaves, e.g. keys: { "vlans/vlan": [name] }');
    expect(bad({ vlans: { '@xmlns': SW, vlan: [{ name: 'x' }] } }, { 'vlans/vlan': ['id'] })).toMatch(/spec\/config\/vlans\/vlan\/0: list entry of "vlans\/vlan" lacks its key leaf "id"/);
    expect(bad({ vlans: { vlan: 1 } })).toMatch(/element "vlans" has no namespace/);
    expect(bad({ vlans: { '@xmlns': SW, vlan: [{ id: 1 }, { id: 1 }] } }, { 'vlans/vlan': ['id'] })).toMatch(/same key values/);
    expect(bad({ p: { '@xmlns': SW, v: [1, 1] } })).toMatch(/has the value "1" twice/);
    expect(bad({ p: { '@xmlns': SW, v: [1, { a: 1 }] } })).toMatch(/mixes maps and scalars/);
    expect(bad({ p: { '@xmlns': SW, '@operation': 'delete' } })).toMatch(/attribute "operation" is not supported/);
    expect(bad({ p: { '@xmlns': SW, 'x:y': 1 } })).toMatch(/not an XML element name/);
    expect(bad({ p: { '@xmlns': SW, a: 1 } }, { 'p/b': ['k'] })).toMatch(/"p\/b" names no list of config/);
    expect(bad({ p: { '@xmlns': SW, '#text': 'x', a: 1 } })).toMatch(/#text cannot be combined/);
    expect(bad({ vlans: { '@xmlns': SW, vlan: [{ id: 1 }] } }, { vlans: ['id'] }, 'replace')).toMatch(/keys of|top-level|entry/);
  });
});

describe('three-way: what the last applied spec had and this one dropped', () => {
  it('leaves, leaf-list values and list entries dropped from the spec; keys and what is still named stay', async () => {
    const { releasedPart } = await import('../../../providers/netconf/model.js');
    const prev = compile(spec());
    const next = compile({ keys: { 'interfaces/interface': ['name'], 'ports/port': ['name'] }, config: { interfaces: { '@xmlns': IF, interface: [{ name: 'eth0', description: 'uplink' }] }, ports: { '@xmlns': SW, port: [{ name: 'eth2', 'trunk-vlans': [20] }] } } });
    const part = releasedPart(prev, next)!;
    const nodes = actual(CONVERGED).nodes;
    expect(xml(removeEdit(part, nodes, 'remove', new Set()))).toBe(
      `<interfaces xmlns="${IF}"><interface><name>eth0</name><enabled xmlns:nc="${NC_NS}" nc:operation="remove"/><type xmlns:ianaift="${IANA}" xmlns:nc="${NC_NS}" nc:operation="remove"/></interface><interface><name>eth1</name><mtu xmlns:nc="${NC_NS}" nc:operation="remove"/></interface></interfaces><ports xmlns="${SW}"><port><name>eth2</name><trunk-vlans xmlns:nc="${NC_NS}" nc:operation="remove">10</trunk-vlans></port></ports>`,
    );
    expect(releasedPart(prev, prev)).toBeUndefined();
  });

  it('a replace-mode top element the spec no longer names is removed whole', async () => {
    const { releasedPart } = await import('../../../providers/netconf/model.js');
    const part = releasedPart(compile(spec({ mode: 'replace' })), compile({ mode: 'replace', keys: { 'ports/port': ['name'] }, config: { ports: { '@xmlns': SW, port: [{ name: 'eth2', 'trunk-vlans': [10, 20] }] } } }))!;
    expect(xml(removeEdit(part, actual(CONVERGED).nodes, 'remove', new Set()))).toBe(`<interfaces xmlns="${IF}" xmlns:nc="${NC_NS}" nc:operation="remove"/>`);
  });
});
