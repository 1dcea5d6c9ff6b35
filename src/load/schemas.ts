import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Claim, ProviderSchema } from '../provider.js';
import { SECRET_REF_PATTERN } from '../secrets/resolve.js';
import { joinPointer } from '../util/json-pointer.js';
import { schemasDir } from '../util/package-root.js';
import { didYouMean } from '../util/suggest.js';
import { TARGET_KIND } from './types.js';
import { isObject } from '../util/object.js';

export interface KindInfo {
  kind: string;
  /** The provider that converges it; null for Target. */
  provider: string | null;
  schemaFile: string;
  schema: Record<string, unknown>;
  fileRefs: string[];
  /** Template fields the loader renders (KindHandler.template). */
  template?: { inline: string; file: string; into: string };
  /** The kind's canonical form of a valid spec (KindHandler.normalize). */
  normalize?: (spec: unknown) => unknown;
  /** What a resource of this kind owns on its target (KindHandler.claims). */
  claims?: (spec: unknown, name: string) => Claim[];
  /** What a resource of this kind acts on after a change of (KindHandler.subscribes). */
  subscribes?: (spec: unknown) => Array<{ id: string; pointer: string }>;
}

/** A schema problem at a JSON pointer of the validated value. */
export interface SchemaProblem {
  pointer: string;
  /** Point at the key rather than the value (unknown fields, whole-object problems). */
  atKey: boolean;
  message: string;
}

/**
 * Every kind's JSON Schema, each compiled the first time a document needs it
 * (a repo uses a few of the kinds; compiling all of them cost most of a CLI
 * start). Kinds come from the providers; a duplicate or empty kind is a
 * programming error and throws.
 */
export class SchemaRegistry {
  readonly kinds = new Map<string, KindInfo>();
  readonly providers = new Map<string, { targetSchema: Record<string, unknown> }>();
  /** Compiled on first use: a load that sees only ssh kinds (and each parse worker) compiles only theirs. */
  readonly #validators = new Map<string, ValidateFunction>();
  readonly #schemas = new Map<string, Record<string, unknown>>();
  readonly #ajv: Ajv;

  constructor(providers: ProviderSchema[], dir: string = schemasDir()) {
    this.#ajv = new Ajv({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true, keywords: ['x-hint'] });
    const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(isAbsolute(file) ? file : join(dir, file), 'utf8')) as Record<string, unknown>;
    this.#compile('metadata', load('metadata.schema.json'));
    const target = load('target.schema.json');
    this.#compile(TARGET_KIND, target);
    this.kinds.set(TARGET_KIND, { kind: TARGET_KIND, provider: null, schemaFile: 'target.schema.json', schema: target, fileRefs: [] });

    for (const provider of providers) {
      if (!provider.name) throw new Error('a provider has an empty name');
      if (this.providers.has(provider.name)) throw new Error(`provider "${provider.name}" is registered twice`);
      const targetSchema = load(provider.targetSchema);
      this.#compile(`target:${provider.name}`, targetSchema);
      this.providers.set(provider.name, { targetSchema });
      for (const handler of provider.kinds) {
        if (!handler.kind) throw new Error(`provider "${provider.name}" has a kind with an empty name`);
        if (this.kinds.has(handler.kind)) throw new Error(`kind "${handler.kind}" is registered twice`);
        if (!handler.kind.startsWith(`${provider.name}.`)) throw new Error(`kind "${handler.kind}" must be named ${provider.name}.<Kind>`);
        // One owner per object needs every kind to say what it owns (none, for an imperative kind).
        if (!handler.claims) throw new Error(`kind "${handler.kind}" declares no claims`);
        const schema = load(handler.schema);
        this.#compile(handler.kind, schema);
        this.kinds.set(handler.kind, {
          kind: handler.kind,
          provider: provider.name,
          schemaFile: handler.schema,
          schema,
          fileRefs: handler.fileRefs ?? [],
          ...(handler.template ? { template: handler.template } : {}),
          ...(handler.normalize ? { normalize: handler.normalize.bind(handler) } : {}),
          ...(handler.claims ? { claims: handler.claims.bind(handler) } : {}),
          ...(handler.subscribes ? { subscribes: handler.subscribes.bind(handler) } : {}),
        });
      }
    }
  }

  #compile(key: string, schema: Record<string, unknown>): void {
    this.#schemas.set(key, schema);
  }

  #validator(key: string): ValidateFunction {
    let validate = this.#validators.get(key);
    if (!validate) {
      try {
        validate = this.#ajv.compile(this.#schemas.get(key)!);
      } catch (err) {
        throw new Error(`schema for ${key} does not compile: ${(err as Error).message}`, { cause: err });
      }
      this.#validators.set(key, validate);
    }
    return validate;
  }

  /** Compiles every schema now (tests, and `plumb explain`): a broken schema throws here, not at its first document. */
  compileAll(): this {
    for (const key of this.#schemas.keys()) this.#validator(key);
    return this;
  }

  unknownKindMessage(kind: string): string {
    return `unknown kind "${kind}"${didYouMean(kind, this.kinds.keys())}; known kinds: ${[...this.kinds.keys()].sort().join(', ')}`;
  }

  unknownProviderMessage(provider: string): string {
    return `unknown provider "${provider}"${didYouMean(provider, this.providers.keys())}; known providers: ${[...this.providers.keys()].sort().join(', ')}`;
  }

  validateMetadata(value: unknown): SchemaProblem[] {
    return this.#run('metadata', value, 'metadata');
  }

  /** Validates a spec against its kind's schema (for Target: the core schema, then the provider's). */
  validateSpec(kind: string, spec: unknown): SchemaProblem[] {
    const problems = this.#run(kind, spec, 'spec');
    if (kind !== TARGET_KIND || problems.length > 0) return problems;
    const provider = (spec as { provider: string }).provider;
    if (!this.providers.has(provider)) return [{ pointer: '/provider', atKey: false, message: this.unknownProviderMessage(provider) }];
    return this.#run(`target:${provider}`, spec, 'spec');
  }

  #run(key: string, value: unknown, root: string): SchemaProblem[] {
    const validate = this.#validator(key);
    if (validate(value)) return [];
    return explain(validate.errors ?? [], root);
  }
}

/** Turns ajv's errors into one plain sentence each, at the most useful pointer. `root` names the validated value. */
function explain(errors: ErrorObject[], root: string): SchemaProblem[] {
  // Branch errors of a failed oneOf/anyOf are noise once the combinator itself is reported.
  const combinators = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.schemaPath);
  const relevant = errors.filter((e) => !combinators.some((path) => e.schemaPath.startsWith(path + '/')) && e.keyword !== 'if' && e.keyword !== 'propertyNames'); // (a bad property name: its own error says why)
  const seen = new Set<string>();
  const problems: SchemaProblem[] = [];
  for (const e of relevant) {
    const problem = explainOne(e, root);
    const key = `${problem.pointer} ${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  return problems;
}

function explainOne(e: ErrorObject, root: string): SchemaProblem {
  const where = e.instancePath;
  const field = `"${fieldLabel(root, where)}"`;
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  const hint = typeof parent['x-hint'] === 'string' ? (parent['x-hint'] as string) : undefined;
  const p = e.params as Record<string, unknown>;
  // A field that takes a secret reference may hold an inline secret by mistake: never echo its value (invariant 7).
  const secret = isSecretReferenceField(parent);
  const show = (value: unknown): string => (secret ? HIDDEN : describeValue(value));
  const exactlyOne = exactlyOneOf(e);
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      const allowed = Object.keys((parent.properties as object | undefined) ?? {});
      return {
        pointer: joinPointer(where, name),
        atKey: true,
        message: `unknown field "${name}"${didYouMean(name, allowed)}; allowed here: ${allowed.join(', ')}`,
      };
    }
    case 'required':
      return { pointer: where, atKey: true, message: `missing required field "${String(p.missingProperty)}"` };
    case 'type':
      return { pointer: where, atKey: false, message: `${field} must be ${article(String(p.type))}, not ${show(e.data)}` };
    case 'enum':
      return { pointer: where, atKey: false, message: `${field} must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, not ${secret ? HIDDEN : describeString(e.data)}` };
    case 'const':
      return { pointer: where, atKey: false, message: `${field} must be ${JSON.stringify(p.allowedValue)}, not ${secret ? HIDDEN : describeString(e.data)}` };
    case 'pattern':
      if (secret) return { pointer: where, atKey: false, message: `${field} must be a secret reference (file:/absolute/path or env:NAME), never the secret itself; its value is not shown` };
      return { pointer: where, atKey: false, message: `${field} ${describeString(e.data)} is not valid: ${hint ?? `it must match ${String(p.pattern)}`}` };
    case 'oneOf':
    case 'anyOf':
      if (!hint && exactlyOne) {
        const set = exactlyOne.filter((name) => isObject(e.data) && name in e.data);
        const state = set.length === 0 ? `${exactlyOne.length === 2 ? 'neither' : 'none'} is set` : `${quoteList(set)} ${set.length === 1 ? 'is' : 'are'} set`;
        return { pointer: where, atKey: true, message: `${field} needs ${e.keyword === 'oneOf' ? 'exactly' : 'at least'} one of ${quoteList(exactlyOne)}, but ${state}` };
      }
      return { pointer: where, atKey: true, message: hint ?? `${field} does not match any allowed form (${e.message ?? ''})` };
    case 'not': {
      const own = (e.schema as Record<string, unknown> | undefined)?.['x-hint'];
      const together = (e.schema as { required?: unknown } | undefined)?.required;
      if (typeof own !== 'string' && !hint && Array.isArray(together) && together.length > 1) {
        return { pointer: where, atKey: true, message: `${field} may not set ${quoteList(together.map(String))} together; keep one of them` };
      }
      return { pointer: where, atKey: true, message: typeof own === 'string' ? own : (hint ?? `${field} has a combination of fields that is not allowed`) };
    }
    case 'uniqueItems':
      return { pointer: where, atKey: false, message: `${field} lists the same item twice (items ${String(p.j)} and ${String(p.i)})` };
    default:
      return { pointer: where, atKey: false, message: `${field} ${e.message ?? 'is invalid'}` };
  }
}

const HIDDEN = 'an inline value (not shown: it may be a secret)';

/** A field whose schema asks for a secret reference (or is marked writeOnly): its value must never be echoed. */
function isSecretReferenceField(schema: Record<string, unknown>): boolean {
  if (schema.writeOnly === true) return true;
  if (typeof schema.pattern !== 'string') return false;
  try {
    return new RegExp(schema.pattern).source === SECRET_REF_PATTERN.source; // compared as RegExp sources: '/' is escaped there
  } catch {
    return false;
  }
}

/** `spec`, `port`, `ignore[0]`: the last name on the path, with list indexes. */
function fieldLabel(root: string, pointer: string): string {
  let label = root;
  for (const token of pointer.split('/').slice(1)) label = /^\d+$/.test(token) ? `${label}[${token}]` : token.replace(/~1/g, '/').replace(/~0/g, '~');
  return label;
}

/** For a oneOf/anyOf whose branches each require one field (hostKey | knownHosts): those fields. */
function exactlyOneOf(e: ErrorObject): string[] | undefined {
  if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf') return undefined;
  const branches = e.schema as unknown;
  if (!Array.isArray(branches) || branches.length < 2) return undefined;
  const names: string[] = [];
  for (const branch of branches) {
    const required = (branch as { required?: unknown }).required;
    if (!Array.isArray(required) || required.length !== 1) return undefined;
    names.push(String(required[0]));
  }
  return names;
}

function quoteList(names: string[]): string {
  const quoted = names.map((n) => `"${n}"`);
  return quoted.length <= 2 ? quoted.join(' and ') : `${quoted.slice(0, -1).join(', ')} and ${quoted[quoted.length - 1]}`;
}

/** A string value for a message: long or multi-line ones are cut, so a message stays one readable line. */
function describeString(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 60)}..." (${String(value).length} characters)` : text;
}

function article(type: string): string {
  if (type === 'object') return 'a mapping';
  if (type === 'array') return 'a list';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (value === '') return 'an empty value';
  return `${typeof value} ${describeString(value)}`;
}
