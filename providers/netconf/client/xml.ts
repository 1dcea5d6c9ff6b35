/**
 * A small namespace-aware XML element tree built from saxes events, and the
 * escaping writer that serializes it. Element names, namespaces and attribute
 * names never become object keys of ordinary objects: attributes live in
 * null-prototype maps, children in arrays, so no payload can reach a prototype.
 */
import type * as Saxes from 'saxes';
import type { SaxesTagNS } from 'saxes';
import { lazyRequire } from '../../../src/util/lazy-require.js';

const saxes = lazyRequire<typeof Saxes>('saxes');

export const NC_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0';

export interface XmlAttr {
  /** Namespace URI of the attribute ('' when unqualified). */
  ns: string;
  name: string;
  value: string;
  /** Prefix to write it with (qualified attributes only). */
  prefix?: string;
}

export interface XmlElement {
  /** Namespace URI ('' when none). */
  ns: string;
  /** Local name. */
  name: string;
  /** Attributes by `{ns}name` (or `name` when unqualified); a null-prototype map. */
  attrs: Record<string, XmlAttr>;
  children: XmlElement[];
  /** Text content directly inside the element (whitespace kept; meaningful for leaves). */
  text: string;
  /**
   * Namespace prefixes declared on this element (`xmlns:p`), written back out by
   * the serializer and used to resolve prefixed values (identityrefs). Null prototype.
   */
  prefixes: Record<string, string>;
  /**
   * Set by the parser for a leaf whose text is `prefix:local` with a prefix in
   * scope: the value as `{namespace}local`, so identityrefs compare across prefixes.
   */
  qvalue?: string;
}

export function element(ns: string, name: string, options: { text?: string; children?: XmlElement[]; attrs?: XmlAttr[]; prefixes?: Record<string, string> } = {}): XmlElement {
  const attrs: Record<string, XmlAttr> = Object.create(null) as Record<string, XmlAttr>;
  for (const a of options.attrs ?? []) attrs[attrKey(a.ns, a.name)] = a;
  const prefixes: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [p, uri] of Object.entries(options.prefixes ?? {})) prefixes[p] = uri;
  return { ns, name, attrs, children: options.children ?? [], text: options.text ?? '', prefixes };
}

export function attrKey(ns: string, name: string): string {
  return ns === '' ? name : `{${ns}}${name}`;
}

export function attr(el: XmlElement, name: string, ns = ''): string | undefined {
  return el.attrs[attrKey(ns, name)]?.value;
}

/** First child with this local name (and namespace, when given). */
export function child(el: XmlElement, name: string, ns?: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name && (ns === undefined || c.ns === ns));
}

export class XmlParseError extends Error {}

export interface ParseOptions {
  /** Deepest element nesting accepted; default 256 (a reply is bounded in bytes by the framing already). */
  maxDepth?: number;
}

/** `prefix:local`, as in an identityref value. */
export const QNAME_VALUE = /^([A-Za-z_][A-Za-z0-9_.-]*):([A-Za-z_][A-Za-z0-9_.-]*)$/;

/**
 * Parses one complete XML document into its root element. No DTDs (NETCONF has
 * none, and refusing them rules out entity expansion), no external anything.
 */
export function parseXml(text: string, options: ParseOptions = {}): XmlElement {
  const maxDepth = options.maxDepth ?? 256;
  const parser = new (saxes().SaxesParser)({ xmlns: true, position: false });
  const stack: XmlElement[] = [];
  /** In-scope prefix bindings per open element (own declarations only; lookups walk down the stack). */
  const scopes: Array<Record<string, string>> = [];
  let root: XmlElement | undefined;
  let failure: Error | undefined;

  const resolvePrefix = (prefix: string): string | undefined => {
    for (let i = scopes.length - 1; i >= 0; i--) {
      const uri = scopes[i]![prefix];
      if (uri !== undefined) return uri;
    }
    return undefined;
  };

  parser.on('error', (err) => {
    failure ??= new XmlParseError(err.message);
  });
  parser.on('doctype', () => {
    failure ??= new XmlParseError('a DOCTYPE is not allowed in NETCONF messages');
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (stack.length >= maxDepth) {
      failure ??= new XmlParseError(`elements nest deeper than ${maxDepth}`);
      return;
    }
    const attrs: Record<string, XmlAttr> = Object.create(null) as Record<string, XmlAttr>;
    const prefixes: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [p, uri] of Object.entries(tag.ns)) if (p !== '') prefixes[p] = uri;
    for (const a of Object.values(tag.attributes)) {
      if (a.prefix === 'xmlns' || (a.prefix === '' && a.local === 'xmlns')) continue;
      attrs[attrKey(a.uri, a.local)] = a.uri === '' ? { ns: '', name: a.local, value: a.value } : { ns: a.uri, name: a.local, value: a.value, prefix: a.prefix };
    }
    const el: XmlElement = { ns: tag.uri, name: tag.local, attrs, children: [], text: '', prefixes };
    const scope: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [p, uri] of Object.entries(tag.ns)) scope[p] = uri;
    scopes.push(scope);
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root ??= el;
    stack.push(el);
  });
  parser.on('text', (t) => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  });
  parser.on('cdata', (t) => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  });
  parser.on('closetag', () => {
    const el = stack.pop();
    if (el && el.children.length === 0) {
      const m = QNAME_VALUE.exec(el.text.trim());
      if (m) {
        const uri = resolvePrefix(m[1]!);
        if (uri !== undefined) el.qvalue = `{${uri}}${m[2]!}`;
      }
    }
    scopes.pop();
  });
  try {
    parser.write(text).close();
  } catch (err) {
    failure ??= new XmlParseError((err as Error).message);
  }
  if (failure) throw failure;
  if (!root) throw new XmlParseError('no root element');
  return root;
}

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' };

/** Escapes text and attribute values (quotes too, so one function serves both). */
export function escapeXml(value: string): string {
  // Characters XML 1.0 cannot carry at all are refused rather than silently dropped.
  // eslint-disable-next-line no-control-regex -- these are exactly the characters to refuse
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(value)) throw new XmlParseError('text contains a character XML 1.0 cannot represent');
  return value.replace(/[&<>"'\r]/g, (c) => TEXT_ESCAPES[c]!);
}

/** The element, attribute and prefix names Plumb writes (no colons, no non-ASCII). */
export const XML_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function checkName(name: string): string {
  if (!XML_NAME.test(name)) throw new XmlParseError(`"${name}" is not a valid XML name`);
  return name;
}

/**
 * Writes an element tree. The default namespace is declared wherever it changes
 * from the parent's; qualified attributes use their own prefix (declared on the
 * element if no ancestor declares it). Pretty printing is never used: leaf text
 * is data.
 */
export function serializeXml(el: XmlElement, parentNs = '', inScope: Record<string, string> = Object.create(null) as Record<string, string>): string {
  const name = checkName(el.name);
  let head = `<${name}`;
  if (el.ns !== parentNs) head += ` xmlns="${escapeXml(el.ns)}"`;
  let scope = inScope;
  const declare = (prefix: string, uri: string): void => {
    if (scope[prefix] === uri) return;
    if (scope === inScope) scope = Object.assign(Object.create(null) as Record<string, string>, inScope);
    scope[prefix] = uri;
    head += ` xmlns:${checkName(prefix)}="${escapeXml(uri)}"`;
  };
  for (const [prefix, uri] of Object.entries(el.prefixes)) declare(prefix, uri);
  for (const a of Object.values(el.attrs)) {
    if (a.ns === '') {
      head += ` ${checkName(a.name)}="${escapeXml(a.value)}"`;
    } else {
      const prefix = a.prefix ?? 'a';
      declare(prefix, a.ns);
      head += ` ${checkName(prefix)}:${checkName(a.name)}="${escapeXml(a.value)}"`;
    }
  }
  if (el.children.length === 0 && el.text === '') return `${head}/>`;
  const body = el.children.length > 0 ? el.children.map((c) => serializeXml(c, el.ns, scope)).join('') : escapeXml(el.text);
  return `${head}>${body}</${name}>`;
}
