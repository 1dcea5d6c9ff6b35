import type { JsonObject, ResourceMeta } from '../provider.js';
import { getPointer } from '../util/json-pointer.js';
import { parseResource, resourceMeta, type ParsedResource } from './document.js';
import type { SchemaRegistry } from './schemas.js';
import type { Diagnostic } from './types.js';
import { filePositions, parseYaml, type ParseYamlOptions, type YamlLimits } from './yaml.js';

/** One config file's resources (in document order) and its own diagnostics. */
export interface ParsedFile {
  resources: ParsedResource[];
  /** Each resource's document index in the file. */
  indexes: number[];
  diagnostics: Diagnostic[];
}

/** Parses one config file and checks each document on its own (envelope, metadata, the kind's schema). */
export function parseConfigFile(path: string, bytes: Buffer | Diagnostic, registry: SchemaRegistry, limits: YamlLimits, options?: ParseYamlOptions): ParsedFile {
  if (!Buffer.isBuffer(bytes)) return { resources: [], indexes: [], diagnostics: [bytes] };
  const yaml = parseYaml(bytes, path, limits, options);
  const resources: ParsedResource[] = [];
  const indexes: number[] = [];
  const diagnostics = [...yaml.diagnostics];
  for (const doc of yaml.documents) {
    if (doc.value === null || doc.value === '') continue; // empty document (a stray `---`, a comment-only file)
    const result = parseResource(doc, path, registry);
    diagnostics.push(...result.diagnostics);
    if (result.resource) {
      resources.push(result.resource);
      indexes.push(doc.index);
    }
  }
  return { resources, indexes, diagnostics };
}

/** A parsed resource as a worker posts it: plain data, no position lookups (the main thread re-parses for those). */
/** Shorter than a ParsedResource: the id is `kind/name`, and the metadata leaves out its name and its defaults (less JSON to write and read). */
export interface WireResource {
  index: number;
  kind: string;
  name: string;
  meta: WireMeta;
  spec: JsonObject;
  line: number;
  col: number;
  /** specHash, when the resource references no repo file (then the hash needs no blob ids). */
  specHash?: string;
}

/** ResourceMeta without the name, and without the fields that have their default (resourceMeta restores them). */
type WireMeta = Partial<Omit<ResourceMeta, 'name'>>;

export interface WireFile {
  resources: WireResource[];
  diagnostics: Diagnostic[];
}

/** What a worker posts for a file; `hash` computes specHash with no attachments (none: the load does not hash). */
export function toWire(file: ParsedFile, registry: SchemaRegistry, hash: ((spec: unknown, target: string | undefined) => string) | undefined): WireFile {
  const resources = file.resources.map((r, i): WireResource => {
    const wire: WireResource = { index: file.indexes[i]!, kind: r.kind, name: r.name, meta: wireMeta(r.meta), spec: r.spec, line: r.line, col: r.col };
    if (!hash) return wire;
    const fileRefs = registry.kinds.get(r.kind)?.fileRefs ?? [];
    const refersToFiles = fileRefs.some((pointer) => typeof getPointer(r.spec, pointer) === 'string');
    if (!refersToFiles) wire.specHash = hash(r.spec, r.meta.target);
    return wire;
  });
  return { resources, diagnostics: file.diagnostics };
}

/** A ParsedResource with a precomputed hash (undefined: the loader hashes it once attachments are resolved). */
export type ReceivedResource = ParsedResource & { specHash: string | undefined };

/**
 * The main thread's side: resources as parseConfigFile would have made them, with
 * position lookups that parse `bytes` again only if a diagnostic needs one.
 */
export function fromWire(path: string, bytes: Buffer, wire: WireFile, registry: SchemaRegistry, limits: YamlLimits): { resources: ReceivedResource[]; diagnostics: Diagnostic[] } {
  const positions = filePositions(bytes, path, limits.maxDepth);
  const resources = wire.resources.map((w): ReceivedResource => {
    const kind = registry.kinds.get(w.kind)?.kind ?? w.kind; // the registry's string, not one copy per document
    return {
      id: `${kind}/${w.name}`,
      kind,
      name: w.name,
      meta: resourceMeta(w.name, w.meta),
      spec: w.spec,
      file: path,
      line: w.line,
      col: w.col,
      doc: positions(w.index, { file: path, line: w.line, col: w.col }),
      specHash: w.specHash,
    };
  });
  return { resources, diagnostics: wire.diagnostics };
}

/** What of the metadata differs from resourceMeta's defaults. */
function wireMeta(meta: ResourceMeta): WireMeta {
  const wire: WireMeta = {};
  if (meta.target !== undefined) wire.target = meta.target;
  if (meta.dependsOn.length > 0) wire.dependsOn = meta.dependsOn;
  if (meta.deletionPolicy !== 'Delete') wire.deletionPolicy = meta.deletionPolicy;
  if (meta.previousNames.length > 0) wire.previousNames = meta.previousNames;
  if (meta.ignore.length > 0) wire.ignore = meta.ignore;
  if (meta.drift !== 'remediate') wire.drift = meta.drift;
  return wire;
}
