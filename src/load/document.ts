import { SpecError } from '../errors.js';
import type { JsonObject, ResourceMeta } from '../provider.js';
import { didYouMean } from '../util/suggest.js';
import type { SchemaRegistry } from './schemas.js';
import { TARGET_KIND, type Diagnostic } from './types.js';
import type { DocumentPositions, YamlDocument } from './yaml.js';
import { isObject } from '../util/object.js';

export const API_VERSION = 'plumb/v1';
const TOP_LEVEL = ['apiVersion', 'kind', 'metadata', 'spec'];
const NO_NAMES = Object.freeze([]) as unknown as string[];

/** A document that passed its own checks; cross-file checks and attachments come later. */
export interface ParsedResource {
  id: string;
  kind: string;
  name: string;
  meta: ResourceMeta;
  spec: JsonObject;
  file: string;
  line: number;
  col: number;
  /** Positions in its file, for diagnostics (not the YAML value: that is garbage once the resource is built). */
  doc: DocumentPositions;
}

/**
 * The one shape of a resource's metadata, from validated metadata or from a copy of
 * a ResourceMeta (posted from a worker). Absent or empty lists share one frozen
 * empty list: a desired set holds 100k of these.
 */
export function resourceMeta(name: string, metadata: Record<string, unknown>): ResourceMeta {
  return {
    name,
    ...(typeof metadata.target === 'string' ? { target: metadata.target } : {}),
    dependsOn: names(metadata.dependsOn),
    deletionPolicy: (metadata.deletionPolicy as ResourceMeta['deletionPolicy'] | undefined) ?? 'Delete',
    previousNames: names(metadata.previousNames),
    ignore: names(metadata.ignore),
    drift: (metadata.drift as ResourceMeta['drift'] | undefined) ?? 'remediate',
  };
}

/** A list of names, or the shared empty one. */
export function names(list: unknown): string[] {
  return Array.isArray(list) && list.length > 0 ? (list as string[]) : NO_NAMES;
}

/** Checks one YAML document against the resource envelope, its metadata and its kind's schema. */
export function parseResource(doc: YamlDocument, file: string, registry: SchemaRegistry): { resource?: ParsedResource; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const report = (pointer: string, message: string, options: { key?: boolean; id?: string } = {}): void => {
    diagnostics.push({ severity: 'error', ...doc.positionOf(pointer, { key: options.key ?? false }), message, ...(options.id ? { id: options.id } : {}) });
  };
  const value = doc.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    report('', `a document must be a mapping with apiVersion, kind, metadata and spec, not ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`);
    return { diagnostics };
  }
  const d = value as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!TOP_LEVEL.includes(key)) report(`/${key}`, `unknown top-level field "${key}"${didYouMean(key, TOP_LEVEL)}; a document has apiVersion, kind, metadata and spec`, { key: true });
  }
  if (d.apiVersion !== API_VERSION) {
    report(d.apiVersion === undefined ? '' : '/apiVersion', d.apiVersion === undefined ? `missing "apiVersion: ${API_VERSION}"` : `apiVersion must be "${API_VERSION}", not ${JSON.stringify(d.apiVersion)}`, { key: d.apiVersion === undefined });
  }
  if (typeof d.kind !== 'string') {
    report(d.kind === undefined ? '' : '/kind', d.kind === undefined ? 'missing "kind" (e.g. kind: ssh.File)' : 'kind must be a string like ssh.File');
    return { diagnostics };
  }
  const info = registry.kinds.get(d.kind);
  if (!info) {
    report('/kind', registry.unknownKindMessage(d.kind));
    return { diagnostics };
  }
  const kind = info.kind; // the registry's string, not one copy per document

  const metadata = d.metadata;
  const name = isObject(metadata) && typeof metadata.name === 'string' ? metadata.name : undefined;
  const id = name ? `${kind}/${name}` : undefined;
  const opts = id ? { id } : {};
  if (metadata === undefined) report('', 'missing "metadata" (it needs at least a name)', { key: true });
  else {
    for (const p of registry.validateMetadata(metadata)) report(`/metadata${p.pointer}`, p.atKey && p.pointer === '' ? p.message.replace('field', 'metadata field') : p.message, { key: p.atKey, ...opts });
    if (isObject(metadata)) {
      if (kind === TARGET_KIND && metadata.target !== undefined) report('/metadata/target', 'a Target has no metadata.target (it is the target)', { key: true, ...opts });
      if (kind !== TARGET_KIND && metadata.target === undefined) report('/metadata', `missing "target": every ${kind} names the Target it is converged on`, { key: true, ...opts });
    }
  }

  const spec = d.spec;
  if (spec === undefined) report('', 'missing "spec"', { key: true, ...opts });
  else if (!isObject(spec)) report('/spec', `"spec" must be a mapping of ${kind} fields, not ${spec === '' || spec === null ? 'an empty value' : Array.isArray(spec) ? 'a list' : JSON.stringify(spec)}`, opts);
  else for (const p of registry.validateSpec(kind, spec)) report(`/spec${p.pointer}`, p.message, { key: p.atKey, ...opts });

  if (diagnostics.length > 0 || !name || !isObject(metadata) || !isObject(spec)) return { diagnostics };

  const meta = resourceMeta(name, metadata);
  let canonical = spec as JsonObject;
  if (info.normalize) {
    try {
      canonical = info.normalize(spec) as JsonObject;
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      report(`/spec${err.pointer ?? ''}`, err.message, opts);
      return { diagnostics };
    }
  }
  return {
    resource: { id: id!, kind, name, meta, spec: canonical, file, line: doc.position.line, col: doc.position.col, doc: doc.positions },
    diagnostics,
  };
}

