import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GitError } from '../errors.js';
import { fileBlobId, gitBlobId, type ObjectFormat } from '../util/git-blob.js';
import type { ObjectInfo } from './cat-file.js';
import { git, gitEnv, MODE_SUBMODULE, MODE_SYMLINK, type FileChange, type GitObjects, type TreeEntry } from './git.js';

/** The name the working tree goes by where a commit id would be: loads, plans, messages. No ref can be spelled like it by accident. */
export const WORKTREE = '(worktree)';

const MODE_FILE = '100644';
const MODE_EXECUTABLE = '100755';
/** Files hashed at once while listing: enough to overlap the reads, not enough to run out of descriptors. */
const HASH_CONCURRENCY = 32;

/** One listing of the working tree under a scope, by path. */
interface Listing {
  scope: string;
  entries: TreeEntry[];
  byPath: Map<string, TreeEntry>;
}

/**
 * The files of a working tree as git objects, for `validate --worktree` and
 * `plan --worktree` (editor and pre-commit hooks, before a commit exists):
 * tracked, modified and untracked-but-not-ignored files, as `git ls-files`
 * lists them; files deleted from the working tree are gone. Blob ids are
 * computed here, as `git hash-object` would, so the loader cannot tell a
 * working tree from a commit. Everything not at `WORKTREE` (the base of a plan)
 * is read from the repo's objects.
 */
export class WorktreeObjects {
  /** The top of the working tree; every path is relative to it, like a commit's. */
  readonly root: string;
  readonly #objects: GitObjects;
  readonly #env: NodeJS.ProcessEnv;
  readonly #timeoutMs: number;
  readonly #format: ObjectFormat;
  readonly #listings = new Map<string, Promise<Listing>>();
  /** Where the bytes of each blob id seen in the working tree are, so readBlob can find them. */
  readonly #files = new Map<string, { path: string; symlink: boolean }>();
  /** Folders known to be real folders inside the root (not symlinks out of it). */
  readonly #folders = new Map<string, Promise<boolean>>();

  private constructor(root: string, objects: GitObjects, options: { env: NodeJS.ProcessEnv; timeoutMs: number; format: ObjectFormat }) {
    this.root = root;
    this.#objects = objects;
    this.#env = options.env;
    this.#timeoutMs = options.timeoutMs;
    this.#format = options.format;
  }

  /** The working tree of the repo at `dir`; undefined when it has none (a bare repo, a mirror). */
  static async open(dir: string, objects: GitObjects, options: { env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<WorktreeObjects | undefined> {
    const env = gitEnv(options.env);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const rev = (args: string[]): Promise<string> => git(dir, env, timeoutMs).raw(['rev-parse', ...args]).then((out) => out.trim());
    let root: string;
    try {
      if ((await rev(['--is-bare-repository'])) === 'true') return undefined;
      root = await rev(['--show-toplevel']);
    } catch (err) {
      throw new GitError(`${dir}: not a git working tree: ${(err as Error).message.trim().split('\n')[0]}`, { cause: err });
    }
    if (root === '') return undefined; // inside .git itself
    // Older gits know no --show-object-format: they know only sha1 repos.
    const format = await rev(['--show-object-format']).catch(() => 'sha1');
    return new WorktreeObjects(root, objects, { env, timeoutMs, format: format === 'sha256' ? 'sha256' : 'sha1' });
  }

  /** `WORKTREE` stands for itself; anything else is a commit of the repo. */
  resolveCommit(rev: string): Promise<string> {
    return rev === WORKTREE ? Promise.resolve(WORKTREE) : this.#objects.resolveCommit(rev);
  }

  async listTree(commit: string, scope: string): Promise<TreeEntry[]> {
    if (commit !== WORKTREE) return this.#objects.listTree(commit, scope);
    return (await this.#listing(scope)).entries;
  }

  /** Bytes of a blob id: from the working tree when it was listed there (checked to be unchanged), else from the repo. */
  async readBlob(oid: string): Promise<Buffer> {
    const file = this.#files.get(oid);
    if (!file) return this.#objects.readBlob(oid);
    const full = join(this.root, file.path);
    const bytes = file.symlink ? Buffer.from(await readlink(full, { encoding: 'buffer' })) : await readFile(full);
    // Read again after listing: an editor saving meanwhile must not make a load mix two versions of one file.
    if (gitBlobId(bytes, this.#format) !== oid) throw new GitError(`${file.path} changed while Plumb was reading the working tree; run again`);
    return bytes;
  }

  async pathInfo(commit: string, path: string): Promise<ObjectInfo | undefined> {
    if (commit !== WORKTREE) return this.#objects.pathInfo(commit, path);
    const entry = (await this.#listingFor(path)).byPath.get(path);
    return entry && { oid: entry.oid, type: entry.type, size: entry.size };
  }

  /**
   * What changed under `scope` from a commit to the working tree: the two
   * listings compared path by path (git's own diff against a working tree leaves
   * out untracked files and names no blob ids for modified ones). A moved file is
   * a deletion and an addition, which the loader treats the same as a rename.
   */
  async diff(from: string, to: string, scope: string): Promise<FileChange[]> {
    if (to !== WORKTREE) return this.#objects.diff(from, to, scope);
    if (from === WORKTREE) return [];
    const [before, after] = await Promise.all([this.#objects.listTree(from, scope), this.#listing(scope)]);
    const old = new Map(before.map((e) => [e.path, e]));
    const changes: FileChange[] = [];
    for (const now of after.entries) {
      const was = old.get(now.path);
      if (!was) changes.push({ status: 'A', newPath: now.path, oldMode: '000000', newMode: now.mode, oldOid: '', newOid: now.oid });
      else if (was.oid !== now.oid || was.mode !== now.mode) {
        changes.push({ status: objectKind(was.mode) === objectKind(now.mode) ? 'M' : 'T', oldPath: was.path, newPath: now.path, oldMode: was.mode, newMode: now.mode, oldOid: was.oid, newOid: now.oid });
      }
    }
    for (const was of before) {
      if (!after.byPath.has(was.path)) changes.push({ status: 'D', oldPath: was.path, oldMode: was.mode, newMode: '000000', oldOid: was.oid, newOid: '' });
    }
    return changes;
  }

  close(): void {
    this.#objects.close();
  }

  /** A listing that covers `path`: one already made for an enclosing scope, else one of just that path. */
  #listingFor(path: string): Promise<Listing> {
    for (const [scope, listing] of this.#listings) if (within(path, scope)) return listing;
    return this.#listing(path);
  }

  #listing(scope: string): Promise<Listing> {
    let listing = this.#listings.get(scope);
    if (!listing) {
      listing = this.#list(scope);
      this.#listings.set(scope, listing);
    }
    return listing;
  }

  async #list(scope: string): Promise<Listing> {
    // Literal: a scope or file name with `*` or `?` in it names that path, not a pattern.
    const args = ['ls-files', '-z', '--cached', '--others', '--exclude-standard'];
    if (scope !== '') args.push('--', `:(literal)${scope}`);
    let out: string;
    try {
      out = await git(this.root, this.#env, this.#timeoutMs).raw(args);
    } catch (err) {
      throw new GitError(`git ls-files failed in ${this.root}: ${(err as Error).message.trim().split('\n')[0]}`, { cause: err });
    }
    // A conflicted file is listed once per stage; sorted like ls-tree, so messages come in the same order.
    const paths = [...new Set(out.split('\0').filter((p) => p !== ''))].sort(byteOrder);
    const found = await mapConcurrent(paths, HASH_CONCURRENCY, (path) => this.#entry(path));
    const entries = found.filter((e): e is TreeEntry => e !== undefined && within(e.path, scope));
    return { scope, entries, byPath: new Map(entries.map((e) => [e.path, e])) };
  }

  /** The tree entry a commit of the working tree would have for `path`; undefined if it is gone. */
  async #entry(listed: string): Promise<TreeEntry | undefined> {
    // An untracked repository inside this one is listed as `dir/`: git would add it as a submodule.
    const path = listed.endsWith('/') ? listed.slice(0, -1) : listed;
    const slash = path.lastIndexOf('/');
    // Under a folder replaced by a symlink, the file is not in the working tree (git calls it "beyond a symbolic link").
    if (slash > 0 && !(await this.#realFolder(path.slice(0, slash)))) return undefined;
    const full = join(this.root, path);
    const stat = await lstat(full).catch(missingIsUndefined);
    if (!stat) return undefined; // deleted from the working tree: not loaded
    if (stat.isDirectory()) return { mode: MODE_SUBMODULE, type: 'commit', oid: '', size: 0, path };
    if (stat.isSymbolicLink()) {
      const target = Buffer.from(await readlink(full, { encoding: 'buffer' }));
      return this.#blob(path, MODE_SYMLINK, gitBlobId(target, this.#format), target.length, true);
    }
    if (!stat.isFile()) return undefined; // a socket or fifo: git does not track those either
    const mode = stat.mode & 0o111 ? MODE_EXECUTABLE : MODE_FILE;
    return this.#blob(path, mode, await fileBlobId(full, stat.size, this.#format), stat.size, false);
  }

  #blob(path: string, mode: string, oid: string, size: number, symlink: boolean): TreeEntry {
    if (!this.#files.has(oid)) this.#files.set(oid, { path, symlink });
    return { mode, type: 'blob', oid, size, path };
  }

  /** Whether `folder` and every folder above it are real folders (not symlinks) in the working tree. */
  #realFolder(folder: string): Promise<boolean> {
    let answer = this.#folders.get(folder);
    if (!answer) {
      const slash = folder.lastIndexOf('/');
      const parent = slash > 0 ? this.#realFolder(folder.slice(0, slash)) : Promise.resolve(true);
      answer = parent.then(async (ok) => ok && Boolean((await lstat(join(this.root, folder)).catch(missingIsUndefined))?.isDirectory()));
      this.#folders.set(folder, answer);
    }
    return answer;
  }
}

/** What git's `T` (type change) compares: a file (whatever its x bit), a symlink or a submodule. */
function objectKind(mode: string): string {
  return mode === MODE_SYMLINK || mode === MODE_SUBMODULE ? mode : 'file';
}

/** Whether a repo path is `scope` or inside it ('' is the whole repo). */
function within(path: string, scope: string): boolean {
  return scope === '' || path === scope || path.startsWith(scope + '/');
}

function missingIsUndefined(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
  throw new GitError(`cannot read the working tree: ${err.message}`, { cause: err });
}

/** Git sorts paths by their bytes, not by locale. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** `fn` over `items`, at most `limit` at a time, results in order. */
async function mapConcurrent<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
