import { posix } from 'node:path';
import type { Attachment } from '../provider.js';
import type { FileChange, GitObjects } from '../source/git.js';
import { MODE_SUBMODULE, MODE_SYMLINK } from '../source/git.js';
import { specHash } from './spec-hash.js';
import { getPointer } from '../util/json-pointer.js';
import { SpecError } from '../errors.js';
import type { Claim, ResourceMeta } from '../provider.js';
import { ClaimIndex } from './claims.js';
import { availableParallelism } from 'node:os';
import type { ParsedResource } from './document.js';
import { fromWire, parseConfigFile, type ParsedFile, type ReceivedResource } from './parse-file.js';
import { ParsePool, ParseTicket, type ProvidersModule } from './parse-pool.js';
import type { SchemaRegistry } from './schemas.js';
import { filesToRerender, renderResourceTemplate, usesTemplate } from './template.js';
import { emptyDesiredSet, TARGET_KIND, targetId, type DesiredSet, type Diagnostic, type LoadedResource, type Position } from './types.js';
import { DEFAULT_YAML_LIMITS, type YamlLimits } from './yaml.js';

export { specHash };

/** What the loader needs from git: the mirror's objects (or a local repo's). */
export type ObjectReader = Pick<GitObjects, 'listTree' | 'readBlob' | 'pathInfo' | 'diff'>;

export interface LoadOptions {
  objects: ObjectReader;
  registry: SchemaRegistry;
  /** The subfolder Plumb reads, '' for the whole repo. */
  scope: string;
  limits?: Partial<LoadLimits>;
  /** Parse and schema-check a full load's files in worker threads (the CLI's validate and plan); in-thread without. */
  parallel?: ParallelLoad;
  /** Compute each resource's specHash (default true). `plumb validate` uses none: false leaves them '' (~0.5 s of CPU at 100k). */
  hashSpecs?: boolean;
}

export interface ParallelLoad {
  /** The module the workers build their schema registry from (the same providers as `registry`'s). */
  providers: ProvidersModule;
  /** Schema folder, if not the package's. */
  schemasDir?: string;
  /** Worker threads; default os.availableParallelism() - 1, at least 1 (the main thread parses a share too). */
  workers?: number;
  /** Config bytes below which a load stays in-thread (starting workers costs more than they save); default 4 MiB. */
  minBytes?: number;
  /** The main thread parses files no worker has taken yet (default true); false sends every file to a worker (tests of the worker path). */
  mainParses?: boolean;
}

export interface LoadLimits extends YamlLimits {
  /** Largest file a `source:`-style field may reference. */
  maxAttachmentBytes: number;
}

export const DEFAULT_LOAD_LIMITS: LoadLimits = { ...DEFAULT_YAML_LIMITS, maxAttachmentBytes: 16 * 1024 * 1024 };

export interface FullLoad {
  set: DesiredSet;
  diagnostics: Diagnostic[];
  /** Files parsed: the cost of this load. */
  filesRead: number;
}

/** A delta on top of the previous desired set. Nothing is changed until `apply()`. */
export interface DeltaLoad {
  commit: string;
  base: string;
  changes: FileChange[];
  diagnostics: Diagnostic[];
  /** Resources (re)defined by the changed files, and resources whose attachments changed. */
  added: Map<string, LoadedResource>;
  /** Ids the changed files used to define (some of them are re-added). */
  removed: Set<string>;
  filesRead: number;
  /** The desired state at `commit`, looked up through the overlay. */
  get(id: string): LoadedResource | undefined;
  /** Makes the previous set become the new one (in place, in proportion to the change). */
  apply(): DesiredSet;
}

/** Config documents are *.yaml / *.yml files outside dot-folders (.github/ workflows are not resources). */
export function isConfigFile(path: string): boolean {
  return /\.ya?ml$/i.test(path) && !path.split('/').some((segment) => segment.startsWith('.'));
}

/** Loads and validates every config file at `commit`. */
export async function loadFull(commit: string, options: LoadOptions): Promise<FullLoad> {
  const limits = { ...DEFAULT_LOAD_LIMITS, ...options.limits };
  const entries = await options.objects.listTree(commit, options.scope);
  const tree = new Map(entries.map((e) => [e.path, e]));
  const diagnostics: Diagnostic[] = [];
  for (const entry of entries) {
    const refused = refusedEntry(entry.path, entry.mode);
    if (refused) diagnostics.push(refused);
  }
  const files = entries.filter((e) => e.type === 'blob' && e.mode !== MODE_SYMLINK && isConfigFile(e.path));
  const resolver = (path: string) => {
    const e = tree.get(path);
    return Promise.resolve(e ? { oid: e.oid, size: e.size, mode: e.mode } : undefined);
  };

  // File by file, in tree order: each file's documents become resources before the next file is parsed,
  // so its YAML values are garbage at once (a 100k-resource load never holds them all). Blobs are read a
  // few files ahead, so git works on the next ones while this one is parsed. With workers, the files
  // ahead are parsed there; resources and diagnostics are still taken in tree order, so the result is
  // the same whatever the number of workers.
  const set = emptyDesiredSet(commit);
  const docs = new Map<string, ParsedResource>();
  const pool = startPool(options.parallel, files.length, files.reduce((n, e) => n + e.size, 0), options.hashSpecs !== false);
  const templated: Array<[LoadedResource, ParsedResource]> = []; // rendered once every Target (and its vars) is known
  try {
    let next: (i: number) => Promise<{ resources: Array<ParsedResource | ReceivedResource>; diagnostics: Diagnostic[] }>;
    if (pool) {
      // Files go to the pool as soon as their bytes are read. The main thread parses a file itself when no
      // worker has taken it yet, and while it waits for a worker's answer it parses the last file still
      // queued: neither side idles, whatever the load on each core (a fixed split left both waiting).
      const tickets = new ReadAhead(files, PARALLEL_READ_AHEAD, async (e) => {
        const bytes = await readConfigFile(e.path, e.oid, e.size, options, limits);
        return Buffer.isBuffer(bytes) ? pool.submit(e.path, bytes, limits) : bytes;
      });
      const here = (t: ParseTicket): ParsedFile => parseConfigFile(t.path, t.bytes, options.registry, limits);
      const mainParses = options.parallel?.mainParses !== false;
      next = async (i) => {
        const ticket = await tickets.get(i);
        if (!(ticket instanceof ParseTicket)) return parseConfigFile(files[i]!.path, ticket, options.registry, limits);
        while (mainParses) {
          if (ticket.local) return ticket.local as ParsedFile;
          if (ticket.claim()) return here(ticket);
          if (ticket.wire || ticket.error) break;
          const other = pool.claimLast();
          if (!other) break;
          other.local = here(other);
          await turn(); // (lets the workers' answers in)
        }
        return fromWire(ticket.path, ticket.bytes, await ticket.result(), options.registry, limits);
      };
    } else {
      const reads = new ReadAhead(files, READ_AHEAD, (e) => readConfigFile(e.path, e.oid, e.size, options, limits));
      next = async (i) => parseConfigFile(files[i]!.path, await reads.get(i), options.registry, limits);
    }
    for (let i = 0; i < files.length; i++) {
      const file = await next(i);
      diagnostics.push(...file.diagnostics);
      for (const r of file.resources) {
        const first = docs.get(r.id);
        if (first) {
          diagnostics.push(duplicate(r, first));
          continue;
        }
        docs.set(r.id, r);
        let loaded = attach(r, options, limits, resolver, diagnostics);
        if (loaded instanceof Promise) loaded = await loaded;
        if (!loaded) continue;
        if (usesTemplate(options.registry.kinds.get(r.kind)?.template, r.spec)) {
          templated.push([loaded, r]);
          continue;
        }
        const overlaps = claimOverlaps(loaded, set.claims, (id) => set.resources.get(id), r);
        diagnostics.push(...overlaps);
        // The first document keeps the claim: later ones are each reported once, against it.
        addToSet(set, overlaps.length === 0 ? loaded : withClaims(loaded, []));
      }
    }
  } finally {
    await pool?.close();
  }
  for (const [unrendered, r] of templated) {
    const loaded = await rendered(unrendered, r, options, limits, (id) => set.resources.get(id), diagnostics);
    if (!loaded) continue;
    const overlaps = claimOverlaps(loaded, set.claims, (id) => set.resources.get(id), r);
    diagnostics.push(...overlaps);
    addToSet(set, overlaps.length === 0 ? loaded : withClaims(loaded, []));
  }
  if (diagnostics.length === 0) {
    const view = setView(set);
    diagnostics.push(...crossCheck(view, [...set.resources.values()], [], docs, subscriptionPointer(options.registry)));
  }
  return { set, diagnostics: sortDiagnostics(diagnostics), filesRead: files.length };
}

/**
 * Loads only what changed between the previous desired set's commit and `commit`:
 * the cost is proportional to the changed files (and what references them), not
 * to the repo.
 */
export async function loadDelta(prev: DesiredSet, commit: string, options: LoadOptions): Promise<DeltaLoad> {
  const limits = { ...DEFAULT_LOAD_LIMITS, ...options.limits };
  const changes = prev.commit === commit ? [] : await options.objects.diff(prev.commit, commit, options.scope);
  const diagnostics: Diagnostic[] = [];
  const removed = new Set<string>();
  const newFiles: Array<{ path: string; oid: string }> = [];
  const changedPaths = new Set<string>();

  for (const change of changes) {
    if (change.oldPath) changedPaths.add(change.oldPath);
    if (change.newPath) changedPaths.add(change.newPath);
    if (change.oldPath && isConfigFile(change.oldPath)) {
      for (const id of prev.byFile.get(change.oldPath) ?? []) removed.add(id);
    }
    if (change.newPath) {
      const refused = refusedEntry(change.newPath, change.newMode);
      if (refused) diagnostics.push(refused);
      else if (isConfigFile(change.newPath)) newFiles.push({ path: change.newPath, oid: change.newOid });
    }
  }

  const sizes = await Promise.all(newFiles.map((f) => options.objects.pathInfo(commit, f.path)));
  const parsed = await Promise.all(newFiles.map((f, i) => parseFile(f.path, f.oid, sizes[i]?.size ?? 0, options, limits)));
  // Unchanged files with a template that renders differently now (its Target's vars or its template file changed): parsed again.
  const again = filesToRerender(prev, parsed.flatMap((f) => f.resources), changedPaths, (kind) => options.registry.kinds.get(kind)?.template);
  for (const path of again) for (const id of prev.byFile.get(path) ?? []) removed.add(id);
  const againInfo = await Promise.all(again.map((path) => options.objects.pathInfo(commit, path)));
  parsed.push(...(await Promise.all(again.map((path, i) => parseFile(path, againInfo[i]?.oid ?? '', againInfo[i]?.size ?? 0, options, limits)))));
  const docs = new Map<string, ParsedResource>();
  const added = new Map<string, LoadedResource>();
  const lookup = (id: string): LoadedResource | undefined => added.get(id) ?? (removed.has(id) ? undefined : prev.resources.get(id));
  // One lookup per path: a shared attachment referenced by many resources is looked up once.
  const looked = new Map<string, ReturnType<PathResolver>>();
  const resolver: PathResolver = (path) => {
    let answer = looked.get(path);
    if (!answer) {
      answer = options.objects.pathInfo(commit, path).then((info) => (info && info.type === 'blob' ? { oid: info.oid, size: info.size, mode: '100644' } : undefined));
      looked.set(path, answer);
    }
    return answer;
  };

  for (const file of parsed) {
    diagnostics.push(...file.diagnostics);
    for (const r of file.resources) {
      const earlier = docs.get(r.id);
      if (earlier) {
        diagnostics.push(duplicate(r, earlier));
        continue;
      }
      const existing = removed.has(r.id) ? undefined : prev.resources.get(r.id);
      if (existing) {
        diagnostics.push(duplicate(r, existing));
        continue;
      }
      docs.set(r.id, r);
    }
  }
  const targetAt = (id: string): { spec: unknown } | undefined => docs.get(id) ?? lookup(id);
  for (const r of docs.values()) {
    const loaded = await attach(r, options, limits, resolver, diagnostics);
    const done = loaded && usesTemplate(options.registry.kinds.get(r.kind)?.template, r.spec) ? await rendered(loaded, r, options, limits, targetAt, diagnostics) : loaded;
    if (done) added.set(r.id, done);
  }

  // Unchanged documents whose attachment file changed: same spec, new blob id, so a new spec hash.
  for (const path of changedPaths) {
    for (const id of prev.byAttachment.get(path) ?? []) {
      if (removed.has(id) || added.has(id)) continue;
      const r = prev.resources.get(id)!;
      const refreshed = await reattach(r, options.objects, resolver, limits, diagnostics);
      if (refreshed) {
        removed.add(id);
        added.set(id, refreshed);
      }
    }
  }

  // One owner per object: what is added against what stays, and against each other.
  const addedClaims = new ClaimIndex();
  for (const r of added.values()) {
    // What this delta removes (and re-adds, checked below) no longer holds its old claims.
    const overlaps = [...claimOverlaps(r, prev.claims, lookup, docs.get(r.id), (id) => removed.has(id)), ...claimOverlaps(r, addedClaims, lookup, docs.get(r.id))];
    diagnostics.push(...overlaps);
    if (r.meta.target && overlaps.length === 0) addedClaims.add(r.meta.target, r.id, r.claims);
  }

  if (diagnostics.length === 0) {
    const gone = [...removed].filter((id) => !added.has(id));
    const view: CheckView = {
      get: lookup,
      dependentsOf: (id) => [...(prev.dependents.get(id) ?? [])].filter((d) => lookup(d) !== undefined),
      onTarget: (name) => [...(prev.byTarget.get(name) ?? [])].filter((d) => lookup(d) !== undefined),
    };
    diagnostics.push(...crossCheck(view, [...added.values()], gone, docs, subscriptionPointer(options.registry)));
  }

  let applied = false;
  return {
    commit,
    base: prev.commit,
    changes,
    diagnostics: sortDiagnostics(diagnostics),
    added,
    removed,
    filesRead: newFiles.length + again.length,
    get: lookup,
    apply() {
      if (applied) return prev;
      applied = true;
      // Removing a file's last resource drops its index entry too.
      for (const id of removed) removeFromSet(prev, id);
      for (const r of added.values()) addToSet(prev, r);
      prev.commit = commit;
      return prev;
    },
  };
}

// ---- files and attachments --------------------------------------------------

/** Blobs read ahead: at most `window` reads in flight beyond the one awaited, started half a window at a time (one write to git for each batch). */
class ReadAhead<E, T> {
  readonly #started: Array<Promise<T>> = [];
  readonly #entries: E[];
  readonly #window: number;
  readonly #read: (entry: E) => Promise<T>;

  constructor(entries: E[], window: number, read: (entry: E) => Promise<T>) {
    this.#entries = entries;
    this.#window = window;
    this.#read = read;
  }

  get(i: number): Promise<T> {
    const refill = this.#started.length <= i + this.#window / 2;
    for (let j = this.#started.length; refill && j <= Math.min(i + this.#window, this.#entries.length - 1); j++) {
      const read = this.#read(this.#entries[j]!);
      read.catch(() => {}); // a read that fails before its turn is reported when awaited, not as unhandled
      this.#started.push(read);
    }
    const read = this.#started[i]!;
    delete this.#started[i]; // (a hole: the bytes go once parsed)
    return read;
  }
}

/** One turn of the event loop: messages from workers are delivered there, not between promise reactions. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Files read ahead of the one being parsed during a full load. */
const READ_AHEAD = 16;
/** With workers: files read and sent ahead, enough to keep every worker busy. */
const PARALLEL_READ_AHEAD = 32;
const DEFAULT_PARALLEL_MIN_BYTES = 4 * 1024 * 1024;

/** A pool when the load is asked to and is large enough to gain from one. */
function startPool(parallel: ParallelLoad | undefined, files: number, bytes: number, hashes: boolean): ParsePool | undefined {
  if (!parallel) return undefined;
  // The main thread parses too (and takes every result): one core for it, the rest for workers.
  const workers = Math.min(parallel.workers ?? Math.max(1, availableParallelism() - 1), files);
  if (workers < 1 || bytes < (parallel.minBytes ?? DEFAULT_PARALLEL_MIN_BYTES)) return undefined;
  return new ParsePool(workers, { providers: parallel.providers, hashes, ...(parallel.schemasDir ? { schemasDir: parallel.schemasDir } : {}) });
}

async function parseFile(path: string, oid: string, size: number, options: LoadOptions, limits: LoadLimits): Promise<{ resources: ParsedResource[]; diagnostics: Diagnostic[] }> {
  return parseConfigFile(path, await readConfigFile(path, oid, size, options, limits), options.registry, limits);
}

/** A config file's bytes, or the diagnostic that it is too large to read. */
async function readConfigFile(path: string, oid: string, size: number, options: LoadOptions, limits: LoadLimits): Promise<Buffer | Diagnostic> {
  const tooLarge = (bytes: number): Diagnostic => ({ severity: 'error', file: path, line: 1, col: 1, message: `file is ${bytes} bytes, over the ${limits.maxFileBytes}-byte limit for config files; split it up` });
  if (size > limits.maxFileBytes) return tooLarge(size);
  const bytes = await options.objects.readBlob(oid);
  return bytes.length > limits.maxFileBytes ? tooLarge(bytes.length) : bytes;
}

type PathResolver = (repoPath: string) => Promise<{ oid: string; size: number; mode: string } | undefined>;

/** What a resource that references no repo file carries (shared: nothing writes to it). */
const NO_ATTACHMENTS: Record<string, Attachment> = Object.freeze({});
const NO_FILE_REFS: readonly string[] = [];

/**
 * Resolves a resource's file references (e.g. ssh.File `source:`) to blobs at the same commit.
 * Without any, it finishes at once, no promise: most resources reference no file.
 */
function attach(r: ParsedResource, options: LoadOptions, limits: LoadLimits, resolve: PathResolver, diagnostics: Diagnostic[]): LoadedResource | undefined | Promise<LoadedResource | undefined> {
  const fileRefs = options.registry.kinds.get(r.kind)?.fileRefs ?? NO_FILE_REFS;
  for (const pointer of fileRefs) if (typeof getPointer(r.spec, pointer) === 'string') return attachFiles(r, fileRefs, options, limits, resolve, diagnostics);
  return finishAttach(r, NO_ATTACHMENTS, options.registry, diagnostics, options.hashSpecs === false ? UNHASHED : (r as Partial<ReceivedResource>).specHash);
}

async function attachFiles(r: ParsedResource, fileRefs: readonly string[], options: LoadOptions, limits: LoadLimits, resolve: PathResolver, diagnostics: Diagnostic[]): Promise<LoadedResource | undefined> {
  const attachments: Record<string, Attachment> = {};
  let ok = true;
  for (const pointer of fileRefs) {
    const ref = getPointer(r.spec, pointer);
    if (typeof ref !== 'string') continue;
    const report = (message: string): void => {
      ok = false;
      diagnostics.push({ severity: 'error', ...r.doc.positionOf(`/spec${pointer}`), id: r.id, message });
    };
    const repoPath = resolveRepoPath(r.file, ref, options.scope);
    if (!repoPath) {
      report(`"${ref}" points outside the config folder${options.scope ? ` (${options.scope})` : ''}; paths are relative to this file's folder, or to the config root when they start with /`);
      continue;
    }
    const entry = await resolve(repoPath);
    if (!entry) report(`"${ref}" (${repoPath}) does not exist at this commit`);
    else if (entry.mode === MODE_SYMLINK) report(`"${ref}" (${repoPath}) is a symlink; Plumb reads only regular files`);
    else if (entry.size > limits.maxAttachmentBytes) report(`"${ref}" is ${entry.size} bytes, over the ${limits.maxAttachmentBytes}-byte limit`);
    else attachments[pointer] = { path: repoPath, oid: entry.oid, size: entry.size, read: () => options.objects.readBlob(entry.oid) };
  }
  return ok ? finishAttach(r, attachments, options.registry, diagnostics, options.hashSpecs === false ? UNHASHED : undefined) : undefined;
}

/** A templated resource with its template rendered from its Target's vars (src/load/template.ts). */
async function rendered(r: LoadedResource, parsed: ParsedResource, options: LoadOptions, limits: LoadLimits, targetAt: (id: string) => { spec: unknown } | undefined, diagnostics: Diagnostic[]): Promise<LoadedResource | undefined> {
  const target = r.meta.target ? targetAt(targetId(r.meta.target)) : undefined;
  const spec = await renderResourceTemplate(r, parsed.doc, options.registry.kinds.get(r.kind)!.template!, target, limits.maxAttachmentBytes, diagnostics);
  return spec && loadedResource({ ...r, spec }, r.attachments, r.claims, options.hashSpecs === false ? UNHASHED : undefined);
}

/** The specHash of a load asked not to hash (LoadOptions.hashSpecs: false). */
const UNHASHED = '';

/** `hash`: specHash as a worker computed it (only for a resource without attachments), or UNHASHED. */
function finishAttach(r: ParsedResource, attachments: Record<string, Attachment>, registry: SchemaRegistry, diagnostics: Diagnostic[], hash?: string): LoadedResource | undefined {
  const claims = claimsOf(r, registry, diagnostics);
  if (!claims) return undefined;
  const subscribed = registry.kinds.get(r.kind)?.subscribes?.(r.spec);
  if (subscribed && subscribed.length > 0) r.meta = withSubscriptions(r.meta, subscribed.map((s) => s.id));
  return loadedResource(r, attachments, claims, hash);
}

/**
 * What a resource subscribes to (KindHandler.subscribes) is also what it depends
 * on: it acts after them. New lists: the metadata's empty ones are shared.
 */
function withSubscriptions(meta: ResourceMeta, ids: string[]): ResourceMeta {
  const subscribes = [...new Set(ids)];
  return { ...meta, dependsOn: [...new Set([...meta.dependsOn, ...subscribes])], subscribes };
}

/** Where a resource names what it subscribes to (`/spec/restartOn/0`), for diagnostics. */
function subscriptionPointer(registry: SchemaRegistry): (r: LoadedResource, id: string) => string | undefined {
  return (r, id) => {
    const found = registry.kinds.get(r.kind)?.subscribes?.(r.spec).find((s) => s.id === id);
    return found ? `/spec${found.pointer}` : undefined;
  };
}

/**
 * Every LoadedResource is built by this one literal: with spreads each of 100k
 * resources got a hidden class (and descriptor array) of its own, ~0.4 KB apiece.
 */
function loadedResource(r: Omit<LoadedResource, 'attachments' | 'specHash' | 'claims'>, attachments: Record<string, Attachment>, claims: Claim[], hash?: string): LoadedResource {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    meta: r.meta,
    spec: r.spec,
    file: r.file,
    line: r.line,
    col: r.col,
    attachments,
    specHash: hash ?? specHash(r.spec, r.meta.target, attachments),
    claims,
  };
}

/** The same resource with other claims (same hash: claims are derived from the spec). */
function withClaims(r: LoadedResource, claims: Claim[]): LoadedResource {
  return { id: r.id, kind: r.kind, name: r.name, meta: r.meta, spec: r.spec, file: r.file, line: r.line, col: r.col, attachments: r.attachments, specHash: r.specHash, claims };
}

/** The kind's claims for a parsed resource; a spec the kind cannot make sense of is a diagnostic at its field. */
function claimsOf(r: ParsedResource, registry: SchemaRegistry, diagnostics: Diagnostic[]): Claim[] | undefined {
  const claims = registry.kinds.get(r.kind)?.claims;
  if (!claims) return [];
  try {
    return claims(r.spec, r.name);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    diagnostics.push({ severity: 'error', ...r.doc.positionOf(`/spec${err.pointer ?? ''}`), id: r.id, message: err.message });
    return undefined;
  }
}

/**
 * Overlaps of `r`'s claims with those already in `index` (minus owners `ignore`
 * says are going away), reported at `r` and naming the other document.
 */
function claimOverlaps(r: LoadedResource, index: ClaimIndex, get: (id: string) => LoadedResource | undefined, parsed: ParsedResource | undefined, ignore?: (id: string) => boolean): Diagnostic[] {
  const target = r.meta.target;
  if (!target || r.claims.length === 0) return [];
  const diagnostics: Diagnostic[] = [];
  const reported = new Set<string>();
  for (const claim of r.claims) {
    for (const other of index.overlaps(target, r.id, claim, ignore)) {
      if (reported.has(other.id)) continue;
      reported.add(other.id);
      const o = get(other.id);
      const where = o ? ` at ${o.file}:${o.line}:${o.col}` : '';
      const at = parsed ? parsed.doc.positionOf(`/spec${claim.pointer ?? ''}`) : { file: r.file, line: r.line, col: r.col };
      const clash =
        claim.label === other.label
          ? `${r.id} and ${other.id}${where} both claim ${claim.label} on target ${target}`
          : `${r.id} claims ${claim.label} on target ${target}, which overlaps ${other.label} of ${other.id}${where}`;
      diagnostics.push({ severity: 'error', ...at, id: r.id, message: `${clash}; an object has one owner: merge them into one resource or remove one` });
    }
  }
  return diagnostics;
}

async function reattach(r: LoadedResource, objects: ObjectReader, resolve: PathResolver, limits: LoadLimits, diagnostics: Diagnostic[]): Promise<LoadedResource | undefined> {
  const attachments: Record<string, Attachment> = {};
  for (const [pointer, old] of Object.entries(r.attachments)) {
    const entry = await resolve(old.path);
    const problem = !entry
      ? `spec${pointer} names ${old.path}, which this commit deletes`
      : entry.size > limits.maxAttachmentBytes
        ? `${old.path} is ${entry.size} bytes, over the ${limits.maxAttachmentBytes}-byte limit`
        : undefined;
    if (problem || !entry) {
      diagnostics.push({ severity: 'error', file: r.file, line: r.line, col: r.col, id: r.id, message: problem! });
      return undefined;
    }
    attachments[pointer] = { path: old.path, oid: entry.oid, size: entry.size, read: () => objects.readBlob(entry.oid) };
  }
  return loadedResource(r, attachments, r.claims);
}

/** `ref` relative to the defining file's folder, or to the config root when it starts with '/'; undefined if it escapes. */
export function resolveRepoPath(file: string, ref: string, scope: string): string | undefined {
  // '/x' is relative to the scope root, which is '' for the whole repo (posix.join('', '/x') would stay absolute).
  const joined = ref.startsWith('/') ? posix.join(scope === '' ? '.' : scope, ref.replace(/^\/+/, '')) : posix.join(posix.dirname(file), ref);
  const normal = posix.normalize(joined).replace(/^\.\//, '');
  if (normal.startsWith('../') || normal === '..' || posix.isAbsolute(normal)) return undefined;
  if (scope !== '' && !(normal === scope || normal.startsWith(scope + '/'))) return undefined;
  return normal;
}

function refusedEntry(path: string, mode: string): Diagnostic | undefined {
  if (mode === MODE_SYMLINK) return { severity: 'error', file: path, line: 1, col: 1, message: 'symlinks are not allowed in the config repo (they could point anywhere); commit the file itself' };
  if (mode === MODE_SUBMODULE) return { severity: 'error', file: path, line: 1, col: 1, message: 'submodules are not allowed in the config repo; vendor the files instead' };
  return undefined;
}

function duplicate(r: ParsedResource, first: { file: string; line: number; col: number }): Diagnostic {
  return { severity: 'error', ...r.doc.position, id: r.id, message: `${r.id} is defined twice: here and at ${first.file}:${first.line}:${first.col}` };
}

// ---- the desired set's indexes ----------------------------------------------

function addToSet(set: DesiredSet, r: LoadedResource): void {
  set.resources.set(r.id, r);
  pushIndex(set.byFile, r.file, r.id);
  for (const a of Object.values(r.attachments)) pushIndex(set.byAttachment, a.path, r.id);
  for (const dep of r.meta.dependsOn) pushSetIndex(set.dependents, dep, r.id);
  if (r.meta.target) {
    pushSetIndex(set.byTarget, r.meta.target, r.id);
    if (r.claims.length > 0) set.claims.add(r.meta.target, r.id, r.claims);
  }
}

function removeFromSet(set: DesiredSet, id: string): void {
  const r = set.resources.get(id);
  if (!r) return;
  set.resources.delete(id);
  pullIndex(set.byFile, r.file, id);
  for (const a of Object.values(r.attachments)) pullIndex(set.byAttachment, a.path, id);
  for (const dep of r.meta.dependsOn) pullSetIndex(set.dependents, dep, id);
  if (r.meta.target) {
    pullSetIndex(set.byTarget, r.meta.target, id);
    if (r.claims.length > 0) set.claims.remove(r.meta.target, id, r.claims);
  }
}

/** Drops emptied entries too, so a delta-applied set equals a fresh full load (and does not grow forever). */
function pullSetIndex(index: Map<string, Set<string>>, key: string, id: string): void {
  const s = index.get(key);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) index.delete(key);
}

function pushIndex(index: Map<string, string[]>, key: string, id: string): void {
  const list = index.get(key);
  if (list) {
    if (!list.includes(id)) list.push(id);
  } else index.set(key, [id]);
}

function pullIndex(index: Map<string, string[]>, key: string, id: string): void {
  const list = index.get(key);
  if (!list) return;
  const i = list.indexOf(id);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) index.delete(key);
}

function pushSetIndex(index: Map<string, Set<string>>, key: string, id: string): void {
  let s = index.get(key);
  if (!s) index.set(key, (s = new Set()));
  s.add(id);
}

// ---- cross-file checks --------------------------------------------------------

interface CheckView {
  get(id: string): LoadedResource | undefined;
  dependentsOf(id: string): string[];
  onTarget(name: string): string[];
}

function setView(set: DesiredSet): CheckView {
  return {
    get: (id) => set.resources.get(id),
    dependentsOf: (id) => [...(set.dependents.get(id) ?? [])],
    onTarget: (name) => [...(set.byTarget.get(name) ?? [])],
  };
}

/**
 * Checks references between documents: targets exist and match the kind's
 * provider, dependsOn points at something, no cycles, renames don't collide.
 * `checked` are the resources that are new or changed; `gone` are ids removed
 * by this commit whose dependents must now complain.
 */
function crossCheck(view: CheckView, checked: LoadedResource[], gone: string[], docs: Map<string, ParsedResource>, subscribedAt: (r: LoadedResource, id: string) => string | undefined): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const at = (r: LoadedResource, pointer: string): Position => {
    const doc = docs.get(r.id)?.doc;
    return doc ? doc.positionOf(pointer) : { file: r.file, line: r.line, col: r.col };
  };
  const claimedPrevious = new Map<string, string>();

  for (const r of checked) {
    if (r.kind !== TARGET_KIND) {
      const targetName = r.meta.target!;
      const target = view.get(targetId(targetName));
      if (!target) {
        diagnostics.push({ severity: 'error', ...at(r, '/metadata/target'), id: r.id, message: `target "${targetName}" is not defined: add a Target named ${targetName}` });
      } else {
        const provider = (target.spec as { provider: string }).provider;
        if (!r.kind.startsWith(`${provider}.`)) {
          diagnostics.push({ severity: 'error', ...at(r, '/metadata/target'), id: r.id, message: `${r.kind} needs a target with provider "${r.kind.split('.')[0]}", but Target/${targetName} uses "${provider}"` });
        }
      }
    }
    const subscribes = new Set(r.meta.subscribes);
    r.meta.dependsOn.forEach((dep, i) => {
      // A subscription (restartOn) is reported where the spec names it.
      const sub = subscribes.has(dep) ? subscribedAt(r, dep) : undefined;
      const pointer = sub ?? `/metadata/dependsOn/${i}`;
      const field = sub !== undefined ? `${sub.split('/')[2]}` : 'dependsOn';
      const other = view.get(dep);
      if (dep === r.id) diagnostics.push({ severity: 'error', ...at(r, pointer), id: r.id, message: sub !== undefined ? `a resource cannot act on its own changes (${field})` : 'a resource cannot depend on itself' });
      else if (!other) diagnostics.push({ severity: 'error', ...at(r, pointer), id: r.id, message: `${field} "${dep}": no such resource in this commit` });
      else if (sub !== undefined && other.meta.target !== r.meta.target) {
        diagnostics.push({ severity: 'error', ...at(r, pointer), id: r.id, message: `${field} "${dep}" is on target ${other.meta.target ?? '(none)'}, not ${r.meta.target}: a resource acts only on changes on its own target` });
      }
    });
    r.meta.previousNames.forEach((old, i) => {
      const oldId = `${r.kind}/${old}`;
      if (view.get(oldId)) diagnostics.push({ severity: 'error', ...at(r, `/metadata/previousNames/${i}`), id: r.id, message: `previousNames lists "${old}", but ${oldId} still exists; remove one of them` });
      const other = claimedPrevious.get(oldId);
      if (other) diagnostics.push({ severity: 'error', ...at(r, `/metadata/previousNames/${i}`), id: r.id, message: `${other} already claims "${old}" as a previous name` });
      claimedPrevious.set(oldId, r.id);
    });
  }

  for (const id of gone) {
    for (const dependent of view.dependentsOf(id)) {
      const d = view.get(dependent)!;
      if (checked.includes(d)) continue; // already reported above
      const how = d.meta.subscribes?.includes(id) ? `acts on changes of "${id}" (${subscribedAt(d, id)?.split('/')[2] ?? 'subscribes'})` : `dependsOn "${id}"`;
      diagnostics.push({ severity: 'error', file: d.file, line: d.line, col: d.col, id: d.id, message: `${how}, which this commit removes` });
    }
    if (id.startsWith(`${TARGET_KIND}/`)) {
      const name = id.slice(TARGET_KIND.length + 1);
      for (const onIt of view.onTarget(name)) {
        const d = view.get(onIt)!;
        if (checked.includes(d)) continue;
        diagnostics.push({ severity: 'error', file: d.file, line: d.line, col: d.col, id: d.id, message: `target "${name}" is removed by this commit but ${d.id} still uses it` });
      }
    }
  }

  diagnostics.push(...findCycles(view, checked, at));
  return diagnostics;
}

/** Depth-first search from the checked resources; each cycle is reported once, at its first member. */
function findCycles(view: CheckView, from: LoadedResource[], at: (r: LoadedResource, pointer: string) => Position): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const done = new Set<string>();
  const onPath = new Map<string, number>();
  const path: string[] = [];
  const reported = new Set<string>();
  const visit = (id: string): void => {
    if (done.has(id)) return;
    const r = view.get(id);
    if (!r) return;
    onPath.set(id, path.length);
    path.push(id);
    for (const dep of r.meta.dependsOn) {
      const index = onPath.get(dep);
      if (index !== undefined) {
        const cycle = path.slice(index);
        const key = [...cycle].sort().join(' ');
        if (!reported.has(key)) {
          reported.add(key);
          const first = view.get(cycle[0]!)!;
          const i = first.meta.dependsOn.indexOf(cycle[1] ?? cycle[0]!);
          diagnostics.push({ severity: 'error', ...at(first, `/metadata/dependsOn/${Math.max(i, 0)}`), id: first.id, message: `dependsOn cycle: ${[...cycle, cycle[0]].join(' -> ')}` });
        }
      } else visit(dep);
    }
    path.pop();
    onPath.delete(id);
    done.add(id);
  };
  for (const r of from) visit(r.id);
  return diagnostics;
}

function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}
