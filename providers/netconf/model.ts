/**
 * The YAML -> XML mapping of `netconf.Config`, and everything computed from it:
 * the subtree filter that reads exactly what the resource names, the
 * edit-config payloads (merge, replace, remove), the canonical comparison that
 * diffs desired against actual, and which parts of the device a resource owns.
 *
 * The mapping (docs/providers/netconf.md has the long form):
 * - a map key is an element's local name; `@xmlns` sets the element's namespace
 *   (inherited by its descendants), `@xmlns:p` declares prefix p for prefixed
 *   values such as identityrefs, `#text` is the text of an element that also
 *   has such declarations;
 * - an array is a list (items are maps; its key leaves are declared in `keys`)
 *   or a leaf-list (items are scalars);
 * - a scalar is text: strings as written, numbers in decimal, booleans
 *   true/false, null an empty element.
 *
 * Change paths are JSON pointers `/config/<element>/.../<list>/<key values>/<leaf>`:
 * a list entry is named by its key values joined with `,`.
 */
import { SpecError } from '../../src/errors.js';
import type { Change, Claim, Json } from '../../src/provider.js';
import { escapeToken } from '../../src/util/json-pointer.js';
import { attrKey, element, NC_NS, QNAME_VALUE, XML_NAME, type XmlElement } from './client/xml.js';

export type Mode = 'merge' | 'replace';

export interface ConfigSpec {
  mode?: Mode;
  datastore?: 'candidate' | 'running';
  keys?: Record<string, string[]>;
  config: Record<string, Json>;
}

/** One element of the desired tree. */
export interface DElem {
  ns: string;
  name: string;
  /** JSON pointer of this element in change paths. */
  pointer: string;
  /** Prefix declarations made on this element (`@xmlns:p`). */
  declared: Array<[string, string]>;
  /** Leaf: its text and canonical value. Undefined for a container or list entry. */
  leaf?: { text: string; canon: string };
  /** Container or list entry: its children (possibly none: a presence container / key-only entry). */
  children?: DChild[];
  /** List entry: its key leaf names and their values. */
  keys?: Array<[string, string]>;
  /** The YAML value, for change notes. */
  yaml: Json;
  /** Owned whole (a top element of a replace-mode spec): its removal takes the element, whatever is in it. */
  whole?: boolean;
}

export type DChild =
  | { t: 'one'; el: DElem }
  | { t: 'list'; ns: string; name: string; pointer: string; keys: string[]; entries: DElem[] }
  | { t: 'leaf-list'; ns: string; name: string; pointer: string; declared: Array<[string, string]>; values: Array<{ text: string; canon: string }>; yaml: Json };

export interface Desired {
  mode: Mode;
  datastore: 'candidate' | 'running' | undefined;
  top: DChild[];
}

/** Actual state as read: the selected subtree, as plain JSON (namespace, name, text or children). */
export interface ANode {
  ns: string;
  name: string;
  /** Leaf text (absent on elements with children). */
  text?: string;
  /** Leaf value as `{namespace}local` when the text was `prefix:local` with a prefix in scope. */
  q?: string;
  children?: ANode[];
}

export interface ConfigActual {
  /** The datastore read (always running: what the device runs). */
  datastore: 'running';
  nodes: ANode[];
  /** What the device holds of what the last applied spec named and this one dropped (see releasedPart). */
  released?: ANode[];
}

/** What the provider remembers per resource (Applied.memo). */
export interface ConfigMemo {
  [key: string]: Json;
  /** Pointers of the containers and list entries Plumb created (absent before its write): they go with the resource. */
  created: string[];
}

const isMap = (v: unknown): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

const compiled = new WeakMap<object, Desired>();

/** Compiles (and validates) a spec; cached per spec object, so diff stays cheap. `id` '' leaves it out of errors (the loader positions them). */
export function compile(spec: ConfigSpec, id = 'netconf.Config'): Desired {
  const hit = compiled.get(spec);
  if (hit) return hit;
  const desired = compileUncached(spec, id);
  compiled.set(spec, desired);
  return desired;
}

function compileUncached(spec: ConfigSpec, id: string): Desired {
  const mode: Mode = spec.mode ?? 'merge';
  const keys = new Map<string, string[]>();
  for (const [path, names] of Object.entries(spec.keys ?? {})) keys.set(normalizeKeyPath(path), names);
  const used = new Set<string>();
  const fail = (pointer: string, message: string): never => {
    // At load (no id) the diagnostic carries the position; at run time the message names the field.
    throw new SpecError(id === '' ? message : `${id}: spec${pointer}: ${message}`, { pointer });
  };
  if (!isMap(spec.config) || Object.keys(spec.config).length === 0) fail('/config', 'must name at least one top-level element');

  const scalarText = (v: Json, pointer: string): string => {
    if (v === null) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) fail(pointer, 'numbers must be finite');
      return String(v);
    }
    return fail(pointer, 'expected a scalar');
  };
  const canonOf = (text: string, scope: Map<string, string>): string => {
    const m = QNAME_VALUE.exec(text);
    const uri = m ? scope.get(m[1]!) : undefined;
    return uri !== undefined ? `{${uri}}${m![2]!}` : text;
  };

  /** Splits a YAML map into declarations, `#text`, and child entries. */
  const parts = (value: Record<string, Json>, pointer: string, parentNs: string, parentScope: Map<string, string>) => {
    let ns = parentNs;
    const declared: Array<[string, string]> = [];
    let text: Json | undefined;
    const kids: Array<[string, Json]> = [];
    for (const [k, v] of Object.entries(value)) {
      if (k === '@xmlns') {
        if (typeof v !== 'string' || v === '') fail(`${pointer}/${escapeToken(k)}`, '@xmlns must be a namespace URI');
        ns = v as string;
      } else if (k.startsWith('@xmlns:')) {
        const prefix = k.slice(7);
        if (!XML_NAME.test(prefix) || /^xml/i.test(prefix)) fail(`${pointer}/${escapeToken(k)}`, `"${prefix}" is not a usable namespace prefix`);
        if (typeof v !== 'string' || v === '') fail(`${pointer}/${escapeToken(k)}`, `${k} must be a namespace URI`);
        declared.push([prefix, v as string]);
      } else if (k.startsWith('@')) {
        fail(`${pointer}/${escapeToken(k)}`, `attribute "${k.slice(1)}" is not supported: only @xmlns and @xmlns:prefix (Plumb writes the operation attributes itself)`);
      } else if (k === '#text') {
        text = v;
      } else {
        if (!XML_NAME.test(k)) fail(`${pointer}/${escapeToken(k)}`, `"${k}" is not an XML element name (use @xmlns for namespaces, not prefixes)`);
        kids.push([k, v]);
      }
    }
    if (text !== undefined && kids.length > 0) fail(pointer, '#text cannot be combined with child elements');
    const scope = declared.length > 0 ? new Map([...parentScope, ...declared]) : parentScope;
    return { ns, declared, text, kids, scope };
  };

  const elementOf = (name: string, value: Json, pointer: string, path: string, parentNs: string, scope: Map<string, string>, depth: number): DElem => {
    if (depth > 64) fail(pointer, 'nests deeper than 64 elements');
    if (isMap(value)) {
      const p = parts(value, pointer, parentNs, scope);
      if (p.ns === '') fail(pointer, `element "${name}" has no namespace: set "@xmlns" on it or an ancestor`);
      if (p.text !== undefined) {
        const text = scalarText(p.text, `${pointer}/#text`);
        return { ns: p.ns, name, pointer, declared: p.declared, leaf: { text, canon: canonOf(text, p.scope) }, yaml: value };
      }
      const children = p.kids.map(([k, v]) => childOf(k, v, `${pointer}/${escapeToken(k)}`, `${path}/${k}`, p.ns, p.scope, depth + 1));
      return { ns: p.ns, name, pointer, declared: p.declared, children, yaml: value };
    }
    if (Array.isArray(value)) return fail(pointer, 'unexpected array');
    if (parentNs === '') fail(pointer, `element "${name}" has no namespace: write it as a map with "@xmlns"`);
    const text = scalarText(value, pointer);
    return { ns: parentNs, name, pointer, declared: [], leaf: { text, canon: canonOf(text, scope) }, yaml: value };
  };

  const entryOf = (name: string, value: Json, listPointer: string, path: string, keyNames: string[], parentNs: string, scope: Map<string, string>, depth: number, index: number): DElem => {
    if (!isMap(value)) return fail(`${listPointer}/${index}`, `list "${path}" has keys, so every entry must be a map`);
    const keyValues: Array<[string, string]> = [];
    for (const k of keyNames) {
      const v = value[k];
      if (v === undefined) fail(`${listPointer}/${index}`, `list entry of "${path}" lacks its key leaf "${k}" (keys: ${keyNames.join(', ')})`);
      const at = `${listPointer}/${index}/${escapeToken(k)}`;
      const raw: Json | undefined = isMap(v) ? v['#text'] : v;
      if (raw === undefined || Array.isArray(raw) || isMap(raw)) fail(at, `key leaf "${k}" must be a scalar`);
      const text = scalarText(raw as Json, at);
      keyValues.push([k, text]);
    }
    const pointer = `${listPointer}/${escapeToken(keyValues.map(([, v]) => v).join(','))}`;
    const el = elementOf(name, value, pointer, path, parentNs, scope, depth);
    if (el.leaf) fail(pointer, `list entry of "${path}" cannot be a leaf`);
    return { ...el, keys: keyValues };
  };

  const childOf = (name: string, value: Json, pointer: string, path: string, parentNs: string, scope: Map<string, string>, depth: number): DChild => {
    const keyNames = keys.get(path);
    if (keyNames) used.add(path);
    if (Array.isArray(value) || (keyNames && isMap(value))) {
      const items = Array.isArray(value) ? value : [value];
      const maps = items.filter(isMap).length;
      if (keyNames || (maps > 0 && maps === items.length)) {
        if (!keyNames) return fail(pointer, `"${path}" is a list (an array of maps): declare its key leaves, e.g. keys: { "${path}": [name] }`);
        if (keyNames.length === 0) fail(pointer, `keys of "${path}" must name at least one leaf`);
        const ns = parentNs;
        const entries = items.map((item, i) => entryOf(name, item, pointer, path, keyNames, parentNs, scope, depth, i));
        const seen = new Set<string>();
        for (const e of entries) {
          if (seen.has(e.pointer)) fail(e.pointer, `two entries of "${path}" have the same key values`);
          seen.add(e.pointer);
          if (e.ns !== (entries[0]?.ns ?? ns)) fail(e.pointer, `all entries of "${path}" must be in one namespace`);
        }
        return { t: 'list', ns: entries[0]?.ns ?? ns, name, pointer, keys: keyNames, entries };
      }
      if (maps > 0) return fail(pointer, `"${path}" mixes maps and scalars: a list has only maps, a leaf-list only scalars`);
      if (parentNs === '') fail(pointer, `element "${name}" has no namespace`);
      const values = items.map((v, i) => {
        if (Array.isArray(v)) fail(`${pointer}/${i}`, 'arrays cannot nest');
        const text = scalarText(v, `${pointer}/${i}`);
        return { text, canon: canonOf(text, scope) };
      });
      const canon = new Set<string>();
      for (const [i, v] of values.entries()) {
        if (canon.has(v.canon)) fail(`${pointer}/${i}`, `leaf-list "${path}" has the value ${JSON.stringify(v.text)} twice`);
        canon.add(v.canon);
      }
      return { t: 'leaf-list', ns: parentNs, name, pointer, declared: [], values, yaml: value };
    }
    return { t: 'one', el: elementOf(name, value, pointer, path, parentNs, scope, depth) };
  };

  const top: DChild[] = [];
  for (const [k, v] of Object.entries(spec.config)) {
    if (!XML_NAME.test(k)) fail(`/config/${escapeToken(k)}`, `"${k}" is not an XML element name`);
    const c = childOf(k, v, `/config/${escapeToken(k)}`, k, '', new Map(), 1);
    if (mode === 'replace' && c.t !== 'one') fail(`/config/${escapeToken(k)}`, 'replace mode owns whole top-level elements: put the list under its container');
    top.push(c);
  }
  for (const path of keys.keys()) if (!used.has(path)) fail('/keys', `"${path}" names no list of config (paths are element names from the top of config, joined with /)`);
  return { mode, datastore: spec.datastore, top };
}

function normalizeKeyPath(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

// ---------------------------------------------------------------- claims

/**
 * What a resource owns, one claim per named leaf, leaf-list value, list entry
 * without own leaves, and empty (presence) container; replace mode owns each
 * top element whole. Key segments are `{ns}name`, `{ns}name[k=v,...]` for list
 * entries and `{ns}name=value` for leaf-list values, so two resources naming
 * one leaf in different YAML (prefixes, key order) still collide.
 */
export function claimsOf(d: Desired): Claim[] {
  const claims: Claim[] = [];
  const add = (key: string[], label: string, pointer: string, whole = false): void => {
    claims.push({ key: ['netconf', ...key], label: `config ${label}`, pointer, ...(whole ? { whole } : {}) });
  };
  const walk = (children: DChild[], key: string[], label: string, entry?: DElem): void => {
    for (const c of children) {
      if (entry && isKey(entry, c)) continue; // part of the entry's identity, not a value of its own
      if (c.t === 'one') {
        const k = [...key, `{${c.el.ns}}${c.el.name}`];
        const l = `${label}/${c.el.name}`;
        if (c.el.leaf || !c.el.children || c.el.children.length === 0) add(k, l, c.el.pointer);
        else walk(c.el.children, k, l);
      } else if (c.t === 'list') {
        for (const e of c.entries) {
          const keys = (e.keys ?? []).map(([n, v]) => `${n}=${v}`).join(',');
          const k = [...key, `{${e.ns}}${e.name}[${keys}]`];
          const l = `${label}/${e.name}[${keys}]`;
          const own = (e.children ?? []).filter((x) => !isKey(e, x));
          if (own.length === 0) add(k, l, e.pointer);
          else walk(e.children ?? [], k, l, e);
        }
      } else {
        for (const v of c.values) add([...key, `{${c.ns}}${c.name}=${v.canon}`], `${label}/${c.name}=${v.text}`, c.pointer);
      }
    }
  };
  if (d.mode === 'replace') {
    for (const c of d.top) if (c.t === 'one') add([`{${c.el.ns}}${c.el.name}`], `/${c.el.name} (replace: the whole subtree)`, c.el.pointer, true);
  } else walk(d.top, [], '');
  return claims;
}

// ---------------------------------------------------------------- XML building

function xel(ns: string, name: string, opts: { text?: string; children?: XmlElement[]; declared?: Array<[string, string]>; op?: string } = {}): XmlElement {
  return element(ns, name, {
    text: opts.text,
    children: opts.children,
    attrs: opts.op ? [{ ns: NC_NS, name: 'operation', value: opts.op, prefix: 'nc' }] : [],
    prefixes: Object.fromEntries(opts.declared ?? []),
  });
}

/** Key leaves of an entry, as content-match / identifying elements. */
function keyElements(e: DElem): XmlElement[] {
  return (e.keys ?? []).map(([k, v]) => {
    const kid = e.children?.find((c) => c.t === 'one' && c.el.name === k);
    const declared = kid && kid.t === 'one' ? kid.el.declared : [];
    const ns = kid && kid.t === 'one' ? kid.el.ns : e.ns;
    return xel(ns, k, { text: v, declared });
  });
}

function isKey(e: DElem, c: DChild): boolean {
  return c.t === 'one' && (e.keys ?? []).some(([k]) => k === c.el.name) && c.el.ns === e.ns;
}

/** The whole desired element as config XML (no operation attributes). */
function fullElement(e: DElem, op?: string): XmlElement {
  if (e.leaf) return xel(e.ns, e.name, { text: e.leaf.text, declared: e.declared, ...(op ? { op } : {}) });
  const el = xel(e.ns, e.name, { declared: e.declared, children: (e.children ?? []).flatMap((c) => fullChild(c)), ...(op ? { op } : {}) });
  return e.keys ? withIdentity(el, entrySuffix(e)) : el;
}

function fullChild(c: DChild): XmlElement[] {
  if (c.t === 'one') return [fullElement(c.el)];
  if (c.t === 'list') return c.entries.map((e) => fullElement(e));
  return c.values.map((v) => withIdentity(xel(c.ns, c.name, { text: v.text, declared: c.declared }), `=${v.canon}`));
}

/** The `<config>` content of an apply: everything named (merge), or the top elements with operation="replace". */
export function applyEdit(d: Desired): XmlElement[] {
  return d.top.flatMap((c) => (d.mode === 'replace' && c.t === 'one' ? [fullElement(c.el, 'replace')] : fullChild(c)));
}

/**
 * The subtree filter of a read. Replace mode: the top elements whole. Merge
 * mode: containment nodes down to the named leaves, list entries selected by
 * their keys (content-match nodes), leaf-lists whole. With `wholeEntries`,
 * named list entries are read whole (removal needs to see what else they hold),
 * and so are the elements at the pointers in `whole` (containers Plumb created).
 */
export function readFilter(d: Desired, wholeEntries = false, whole?: ReadonlySet<string>): XmlElement[] {
  if (d.mode === 'replace') return d.top.map((c) => (c.t === 'one' ? xel(c.el.ns, c.el.name, { declared: c.el.declared }) : xel(c.ns, c.name)));
  const elem = (e: DElem): XmlElement => {
    if (e.leaf || e.whole || whole?.has(e.pointer) || !e.children || e.children.length === 0) return xel(e.ns, e.name, { declared: e.declared });
    return xel(e.ns, e.name, { declared: e.declared, children: e.children.flatMap((c) => kid(c)) });
  };
  const entry = (e: DElem): XmlElement => {
    const rest = wholeEntries || whole?.has(e.pointer) ? [] : (e.children ?? []).filter((c) => !isKey(e, c)).flatMap((c) => kid(c));
    return xel(e.ns, e.name, { declared: e.declared, children: [...keyElements(e), ...rest] });
  };
  const kid = (c: DChild): XmlElement[] => {
    if (c.t === 'one') return [elem(c.el)];
    if (c.t === 'list') return c.entries.map(entry);
    return c.values.length > 0 ? [xel(c.ns, c.name)] : [];
  };
  return d.top.flatMap(kid);
}

// ---------------------------------------------------------------- actual

/** Turns `<data>` children into plain JSON nodes (container whitespace dropped, leaf text kept). */
export function toActual(elements: XmlElement[]): ANode[] {
  const conv = (e: XmlElement): ANode => {
    if (e.children.length > 0) return { ns: e.ns, name: e.name, children: e.children.map(conv) };
    return e.qvalue !== undefined ? { ns: e.ns, name: e.name, text: e.text, q: e.qvalue } : { ns: e.ns, name: e.name, text: e.text };
  };
  return elements.map(conv);
}

const canonA = (a: ANode): string => a.q ?? a.text ?? '';
const same = (a: ANode, ns: string, name: string): boolean => a.ns === ns && a.name === name;

function entryMatches(e: DElem, a: ANode): boolean {
  const kids = a.children ?? [];
  return (e.keys ?? []).every(([k, v]) => {
    const key = kids.find((c) => c.name === k && c.ns === e.ns && c.children === undefined);
    if (!key) return false;
    const kd = e.children?.find((c) => c.t === 'one' && c.el.name === k);
    const canon = kd && kd.t === 'one' && kd.el.leaf ? kd.el.leaf.canon : v;
    return canonA(key) === canon || key.text === v;
  });
}

function keyPointerOf(list: { pointer: string; keys: string[]; ns: string }, a: ANode): string {
  const values = list.keys.map((k) => (a.children ?? []).find((c) => c.name === k && c.ns === list.ns)?.text ?? '?');
  return `${list.pointer}/${escapeToken(values.join(','))}`;
}

/** An actual subtree as YAML-like JSON, for the `before` of a change (repeated elements become arrays). */
function yamlOf(nodes: ANode[]): Json {
  const out: Record<string, Json> = {};
  const repeated = new Set<string>();
  for (const n of nodes) {
    const v: Json = n.children ? yamlOf(n.children) : (n.text ?? '');
    // Device element names are data: defined as own properties, never through a setter such as __proto__.
    const existing = Object.prototype.hasOwnProperty.call(out, n.name) ? out[n.name] : undefined;
    const value: Json = existing === undefined ? v : repeated.has(n.name) ? [...(existing as Json[]), v] : [existing, v];
    if (existing !== undefined) repeated.add(n.name);
    Object.defineProperty(out, n.name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function yamlOfNode(n: ANode): Json {
  return n.children ? yamlOf(n.children) : (n.text ?? '');
}

/** Whether anything the resource owns is on the device (undefined actual = absent). */
export function ownsSomething(d: Desired, nodes: ANode[]): boolean {
  if (d.mode === 'replace') {
    return d.top.some((c) => {
      if (c.t !== 'one') return false;
      return nodes.some((a) => same(a, c.el.ns, c.el.name) && (c.el.leaf !== undefined || (a.children?.length ?? 0) > 0 || (c.el.children?.length ?? 0) === 0));
    });
  }
  return d.top.some((c) => presentChild(c, nodes));
}

function presentChild(c: DChild, nodes: ANode[]): boolean {
  if (c.t === 'one') {
    const a = nodes.find((n) => same(n, c.el.ns, c.el.name));
    if (!a) return false;
    if (c.el.leaf || !c.el.children || c.el.children.length === 0) return true;
    return c.el.children.some((k) => presentChild(k, a.children ?? []));
  }
  if (c.t === 'list') {
    return c.entries.some((e) => {
      const a = nodes.find((n) => same(n, e.ns, e.name) && entryMatches(e, n));
      if (!a) return false;
      const own = (e.children ?? []).filter((k) => !isKey(e, k));
      return own.length === 0 || own.some((k) => presentChild(k, a.children ?? []));
    });
  }
  const have = new Set(nodes.filter((n) => same(n, c.ns, c.name)).map(canonA));
  return c.values.some((v) => have.has(v.canon));
}

// ---------------------------------------------------------------- diff

/**
 * Pure: desired vs actual, canonical and namespace-aware; [] means converged.
 * Three-way with `released` (what the last applied spec named and this one
 * does not): whatever of it the device still holds is to be removed.
 */
export function diffConfig(d: Desired, actual: ConfigActual | undefined, released?: { part: Desired; created: ReadonlySet<string> | undefined }): Change[] {
  const changes: Change[] = [];
  if (released) removeEdit(released.part, actual?.released ?? [], 'remove', released.created, changes);
  diffChildren(d.top, actual?.nodes ?? [], d.mode === 'replace' ? 'replace-below' : 'merge', changes, '/config', true);
  return changes;
}

type Strictness = 'merge' | 'replace-below';

function diffChildren(desired: DChild[], actual: ANode[], strict: Strictness, out: Change[], parentPointer: string, top: boolean, entry?: DElem): void {
  const claimed = new Set<ANode>();
  for (const c of desired) {
    if (entry && isKey(entry, c)) {
      for (const a of actual) if (c.t === 'one' && same(a, c.el.ns, c.el.name)) claimed.add(a);
      continue;
    }
    if (c.t === 'one') {
      const a = actual.find((n) => same(n, c.el.ns, c.el.name));
      if (a) claimed.add(a);
      // In replace mode only the top elements' contents are owned whole; the top elements themselves are compared below.
      diffElement(c.el, a, top && strict === 'replace-below' ? 'replace-below' : strict, out);
    } else if (c.t === 'list') {
      const group = actual.filter((n) => same(n, c.ns, c.name));
      for (const e of c.entries) {
        const a = group.find((n) => entryMatches(e, n));
        if (a) {
          claimed.add(a);
          diffChildren(e.children ?? [], a.children ?? [], strict, out, e.pointer, false, e);
        } else {
          out.push({ path: e.pointer, before: undefined, after: e.yaml, note: 'list entry to create' });
        }
      }
      if (strict === 'replace-below') {
        for (const a of group) {
          if (claimed.has(a)) continue;
          claimed.add(a);
          out.push({ path: keyPointerOf(c, a), before: yamlOfNode(a), after: undefined, note: 'list entry not in spec (replace mode removes it)' });
        }
      }
    } else {
      const group = actual.filter((n) => same(n, c.ns, c.name));
      for (const a of group) claimed.add(a);
      const have = new Set(group.map(canonA));
      const want = new Set(c.values.map((v) => v.canon));
      const missing = c.values.filter((v) => !have.has(v.canon)).map((v) => v.text);
      const extra = strict === 'replace-below' ? group.filter((a) => !want.has(canonA(a))).map((a) => a.text ?? '') : [];
      if (missing.length > 0 || extra.length > 0) {
        const notes = [missing.length > 0 ? `to add: ${missing.join(', ')}` : '', extra.length > 0 ? `to remove: ${extra.join(', ')}` : ''].filter((s) => s !== '');
        // Sets: shown sorted, so the same difference always reads the same.
        out.push({ path: c.pointer, before: group.map((a) => a.text ?? '').sort(), after: c.values.map((v) => v.text).sort(), note: `leaf-list ${notes.join('; ')}` });
      }
    }
  }
  if (strict === 'replace-below' && !top) {
    for (const a of actual) {
      if (claimed.has(a)) continue;
      out.push({ path: `${parentPointer}/${escapeToken(a.name)}`, before: yamlOfNode(a), after: undefined, note: 'not in spec (replace mode removes it)' });
    }
  }
}

function diffElement(e: DElem, a: ANode | undefined, strict: Strictness, out: Change[]): void {
  if (e.leaf) {
    if (!a) out.push({ path: e.pointer, before: undefined, after: e.yaml, note: 'leaf to set' });
    else if (a.children) out.push({ path: e.pointer, before: yamlOfNode(a), after: e.yaml, note: 'a container on the device, a leaf in spec' });
    else if (canonA(a) !== e.leaf.canon) out.push({ path: e.pointer, before: a.text ?? '', after: e.yaml, note: `${JSON.stringify(a.text ?? '')} -> ${JSON.stringify(e.leaf.text)}` });
    return;
  }
  const kids = e.children ?? [];
  if (!a) {
    if (kids.length === 0) out.push({ path: e.pointer, before: undefined, after: e.yaml, note: 'element to create' });
    else diffChildren(kids, [], strict, out, e.pointer, false);
    return;
  }
  diffChildren(kids, a.children ?? [], strict, out, e.pointer, false);
}

// ---------------------------------------------------------------- removal

/**
 * The `<config>` content that removes exactly what the resource owns, given
 * what the device holds now (read with `readFilter(d, true)`). Replace mode:
 * every top element. Merge mode: the named leaves, leaf-list values and empty
 * elements; a container or list entry whole when Plumb created it (`created`)
 * and everything in it is named by the resource, else only what it names.
 * `created` undefined (state from before Plumb recorded it): list entries
 * whose every child is named go whole, containers never. Empty when nothing
 * owned is present. `removed` collects one Change per removal, for plans.
 */
export function removeEdit(d: Desired, nodes: ANode[], op: RemoveOp = 'remove', created?: ReadonlySet<string>, removed?: Change[]): XmlElement[] {
  if (d.mode === 'replace') {
    return d.top.flatMap((c) => {
      if (c.t !== 'one') return [];
      const a = nodes.find((n) => same(n, c.el.ns, c.el.name));
      if (!a) return [];
      removed?.push(removal(c.el.pointer, yamlOfNode(a)));
      return [xel(c.el.ns, c.el.name, { op })];
    });
  }
  return d.top.flatMap((c) => removeChild(c, nodes, op, { created, removed }));
}

/**
 * `remove` (base:1.1: no error when absent). A base:1.0 session only knows
 * `delete` (RFC 4741), which is as good here: only what was just read under
 * the lock is removed.
 */
type RemoveOp = 'remove' | 'delete';

interface RemoveContext {
  created: ReadonlySet<string> | undefined;
  removed: Change[] | undefined;
}

function removal(pointer: string, before: Json, note = 'no longer in spec: Plumb set it, so it is removed'): Change {
  return { path: pointer, before, after: undefined, note };
}

function removeChild(c: DChild, nodes: ANode[], op: RemoveOp, ctx: RemoveContext): XmlElement[] {
  if (c.t === 'one') {
    const a = nodes.find((n) => same(n, c.el.ns, c.el.name));
    if (!a) return [];
    const e = c.el;
    const kids = e.children ?? [];
    const empty = !e.leaf && kids.length === 0;
    if (e.leaf || e.whole || (ctx.created?.has(e.pointer) === true && fullyOwned(kids, a)) || (empty && (a.children?.length ?? 0) === 0)) {
      ctx.removed?.push(removal(e.pointer, yamlOfNode(a)));
      return [xel(e.ns, e.name, { op, declared: e.declared })];
    }
    if (empty) return []; // an empty element named, but someone else has put things in it
    const inner = kids.flatMap((k) => removeChild(k, a.children ?? [], op, ctx));
    return inner.length > 0 ? [xel(e.ns, e.name, { declared: e.declared, children: inner })] : [];
  }
  if (c.t === 'list') {
    return c.entries.flatMap((e) => {
      const a = nodes.find((n) => same(n, e.ns, e.name) && entryMatches(e, n));
      if (!a) return [];
      const mine = ctx.created === undefined || ctx.created.has(e.pointer);
      if (e.whole || (mine && fullyOwned(e.children ?? [], a))) {
        ctx.removed?.push(removal(e.pointer, yamlOfNode(a)));
        return [withIdentity(xel(e.ns, e.name, { op, declared: e.declared, children: keyElements(e) }), entrySuffix(e))];
      }
      const inner = (e.children ?? []).filter((k) => !isKey(e, k)).flatMap((k) => removeChild(k, a.children ?? [], op, ctx));
      return inner.length > 0 ? [withIdentity(xel(e.ns, e.name, { declared: e.declared, children: [...keyElements(e), ...inner] }), entrySuffix(e))] : [];
    });
  }
  const have = new Map(nodes.filter((n) => same(n, c.ns, c.name)).map((n) => [canonA(n), n.text ?? '']));
  const gone = c.values.filter((v) => have.has(v.canon));
  if (gone.length > 0) ctx.removed?.push(removal(c.pointer, gone.map((v) => have.get(v.canon)!).sort(), `leaf-list to remove: ${gone.map((v) => v.text).join(', ')} (no longer in spec: Plumb set them)`));
  return gone.map((v) => withIdentity(xel(c.ns, c.name, { text: v.text, declared: c.declared, op }), `=${v.canon}`));
}

// ---------------------------------------------------------------- three-way: what Plumb set and no longer wants

/**
 * What `prev` (the spec Plumb last applied) names that `next` does not: leaves,
 * list entries, leaf-list values, empty elements, and a replace-mode top
 * element whole. Removing it takes away what Plumb set and the spec dropped;
 * what someone else set is named by neither and stays. Undefined: nothing dropped.
 */
export function releasedPart(prev: Desired, next: Desired): Desired | undefined {
  const top = subtract(prev.top, next.top, prev.mode === 'replace');
  return top.length > 0 ? { mode: 'merge', datastore: prev.datastore, top } : undefined;
}

function subtract(prev: DChild[], next: DChild[], wholeTop: boolean, entry?: DElem): DChild[] {
  const out: DChild[] = [];
  for (const c of prev) {
    if (entry && isKey(entry, c)) {
      out.push(c); // a key identifies the entry; it is never released on its own
      continue;
    }
    if (c.t === 'one') {
      const n = next.find((x): x is Extract<DChild, { t: 'one' }> => x.t === 'one' && x.el.ns === c.el.ns && x.el.name === c.el.name);
      if (!n || Boolean(n.el.leaf) !== Boolean(c.el.leaf)) {
        out.push(wholeTop ? { t: 'one', el: { ...c.el, whole: true } } : c);
        continue;
      }
      if (c.el.leaf || (c.el.children ?? []).length === 0) continue; // still named: its value is the new spec's business
      const kids = subtract(c.el.children ?? [], n.el.children ?? [], false);
      if (kids.length > 0) out.push({ t: 'one', el: { ...c.el, children: kids } });
    } else if (c.t === 'list') {
      const n = next.find((x): x is Extract<DChild, { t: 'list' }> => x.t === 'list' && x.ns === c.ns && x.name === c.name);
      const entries: DElem[] = [];
      for (const e of c.entries) {
        const m = n?.entries.find((x) => sameKeys(x, e));
        if (!m) {
          entries.push(e);
          continue;
        }
        const kids = subtract(e.children ?? [], m.children ?? [], false, e);
        if (kids.some((k) => !isKey(e, k))) entries.push({ ...e, children: kids });
      }
      if (entries.length > 0) out.push({ ...c, entries });
    } else {
      const n = next.find((x): x is Extract<DChild, { t: 'leaf-list' }> => x.t === 'leaf-list' && x.ns === c.ns && x.name === c.name);
      const keep = new Set((n?.values ?? []).map((v) => v.canon));
      const values = c.values.filter((v) => !keep.has(v.canon));
      if (values.length > 0) out.push({ ...c, values });
    }
  }
  return out;
}

/**
 * What a resource owns as one merge-mode tree: a replace-mode spec's top
 * elements become `whole`; with `other`, the union of both (a deletion takes
 * away what the last applied spec had as well as the last accepted one).
 */
export function ownedTree(d: Desired, other?: Desired): Desired {
  const own = (x: Desired): DChild[] => (x.mode === 'replace' ? x.top.map((c) => (c.t === 'one' ? { t: 'one' as const, el: { ...c.el, whole: true } } : c)) : x.top);
  return { mode: 'merge', datastore: d.datastore, top: other ? unite(own(d), own(other)) : own(d) };
}

function unite(a: DChild[], b: DChild[]): DChild[] {
  const out = [...a];
  for (const c of b) {
    const i = out.findIndex((x) => x.t === c.t && (x.t === 'one' ? x.el.ns === (c as typeof x).el.ns && x.el.name === (c as typeof x).el.name : x.ns === (c as { ns: string }).ns && x.name === (c as { name: string }).name));
    if (i < 0) {
      out.push(c);
      continue;
    }
    const x = out[i]!;
    if (x.t === 'one' && c.t === 'one') {
      if (x.el.leaf || c.el.leaf) continue;
      out[i] = { t: 'one', el: { ...x.el, whole: Boolean(x.el.whole || c.el.whole), children: unite(x.el.children ?? [], c.el.children ?? []) } };
    } else if (x.t === 'list' && c.t === 'list') {
      const entries = [...x.entries];
      for (const e of c.entries) {
        const j = entries.findIndex((y) => sameKeys(y, e));
        if (j < 0) entries.push(e);
        else entries[j] = { ...entries[j]!, children: unite(entries[j]!.children ?? [], e.children ?? []) };
      }
      out[i] = { ...x, entries };
    } else if (x.t === 'leaf-list' && c.t === 'leaf-list') {
      const seen = new Set(x.values.map((v) => v.canon));
      out[i] = { ...x, values: [...x.values, ...c.values.filter((v) => !seen.has(v.canon))] };
    }
  }
  return out;
}

/**
 * A filter selecting the elements at `pointers` whole (an empty selection
 * node, or a list entry by its keys alone): whether a container exists even
 * when none of what the resource names is in it yet.
 */
export function existenceFilter(d: Desired, pointers: ReadonlySet<string>): XmlElement[] {
  const sel = (children: DChild[]): XmlElement[] =>
    children.flatMap((c) => {
      if (c.t === 'one') {
        if (c.el.leaf) return [];
        if (pointers.has(c.el.pointer)) return [xel(c.el.ns, c.el.name, { declared: c.el.declared })];
        const inner = sel(c.el.children ?? []);
        return inner.length > 0 ? [xel(c.el.ns, c.el.name, { declared: c.el.declared, children: inner })] : [];
      }
      if (c.t === 'list') {
        return c.entries.flatMap((e) => {
          if (pointers.has(e.pointer)) return [xel(e.ns, e.name, { declared: e.declared, children: keyElements(e) })];
          const inner = sel((e.children ?? []).filter((k) => !isKey(e, k)));
          return inner.length > 0 ? [xel(e.ns, e.name, { declared: e.declared, children: [...keyElements(e), ...inner] })] : [];
        });
      }
      return [];
    });
  return sel(d.top);
}

function sameKeys(a: DElem, b: DElem): boolean {
  const ka = a.keys ?? [];
  const kb = b.keys ?? [];
  return ka.length === kb.length && ka.every(([k, v], i) => kb[i]![0] === k && kb[i]![1] === v);
}

/**
 * The containers and list entries of `d` that `nodes` (read with readFilter(d,
 * true) beforehand) does not hold: the write creates them, so they are
 * Plumb's to remove with the resource. Replace mode owns its top elements whole.
 */
export function createdBy(d: Desired, nodes: ANode[]): string[] {
  const out: string[] = [];
  if (d.mode === 'replace') return out;
  const all = (e: DElem): void => {
    if (e.leaf) return;
    out.push(e.pointer);
    for (const k of e.children ?? []) kid(k);
  };
  const kid = (c: DChild): void => {
    if (c.t === 'one') all(c.el);
    else if (c.t === 'list') c.entries.forEach(all);
  };
  const walk = (children: DChild[], have: ANode[]): void => {
    for (const c of children) {
      if (c.t === 'one') {
        if (c.el.leaf) continue;
        const a = have.find((n) => same(n, c.el.ns, c.el.name));
        if (a) walk(c.el.children ?? [], a.children ?? []);
        else all(c.el);
      } else if (c.t === 'list') {
        for (const e of c.entries) {
          const a = have.find((n) => same(n, e.ns, e.name) && entryMatches(e, n));
          if (a) walk(e.children ?? [], a.children ?? []);
          else all(e);
        }
      }
    }
  };
  walk(d.top, nodes);
  return out;
}

/** Every container and list-entry pointer `d` names (a memo's created list keeps only these). */
export function containerPointers(d: Desired): Set<string> {
  const out = new Set<string>();
  const visit = (children: DChild[]): void => {
    for (const c of children) {
      if (c.t === 'one' && !c.el.leaf) {
        out.add(c.el.pointer);
        visit(c.el.children ?? []);
      } else if (c.t === 'list') {
        for (const e of c.entries) {
          out.add(e.pointer);
          visit(e.children ?? []);
        }
      }
    }
  };
  visit(d.top);
  return out;
}

/** Whether every child of the actual node is named by the desired children (recursively). */
function fullyOwned(desired: DChild[], a: ANode): boolean {
  return (a.children ?? []).every((k) => {
    const c = desired.find((d) => (d.t === 'one' ? same(k, d.el.ns, d.el.name) : same(k, d.ns, d.name)));
    if (!c) return false;
    if (c.t === 'one') return c.el.leaf !== undefined || fullyOwned(c.el.children ?? [], k);
    if (c.t === 'list') {
      const e = c.entries.find((x) => entryMatches(x, k));
      return e !== undefined && fullyOwned(e.children ?? [], k);
    }
    return c.values.some((v) => v.canon === canonA(k));
  });
}

// ---------------------------------------------------------------- combining edits

/** Identity of a built element among its siblings: `{ns}name`, plus key values (entries) or the value (leaf-list items). */
const IDENTITY = new WeakMap<XmlElement, string>();

function withIdentity(el: XmlElement, suffix: string): XmlElement {
  IDENTITY.set(el, `{${el.ns}}${el.name}${suffix}`);
  return el;
}

function identityOf(el: XmlElement): string {
  return IDENTITY.get(el) ?? `{${el.ns}}${el.name}`;
}

const entrySuffix = (e: DElem): string => `[${(e.keys ?? []).map(([k, v]) => `${k}=${v}`).join(',')}]`;

/**
 * Merges several resources' edits into one `<config>` (a running-only device
 * gets the whole transaction as one edit-config with rollback-on-error).
 * Elements are matched by namespace, name and key values (list entries) or
 * value (leaf-list items); two resources writing the same leaf differently,
 * or one removing or replacing what another writes, is a conflict.
 */
export function combineEdits(edits: Array<{ id: string; elements: XmlElement[] }>): XmlElement[] {
  const out: XmlElement[] = [];
  const owner = new WeakMap<XmlElement, string>();
  for (const { id, elements } of edits) for (const el of elements) mergeInto(out, el, id, owner, '');
  return out;
}

function mergeInto(siblings: XmlElement[], el: XmlElement, id: string, owner: WeakMap<XmlElement, string>, path: string): void {
  const here = `${path}/${el.name}`;
  const match = siblings.find((s) => identityOf(s) === identityOf(el));
  if (!match) {
    siblings.push(el);
    markOwner(el, id, owner);
    return;
  }
  const opA = match.attrs[attrKey(NC_NS, 'operation')]?.value;
  const opB = el.attrs[attrKey(NC_NS, 'operation')]?.value;
  const leafA = match.children.length === 0;
  const leafB = el.children.length === 0;
  if (!opA && !opB && leafA && leafB && match.text === el.text) return; // the same value from both (a shared key leaf)
  if (opA || opB || leafA || leafB) {
    throw new SpecError(`${id} and ${owner.get(match) ?? 'another resource'} both write ${here} in one transaction; an element has one owner`);
  }
  for (const [p, uri] of Object.entries(el.prefixes)) match.prefixes[p] = uri;
  for (const c of el.children) mergeInto(match.children, c, id, owner, here);
}

function markOwner(el: XmlElement, id: string, owner: WeakMap<XmlElement, string>): void {
  owner.set(el, id);
  for (const c of el.children) markOwner(c, id, owner);
}
