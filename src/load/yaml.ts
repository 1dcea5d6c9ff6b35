import { isUtf8 } from 'node:buffer';
import { constructFromEvents, EVENT_ID, getScalarValue, JSON_SCHEMA, parseEvents, SCALAR_STYLE, YAMLException, type Event } from 'js-yaml';
import { joinPointer } from '../util/json-pointer.js';
import type { Diagnostic, Position } from './types.js';

export interface YamlLimits {
  /** Files larger than this are refused before parsing. */
  maxFileBytes: number;
  /** Nodes a document may expand to, counting every alias as a copy of its anchor (alias bombs). */
  maxNodes: number;
  /** Nesting depth. */
  maxDepth: number;
}

export const DEFAULT_YAML_LIMITS: YamlLimits = { maxFileBytes: 1024 * 1024, maxNodes: 100_000, maxDepth: 64 };

/** Keys that could reach Object.prototype in code that copies config objects around. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const SHORTEST_FORBIDDEN_KEY = Math.min(...[...FORBIDDEN_KEYS].map((k) => k.length));

/**
 * Whether a key scalar could decode to a forbidden key, without decoding it (one string per
 * key of every document, otherwise). Decoding a plain or quoted scalar only ever shortens it
 * (escapes, folded line breaks, `''`), so a shorter source cannot; block scalars are decoded.
 */
function mayDecodeToForbiddenKey(ev: Extract<Event, { type: typeof EVENT_ID.SCALAR }>): boolean {
  if (ev.style === SCALAR_STYLE.LITERAL_BLOCK || ev.style === SCALAR_STYLE.FOLDED_BLOCK) return true;
  return ev.valueStart >= 0 && ev.valueEnd - ev.valueStart >= SHORTEST_FORBIDDEN_KEY;
}

/** Where things are in one document. */
export interface DocumentPositions {
  /** Where the document's root node starts. */
  position: Position;
  /** Where the node at a JSON pointer starts (the key, with `key: true`, for mapping entries). Falls back to the nearest ancestor. */
  positionOf(pointer: string, options?: { key?: boolean }): Position;
  /** The source text of the scalar at exactly `pointer` (quotes and escapes as written), and where an offset in it is; undefined for other nodes. */
  scalarSource?(pointer: string): { raw: string; at(offset: number): Position } | undefined;
}

export interface YamlDocument extends DocumentPositions {
  /** 0-based index of the document in its file. */
  index: number;
  value: unknown;
  /** The same lookups without the value: what to keep for later diagnostics once the value is used. */
  positions: DocumentPositions;
}

export interface YamlFile {
  documents: YamlDocument[];
  diagnostics: Diagnostic[];
}

export interface ParseYamlOptions {
  /** Copy long strings out of the file's text (default true); false when the values are copied anyway (posted from a worker). */
  ownStrings?: boolean;
}

/**
 * Parses a multi-document YAML file with the JSON schema (no merge keys, no
 * `yes`/`no` booleans, `0644` stays a string), refusing duplicate keys, prototype
 * keys and alias bombs. Problems come back as diagnostics with file:line:col.
 * Give the raw bytes when there are any: only they tell invalid UTF-8 from a real U+FFFD.
 */
export function parseYaml(input: string | Buffer, file: string, limits: YamlLimits = DEFAULT_YAML_LIMITS, options: ParseYamlOptions = {}): YamlFile {
  const text = typeof input === 'string' ? input : input.toString('utf8');
  const lines = lineIndex(text);
  const bom = text.startsWith('\uFEFF') ? 1 : 0; // invisible in editors: columns on line 1 don't count it
  const at = (offset: number): Position => positionAt(file, lines, offset, bom);
  const fail = (offset: number, message: string): YamlFile => ({ documents: [], diagnostics: [{ severity: 'error', ...at(offset), message }] });

  if ((typeof input === 'string' || !isUtf8(input)) && text.includes('\uFFFD')) return fail(text.indexOf('\uFFFD'), 'file is not valid UTF-8');

  let events: Event[];
  try {
    events = parseEvents(text, { filename: file, maxDepth: limits.maxDepth });
  } catch (err) {
    return { documents: [], diagnostics: [yamlErrorDiagnostic(err, file, text, at)] };
  }

  // Walk the events once: document boundaries, node counts with alias expansion, forbidden keys.
  const docStarts: number[] = [];
  const guard = checkEvents(events, text, limits);
  if (guard) return fail(guard.offset, guard.message);
  for (let i = 0; i < events.length; i++) {
    if (events[i]!.type === EVENT_ID.DOCUMENT) {
      docStarts.push(i);
      i = skipNode(events, i); // DOCUMENT ... POP
    }
  }

  let values: unknown[];
  try {
    values = constructFromEvents(events, { source: text, filename: file, schema: JSON_SCHEMA, maxAliases: -1 });
  } catch (err) {
    return { documents: [], diagnostics: [yamlErrorDiagnostic(err, file, text, at)] };
  }

  if (options.ownStrings !== false) for (const value of values) ownStrings(value);
  const documents: YamlDocument[] = [];
  const source: PositionSource = { text, file, bom, maxDepth: limits.maxDepth };
  values.forEach((value, index) => {
    const start = docStarts[index];
    if (start === undefined) return;
    const rootEvent = events[start + 1];
    const rootOffset = rootEvent && rootEvent.type !== EVENT_ID.POP ? Math.max(0, nodeStart(rootEvent)) : 0;
    documents.push(yamlDocument(source, index, value, start + 1, rootOffset, at(rootOffset)));
  });
  return { documents, diagnostics: [] };
}

/**
 * Gives every long string value its own storage. The parser's strings are slices
 * of the whole file's text (V8 slices strings of 13+ characters), so one kept
 * value would keep its file's text alive: 20 MB for a 100k-resource repo held by
 * the daemon. A JSON round trip is the cheap way to a flat copy (concatenating and
 * slicing again would still give a slice).
 */
function ownStrings(value: unknown): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'string') value[i] = ownString(v);
      else ownStrings(v);
    }
    return;
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    const v = o[key];
    if (typeof v !== 'string') ownStrings(v);
    else if (v.length >= OWN_STRING_LENGTH) Object.defineProperty(o, key, { value: ownString(v) }); // (defined: a `__proto__` key stays a key)
  }
}

/** V8 copies shorter slices. */
const OWN_STRING_LENGTH = 13;

function ownString(text: string): string {
  return text.length >= OWN_STRING_LENGTH ? (JSON.parse(JSON.stringify(text)) as string) : text;
}

/** What a file's documents keep for positions: the text, not its (much larger) events or line index. */
interface PositionSource {
  text: string;
  file: string;
  bom: number;
  maxDepth: number;
  /** Filled on the first lookup of any document of the file: the events again, and the line starts. */
  parsed?: { events: Event[]; lines: number[] };
}

/**
 * One document and its position lookup. Built outside `parseYaml` on purpose: a
 * closure there would share its scope, and with it the whole event array of the
 * file, for as long as the document lives. Positions are only needed for
 * diagnostics, so the lookup re-parses the text on first use.
 */
function yamlDocument(source: PositionSource, index: number, value: unknown, rootIndex: number, rootOffset: number, position: Position): YamlDocument {
  let positions: Map<string, { start: number; keyStart?: number }> | undefined;
  const positionOf = (pointer: string, options?: { key?: boolean }): Position => {
    source.parsed ??= { events: parseEvents(source.text, { filename: source.file, maxDepth: source.maxDepth }), lines: lineIndex(source.text) };
    const { events, lines } = source.parsed;
    positions ??= collectPositions(events, source.text, rootIndex);
    const at = (offset: number): Position => positionAt(source.file, lines, offset, source.bom);
    let p = pointer;
    for (;;) {
      const found = positions.get(p);
      if (found) return at(options?.key && found.keyStart !== undefined ? found.keyStart : found.start);
      if (p === '') return at(rootOffset);
      p = p.slice(0, p.lastIndexOf('/'));
    }
  };
  const scalarSource = (pointer: string): { raw: string; at(offset: number): Position } | undefined => {
    positionOf(pointer); // (fills source.parsed and positions)
    const found = positions!.get(pointer);
    const ev = found && source.parsed!.events.find((e) => e.type === EVENT_ID.SCALAR && nodeStart(e) === found.start);
    if (!ev || ev.type !== EVENT_ID.SCALAR || ev.valueStart < 0) return undefined;
    const { lines } = source.parsed!;
    return { raw: source.text.slice(ev.valueStart, ev.valueEnd), at: (offset) => positionAt(source.file, lines, ev.valueStart + offset, source.bom) };
  };
  return { index, value, position, positionOf, scalarSource, positions: { position, positionOf, scalarSource } };
}

/**
 * Position lookups for the documents of a file parsed elsewhere (in a worker): nothing
 * is parsed until a diagnostic asks for a position, then the file's events once for all
 * its documents. `position` is where document `index`'s root starts, as parseYaml gave it.
 */
export function filePositions(input: string | Buffer, file: string, maxDepth: number): (index: number, position: Position) => DocumentPositions {
  let source: PositionSource | undefined;
  const documentStarts: number[] = [];
  const documentOf = (index: number, position: Position): DocumentPositions => {
    if (!source) {
      const text = typeof input === 'string' ? input : input.toString('utf8');
      source = { text, file, bom: text.startsWith('\uFEFF') ? 1 : 0, maxDepth };
      source.parsed = { events: parseEvents(text, { filename: file, maxDepth }), lines: lineIndex(text) };
      const events = source.parsed.events;
      for (let i = 0; i < events.length; i++) {
        if (events[i]!.type === EVENT_ID.DOCUMENT) {
          documentStarts.push(i);
          i = skipNode(events, i);
        }
      }
    }
    const events = source.parsed!.events;
    const start = documentStarts[index]!;
    const rootEvent = events[start + 1];
    const rootOffset = rootEvent && rootEvent.type !== EVENT_ID.POP ? Math.max(0, nodeStart(rootEvent)) : 0;
    return yamlDocument(source, index, undefined, start + 1, rootOffset, position);
  };
  return (index, position) => new LazyPositions(documentOf, index, position);
}

/** One object per document (a load keeps 100k of these until its cross-file checks are done), no closures. */
class LazyPositions implements DocumentPositions {
  readonly position: Position;
  readonly #index: number;
  #of: ((index: number, position: Position) => DocumentPositions) | undefined;
  #doc: DocumentPositions | undefined;

  constructor(of: (index: number, position: Position) => DocumentPositions, index: number, position: Position) {
    this.#of = of;
    this.#index = index;
    this.position = position;
  }

  positionOf(pointer: string, options?: { key?: boolean }): Position {
    this.#doc ??= this.#of!(this.#index, this.position);
    this.#of = undefined;
    return this.#doc.positionOf(pointer, options);
  }
}

function yamlErrorDiagnostic(err: unknown, file: string, text: string, at: (offset: number) => Position): Diagnostic {
  if (err instanceof YAMLException) {
    const mark = err.mark as { line?: number; column?: number; position?: number } | undefined;
    const reason = (err as YAMLException & { reason?: string }).reason ?? err.message.split('\n')[0] ?? 'invalid YAML';
    const unclosed = mark?.position !== undefined && /deficient indentation|unexpected end of the stream/.test(reason) ? findUnclosed(text, mark.position) : undefined;
    if (unclosed) return { severity: 'error', ...at(unclosed.offset), message: `YAML: ${unclosed.message} (the parser gave up at line ${(mark?.line ?? 0) + 1}: ${reason})` };
    const hint = /duplicated mapping key/.test(reason) ? ' (each key may appear once per mapping)' : '';
    return { severity: 'error', file, line: (mark?.line ?? 0) + 1, col: (mark?.column ?? 0) + 1, message: `YAML: ${reason}${hint}` };
  }
  return { severity: 'error', file, line: 1, col: 1, message: `YAML: ${(err as Error).message ?? String(err)}` };
}

const UNCLOSED = /within a (flow collection|double quoted scalar|single quoted scalar)/;

/**
 * js-yaml reports an unclosed `{`, `[` or quote where it gives up, often a line
 * later as "deficient indentation". When the text up to that point ends inside
 * one, find where it was opened (re-parsing prefixes; only on the error path).
 */
function findUnclosed(text: string, errorOffset: number): { offset: number; message: string } | undefined {
  const openAt = (end: number): string | undefined => {
    try {
      parseEvents(text.slice(0, end).trimEnd(), {}); // trimmed: a prefix ending in a line break fails on indentation instead
      return undefined;
    } catch (err) {
      return UNCLOSED.exec((err as YAMLException).reason ?? '')?.[1];
    }
  };
  const what = openAt(errorOffset);
  if (!what) return undefined;
  // Back line by line to the line the construct opens on, then narrow down within it.
  let hi = errorOffset;
  let lo = text.lastIndexOf('\n', errorOffset - 2) + 1;
  for (let lines = 0; openAt(lo) === what; lines++) {
    if (lo === 0 || lines > 50) return undefined;
    hi = lo;
    lo = text.lastIndexOf('\n', lo - 2) + 1;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (openAt(mid) === what) hi = mid;
    else lo = mid;
  }
  const opener = text[lo];
  if (what === 'flow collection') return { offset: lo, message: `this "${opener}" is never closed (add the matching "${opener === '[' ? ']' : '}'}")` };
  return { offset: lo, message: `this quoted string is never closed (add the closing ${opener})` };
}

function nodeStart(ev: Event): number {
  switch (ev.type) {
    case EVENT_ID.MAPPING:
    case EVENT_ID.SEQUENCE:
      return ev.anchorStart >= 0 ? Math.min(ev.anchorStart - 1, ev.start) : ev.start;
    case EVENT_ID.SCALAR:
      // An empty value has no offset of its own; a block scalar's starts at its first line's indentation.
      if (ev.valueStart < 0) return ev.anchorStart >= 0 ? ev.anchorStart - 1 : ev.tagStart;
      if (ev.style === SCALAR_STYLE.LITERAL_BLOCK || ev.style === SCALAR_STYLE.FOLDED_BLOCK) return ev.valueStart + Math.max(0, ev.indent);
      return ev.style === SCALAR_STYLE.SINGLE_QUOTED || ev.style === SCALAR_STYLE.DOUBLE_QUOTED ? ev.valueStart - 1 : ev.valueStart; // at the opening quote
    case EVENT_ID.ALIAS:
      return Math.max(0, ev.anchorStart - 1);
    default:
      return 0;
  }
}

/** Index after the node starting at `i` (a DOCUMENT/MAPPING/SEQUENCE runs to its POP). */
function skipNode(events: Event[], i: number): number {
  const ev = events[i]!;
  if (ev.type !== EVENT_ID.MAPPING && ev.type !== EVENT_ID.SEQUENCE && ev.type !== EVENT_ID.DOCUMENT) return i;
  let depth = 0;
  for (let j = i; j < events.length; j++) {
    const t = events[j]!.type;
    if (t === EVENT_ID.MAPPING || t === EVENT_ID.SEQUENCE || t === EVENT_ID.DOCUMENT) depth++;
    else if (t === EVENT_ID.POP && --depth === 0) return j;
  }
  return events.length - 1;
}

/**
 * Counts nodes per document with every alias expanded to the size of its anchor,
 * so `[*a, *a, *a, ...]` nested ten deep is caught before anything walks it, and
 * refuses keys that would touch object prototypes.
 */
function checkEvents(events: Event[], source: string, limits: YamlLimits): { offset: number; message: string } | undefined {
  const anchorSize = new Map<string, number>();
  // Open collections: the expanded count when they started, their anchor, and how many children they have seen.
  const stack: Array<{ startCount: number; anchor: string | undefined; mapping: boolean; children: number }> = [];
  let expanded = 0;
  const anchorOf = (ev: { anchorStart: number; anchorEnd: number }): string | undefined =>
    ev.anchorStart >= 0 ? source.slice(ev.anchorStart, ev.anchorEnd) : undefined;
  /** Registers a new child of the innermost collection; true when it is a mapping key. */
  const startChild = (): boolean => {
    const parent = stack[stack.length - 1];
    if (!parent) return false;
    const isKey = parent.mapping && parent.children % 2 === 0;
    parent.children++;
    return isKey;
  };
  for (const ev of events) {
    switch (ev.type) {
      case EVENT_ID.DOCUMENT:
        expanded = 0;
        anchorSize.clear();
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE:
        startChild();
        stack.push({ startCount: expanded, anchor: anchorOf(ev), mapping: ev.type === EVENT_ID.MAPPING, children: 0 });
        expanded += 1;
        break;
      case EVENT_ID.SCALAR: {
        if (startChild() && mayDecodeToForbiddenKey(ev)) {
          const key = getScalarValue(source, ev);
          if (FORBIDDEN_KEYS.has(key)) return { offset: nodeStart(ev), message: `key "${key}" is not allowed (it could alter object prototypes); rename it` };
        }
        expanded += 1;
        const anchor = anchorOf(ev);
        if (anchor !== undefined) anchorSize.set(anchor, 1);
        break;
      }
      case EVENT_ID.ALIAS:
        startChild();
        expanded += anchorSize.get(source.slice(ev.anchorStart, ev.anchorEnd)) ?? 1;
        break;
      case EVENT_ID.POP: {
        const open = stack.pop();
        if (open?.anchor !== undefined) anchorSize.set(open.anchor, expanded - open.startCount);
        break;
      }
    }
    if (expanded > limits.maxNodes) {
      const offset = ev.type === EVENT_ID.ALIAS ? Math.max(0, ev.anchorStart - 1) : ev.type === EVENT_ID.SCALAR ? ev.valueStart : 0;
      return { offset, message: `document expands to more than ${limits.maxNodes} nodes through aliases (an alias bomb?); simplify it or split it up` };
    }
  }
  return undefined;
}

/** Pointer -> offsets of every node of one document (built only when a diagnostic needs a position). */
function collectPositions(events: Event[], source: string, rootIndex: number): Map<string, { start: number; keyStart?: number }> {
  const out = new Map<string, { start: number; keyStart?: number }>();
  const walk = (i: number, pointer: string, keyStart?: number, parentStart = 0): number => {
    const ev = events[i];
    if (!ev || ev.type === EVENT_ID.POP) return i;
    const own = nodeStart(ev);
    const start = own >= 0 ? own : (keyStart ?? parentStart); // an empty value is placed at its key
    out.set(pointer, keyStart === undefined ? { start } : { start, keyStart });
    if (ev.type === EVENT_ID.MAPPING) {
      let j = i + 1;
      while (events[j] && events[j]!.type !== EVENT_ID.POP) {
        const keyEv = events[j]!;
        const key = keyEv.type === EVENT_ID.SCALAR ? getScalarValue(source, keyEv) : `?${j}`;
        const afterKey = skipNode(events, j) + 1;
        j = walk(afterKey, joinPointer(pointer, key), nodeStart(keyEv), start) + 1;
      }
      return j;
    }
    if (ev.type === EVENT_ID.SEQUENCE) {
      let j = i + 1;
      let index = 0;
      while (events[j] && events[j]!.type !== EVENT_ID.POP) j = walk(j, joinPointer(pointer, index++), undefined, start) + 1;
      return j;
    }
    return i;
  };
  walk(rootIndex, '');
  return out;
}

function lineIndex(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

function positionAt(file: string, lineStarts: number[], at: number, bom = 0): Position {
  const offset = Math.max(0, at);
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lineStarts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { file, line: lo + 1, col: Math.max(1, offset - lineStarts[lo]! + 1 - (lo === 0 ? bom : 0)) };
}
