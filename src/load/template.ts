/**
 * Logic-less templates (Mustache syntax, docs/adr/0008-mustache-templates.md),
 * rendered at load from a Target's `vars`. mustache.js parses; this module walks
 * the tokens itself, so the walk that renders is the walk that checks: every name
 * must resolve (never an empty string), nothing is HTML-escaped, no partials, no
 * lambdas (vars are plain YAML data), and output and work are bounded.
 */
import { isUtf8 } from 'node:buffer';
import Mustache, { type TemplateToken } from 'mustache';
import type { Json, JsonObject } from '../provider.js';
import { canonicalJson } from '../util/canonical.js';
import { isObject } from '../util/object.js';
import { didYouMean } from '../util/suggest.js';
import { TARGET_KIND, targetId, type DesiredSet, type Diagnostic, type LoadedResource, type Position } from './types.js';
import type { DocumentPositions } from './yaml.js';

/** A kind's template fields (KindHandler.template): top-level spec keys. */
export interface TemplateFields {
  /** Holds the template text, e.g. `template`. */
  inline: string;
  /** Names a template file of the config repo (also one of the kind's fileRefs), e.g. `templateFile`. */
  file: string;
  /** Receives the rendered text, e.g. `content`. */
  into: string;
}

/** The template text and how to turn an offset in it into file:line:col. */
export interface TemplateSource {
  text: string;
  at(offset: number, length: number): Position;
}

export interface TemplateVars {
  values: JsonObject;
  /** Where they are defined, for messages: `Target/web1`. */
  from: string;
}

export interface RenderLimits {
  /** Largest rendered output, in UTF-8 bytes (the limit for `source:` attachments). */
  maxBytes: number;
  /** Tokens visited at most (sections over lists nested in each other multiply). */
  maxSteps?: number;
}

export interface TemplateProblem extends Position {
  message: string;
}

export type RenderResult = { ok: true; text: string } | { ok: false; problems: TemplateProblem[] };

const DEFAULT_MAX_STEPS = 5_000_000;
/** Problems reported per template at most: the first ones say enough. */
const MAX_PROBLEMS = 20;
const TAGS: [string, string] = ['{{', '}}'];

/** Our own writer: mustache's default one caches every template it ever parsed, for the life of the process. */
const writer = new Mustache.Writer();
writer.templateCache = undefined;

/** Renders `source` with `vars`, or says every problem with its position. Pure and deterministic. */
export function renderTemplate(source: TemplateSource, vars: TemplateVars, limits: RenderLimits): RenderResult {
  const { text } = source;
  let tokens: TemplateToken[];
  try {
    tokens = writer.parse(text, TAGS);
  } catch (err) {
    return { ok: false, problems: [parseProblem(source, (err as Error).message)] };
  }
  const problems: TemplateProblem[] = [];
  const maxSteps = limits.maxSteps ?? DEFAULT_MAX_STEPS;
  const out: string[] = [];
  let bytes = 0;
  let writing = true;
  let steps = 0;
  const stack: Json[] = [vars.values];

  const report = (t: TemplateToken, message: string): void => {
    writing = false; // the output is not used any more: only look for more problems
    if (problems.length < MAX_PROBLEMS) problems.push({ ...source.at(t[2], t[3] - t[2]), message });
  };
  const emit = (t: TemplateToken, piece: string): void => {
    if (!writing) return;
    bytes += Buffer.byteLength(piece);
    if (bytes > limits.maxBytes) report(t, `the rendered template is over the ${limits.maxBytes}-byte limit; make it smaller or split the file`);
    else out.push(piece);
  };
  const tag = (t: TemplateToken): string => text.slice(t[2], t[3]);

  /** The value `name` stands for, or undefined after reporting why there is none. */
  const resolve = (t: TemplateToken): Json | undefined => {
    const name = t[1];
    if (name === '') {
      report(t, `${tag(t)} names no variable`);
      return undefined;
    }
    if (name === '.') return stack[stack.length - 1]!;
    const parts = name.split('.');
    const first = parts[0]!;
    let value: Json | undefined;
    for (let i = stack.length - 1; i >= 0 && value === undefined; i--) {
      const ctx = stack[i]!;
      if (isObject(ctx) && Object.hasOwn(ctx, first)) value = (ctx as JsonObject)[first];
    }
    if (value === undefined) {
      const known = new Set<string>();
      for (const ctx of stack) if (isObject(ctx)) for (const k of Object.keys(ctx)) known.add(k);
      const defined = known.size === 0 ? `${vars.from} has no vars` : `defined here: ${[...known].sort().join(', ')}`;
      report(t, `unknown variable "${first}"${didYouMean(first, known)} in ${tag(t)}; ${defined}. Add it to the vars of ${vars.from} or fix the name`);
      return undefined;
    }
    for (let i = 1; i < parts.length; i++) {
      const key = parts[i]!;
      const inner: Json | undefined = isObject(value)
        ? Object.hasOwn(value, key)
          ? (value as JsonObject)[key]
          : undefined
        : Array.isArray(value) && /^(0|[1-9][0-9]*)$/.test(key)
          ? value[Number(key)]
          : undefined;
      if (inner === undefined) {
        const held = isObject(value) ? `it has ${Object.keys(value).sort().join(', ') || 'no keys'}${didYouMean(key, Object.keys(value))}` : `it is ${describe(value)}`;
        report(t, `unknown variable "${parts.slice(0, i + 1).join('.')}" in ${tag(t)}: "${parts.slice(0, i).join('.')}" has no "${key}" (${held})`);
        return undefined;
      }
      value = inner;
    }
    return value;
  };

  /** Renders `list` (or only checks it, when `render` is false: a branch not taken is checked all the same). */
  const walk = (list: TemplateToken[], render: boolean): void => {
    for (const t of list) {
      if (++steps > maxSteps) {
        report(t, `the template does more than ${maxSteps} steps (sections over lists nested in each other?); simplify it`);
        throw BUDGET;
      }
      switch (t[0]) {
        case 'text':
          if (render) emit(t, t[1]);
          break;
        case 'name':
        case '&': {
          const value = resolve(t);
          if (value === undefined) break;
          if (value === null || typeof value === 'object') {
            report(t, `${tag(t)} is ${describe(value)}, not text: use a section, {{#${t[1]}}}...{{/${t[1]}}}, to go through it`);
            break;
          }
          if (render) emit(t, String(value));
          break;
        }
        case '#': {
          const value = resolve(t);
          if (value === undefined) break;
          const children = t[4] ?? [];
          if (Array.isArray(value)) {
            // Names inside a section over an empty list are not checked: there is no item to check them against.
            for (const item of value) {
              stack.push(item);
              walk(children, render);
              stack.pop();
            }
          } else if (isFalsy(value)) walk(children, false);
          else if (value === true) walk(children, render);
          else {
            stack.push(value);
            walk(children, render);
            stack.pop();
          }
          break;
        }
        case '^': {
          const value = resolve(t);
          if (value === undefined) break;
          walk(t[4] ?? [], render && isFalsy(value));
          break;
        }
        case '!': // a comment
        case '=': // new delimiters: the parser has used them
          break;
        case '>':
          report(t, `partials (${tag(t)}) are not supported: use templateFile for a whole file, or write the text here`);
          break;
        default:
          report(t, `${tag(t)} is not supported here`);
      }
    }
  };

  try {
    walk(tokens, true);
  } catch (err) {
    if (err !== BUDGET) throw err;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, text: out.join('') };
}

const BUDGET = Symbol('template step budget');

/** Mustache's falsy values (mustache.js): false, null, 0, "" and the empty list. */
function isFalsy(value: Json): boolean {
  return value === false || value === null || value === 0 || value === '' || (Array.isArray(value) && value.length === 0);
}

function describe(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** mustache.js throws plain errors that end in `at <offset>`. */
function parseProblem(source: TemplateSource, message: string): TemplateProblem {
  const m = /^(.*) at (\d+)$/.exec(message);
  const offset = m ? Number(m[2]) : 0;
  const what = m?.[1] ?? message;
  const section = /^Un(opened|closed) section "(.*)"/.exec(what);
  const unclosedTag = /^Unclosed tag/.test(what);
  const explained = unclosedTag
    ? 'this tag is never closed (add "}}")'
    : section?.[1] === 'opened'
      ? `this closes section "${section[2]}", which is not open`
      : section
        ? `section "${section[2]}" is not closed before this point (add {{/${section[2]}}})`
        : what;
  // An unclosed tag is reported where the text ends: point at its opening instead.
  const open = unclosedTag ? source.text.lastIndexOf(TAGS[0], offset) : -1;
  return { ...source.at(open >= 0 ? open : offset, 2), message: `template: ${explained}` };
}

// ---- where template text is ---------------------------------------------------

/** A template file of the config repo: offsets count lines and columns in its text (1-based). */
export function fileSource(text: string, file: string): TemplateSource {
  return {
    text,
    at(offset) {
      let line = 1;
      let lineStart = 0;
      for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
        line++;
        lineStart = i + 1;
      }
      return { file, line, col: offset - lineStart + 1 };
    },
  };
}

/**
 * A template inline in a YAML document. The decoded string and its source differ
 * (quotes, escapes, block indentation, folding), so a tag is found in the source
 * as the same occurrence of its text; the scalar's start when it cannot be.
 */
export function inlineSource(text: string, doc: DocumentPositions, pointer: string): TemplateSource {
  return {
    text,
    at(offset, length) {
      const fallback = doc.positionOf(pointer);
      const scalar = doc.scalarSource?.(pointer);
      if (!scalar) return fallback;
      let needle = text.slice(offset, offset + Math.max(1, length));
      const newline = needle.indexOf('\n');
      if (newline >= 0) needle = needle.slice(0, newline);
      if (needle === '') return offset >= text.length ? scalar.at(scalar.raw.length) : fallback;
      let k = 0;
      for (let i = text.indexOf(needle); i >= 0 && i < offset; i = text.indexOf(needle, i + 1)) k++;
      let found = scalar.raw.indexOf(needle);
      for (; found >= 0 && k > 0; k--) found = scalar.raw.indexOf(needle, found + 1);
      return found >= 0 ? scalar.at(found) : fallback;
    },
  };
}

// ---- templated resources --------------------------------------------------------

/** Whether `spec` uses its kind's template fields. */
export function usesTemplate(fields: TemplateFields | undefined, spec: unknown): fields is TemplateFields {
  return fields !== undefined && isObject(spec) && (typeof spec[fields.inline] === 'string' || typeof spec[fields.file] === 'string');
}

/**
 * The spec with its template rendered into `fields.into`, from the vars of
 * `target` (its Target document, new or unchanged). Problems are diagnostics at
 * the template's file:line:col; then undefined. A missing Target renders nothing
 * (the cross-file checks report it).
 */
export async function renderResourceTemplate(
  r: LoadedResource,
  doc: DocumentPositions | undefined,
  fields: TemplateFields,
  target: { spec: unknown } | undefined,
  maxBytes: number,
  diagnostics: Diagnostic[],
): Promise<JsonObject | undefined> {
  const spec = r.spec as JsonObject;
  const name = r.meta.target;
  if (!target || !name) return spec;
  const vars: TemplateVars = { values: varsOf(target.spec), from: targetId(name) };
  let source: TemplateSource;
  const inline = spec[fields.inline];
  if (typeof inline === 'string') {
    const at = { file: r.file, line: r.line, col: r.col };
    source = inlineSource(inline, doc ?? { position: at, positionOf: () => at }, `/spec/${fields.inline}`);
  } else {
    const att = r.attachments[`/${fields.file}`];
    if (!att) return spec; // not resolved: the attachment step has reported why
    const bytes = await att.read();
    if (!isUtf8(bytes)) {
      diagnostics.push({ severity: 'error', file: att.path, line: 1, col: 1, id: r.id, message: `${att.path} is not UTF-8 text, so it cannot be a template (use source: for binary files)` });
      return undefined;
    }
    source = fileSource(bytes.toString('utf8'), att.path);
  }
  const result = renderTemplate(source, vars, { maxBytes });
  if (!result.ok) {
    for (const p of result.problems) diagnostics.push({ severity: 'error', file: p.file, line: p.line, col: p.col, id: r.id, message: p.message });
    return undefined;
  }
  return { ...spec, [fields.into]: result.text };
}

function varsOf(targetSpec: unknown): JsonObject {
  const vars = isObject(targetSpec) ? targetSpec.vars : undefined;
  return isObject(vars) ? (vars as JsonObject) : {};
}

/**
 * Unchanged files to parse again because a template in them renders differently
 * at this commit: its template file changed (`changedPaths`), or the vars of its
 * Target did (`parsedTargets`: the Target documents of the changed files).
 */
export function filesToRerender(
  prev: DesiredSet,
  parsedTargets: Iterable<{ id: string; kind: string; name: string; spec: unknown }>,
  changedPaths: Set<string>,
  templateOf: (kind: string) => TemplateFields | undefined,
): string[] {
  const files = new Set<string>();
  const add = (id: string): void => {
    const r = prev.resources.get(id);
    if (r && usesTemplate(templateOf(r.kind), r.spec)) files.add(r.file);
  };
  for (const path of changedPaths) for (const id of prev.byAttachment.get(path) ?? []) add(id);
  for (const t of parsedTargets) {
    if (t.kind !== TARGET_KIND) continue;
    const before = prev.resources.get(t.id);
    if (before && canonicalJson(varsOf(before.spec)) !== canonicalJson(varsOf(t.spec))) for (const id of prev.byTarget.get(t.name) ?? []) add(id);
  }
  return [...files].filter((file) => !changedPaths.has(file));
}
