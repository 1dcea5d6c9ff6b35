import { describe, expect, it } from 'vitest';
import { element, escapeXml, NC_NS, parseXml, serializeXml, XmlParseError } from '../../../providers/netconf/client/xml.js';

describe('xml', () => {
  it('parses namespaces: default, prefixed, inherited; attributes by namespace', () => {
    const doc = parseXml(`<?xml version="1.0"?><rpc-reply xmlns="${NC_NS}" xmlns:x="urn:x" message-id="7"><data><x:a x:attr="1" plain="2"><b>t</b></x:a></data></rpc-reply>`);
    expect([doc.ns, doc.name]).toEqual([NC_NS, 'rpc-reply']);
    expect(doc.attrs['message-id']?.value).toBe('7');
    const a = doc.children[0]!.children[0]!;
    expect([a.ns, a.name]).toEqual(['urn:x', 'a']);
    expect(a.attrs['{urn:x}attr']?.value).toBe('1');
    expect(a.attrs.plain?.value).toBe('2');
    expect([a.children[0]!.ns, a.children[0]!.text]).toEqual([NC_NS, 't']);
  });

  it('resolves prefixed leaf values (identityrefs) to {namespace}local with the prefix in scope', () => {
    const doc = parseXml('<i xmlns="urn:if" xmlns:ia="urn:iana"><type>ia:ethernetCsmacd</type><other xmlns:ib="urn:iana">ib:ethernetCsmacd</other><url>http://x</url><t>nope:x</t></i>');
    expect(doc.children.map((c) => c.qvalue)).toEqual(['{urn:iana}ethernetCsmacd', '{urn:iana}ethernetCsmacd', undefined, undefined]);
  });

  it('attribute and prefix maps have a null prototype; __proto__ is just a name', () => {
    const doc = parseXml('<a xmlns="urn:a" __proto__="x" constructor="y"><__proto__>z</__proto__></a>');
    expect(Object.getPrototypeOf(doc.attrs)).toBeNull();
    expect(Object.getPrototypeOf(doc.prefixes)).toBeNull();
    expect(doc.attrs.__proto__?.value).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(doc.children[0]!.name).toBe('__proto__');
  });

  it('refuses DTDs (no entity expansion), unknown entities, bad nesting, too deep trees', () => {
    expect(() => parseXml('<!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>')).toThrow(XmlParseError);
    expect(() => parseXml('<a>&unknown;</a>')).toThrow(XmlParseError);
    expect(() => parseXml('<a><b></a>')).toThrow(XmlParseError);
    expect(() => parseXml('<a xmlns:p="u"><q:b/></a>')).toThrow(XmlParseError);
    expect(() => parseXml(`${'<a>'.repeat(300)}${'</a>'.repeat(300)}`)).toThrow(/deeper/);
  });

  it('round-trips text with markup characters, CDATA becomes text', () => {
    const el = element('urn:a', 'a', { children: [element('urn:a', 'd', { text: `<&>"' ]]>]]> é\r` }), element('urn:b', 'e', { text: 'x' })] });
    const xml = serializeXml(el);
    expect(xml).toBe('<a xmlns="urn:a"><d>&lt;&amp;&gt;&quot;&apos; ]]&gt;]]&gt; é&#13;</d><e xmlns="urn:b">x</e></a>');
    const back = parseXml(xml);
    expect(back.children[0]!.text).toBe(`<&>"' ]]>]]> é\r`);
    expect(back.children[1]!.ns).toBe('urn:b');
    expect(parseXml('<a><![CDATA[<x>]]></a>').text).toBe('<x>');
  });

  it('writes qualified attributes with their prefix, declared once', () => {
    const el = element('urn:a', 'a', { prefixes: { nc: NC_NS }, children: [element('urn:a', 'b', { attrs: [{ ns: NC_NS, name: 'operation', value: 'remove', prefix: 'nc' }] })] });
    expect(serializeXml(el)).toBe(`<a xmlns="urn:a" xmlns:nc="${NC_NS}"><b nc:operation="remove"/></a>`);
  });

  it('refuses what XML cannot carry and names that are not names', () => {
    expect(() => escapeXml('a\u0000b')).toThrow(XmlParseError);
    expect(() => serializeXml(element('urn:a', 'a b'))).toThrow(XmlParseError);
    expect(() => serializeXml(element('urn:a', 'a', { attrs: [{ ns: '', name: 'x"y', value: '1' }] }))).toThrow(XmlParseError);
  });
});
