import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { GitError, RevisionError } from '../errors.js';
import { CatFile, type ObjectInfo } from './cat-file.js';
import { ALLOWED_PROTOCOLS, checkBranch, checkRemote, checkScopePath, redactUrl } from './remote.js';

/** One entry of `git ls-tree -r -l`. */
export interface TreeEntry {
  mode: string;
  type: 'blob' | 'commit' | 'tree';
  oid: string;
  size: number;
  /** Path relative to the repo root. */
  path: string;
}

/** One changed path of `git diff --raw -M` between two commits. */
export interface FileChange {
  status: 'A' | 'M' | 'D' | 'R' | 'T' | 'C';
  /** Old path (D, M, R, T); undefined for A. */
  oldPath?: string;
  /** New path (A, M, R, T, C); undefined for D. */
  newPath?: string;
  oldMode: string;
  newMode: string;
  oldOid: string;
  newOid: string;
}

export const MODE_SYMLINK = '120000';
export const MODE_SUBMODULE = '160000';

const ZERO_OID = /^0+$/;

/** The environment every git child gets: no prompts, no ext:: or other helpers, no user/system config surprises. */
export function gitEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'SSH_AUTH_SOCK', 'TMPDIR']) if (base[key] !== undefined) env[key] = base[key];
  env.GIT_ALLOW_PROTOCOL = ALLOWED_PROTOCOLS;
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_CONFIG_NOSYSTEM = '1';
  return env;
}

const GUARDED_ENV = ['GIT_ALLOW_PROTOCOL', 'GIT_TERMINAL_PROMPT', 'GIT_CONFIG_NOSYSTEM'];

export function git(baseDir: string, env: NodeJS.ProcessEnv, timeoutMs: number, signal?: AbortSignal): SimpleGit {
  // No `unsafe` flags: simple-git keeps blocking option injection, custom binaries and ssh command overrides.
  return simpleGit({
    baseDir,
    maxConcurrentProcesses: 4,
    timeout: { block: timeoutMs },
    allowEnvironment: GUARDED_ENV,
    ...(signal ? { abort: signal } : {}),
  }).env(env);
}

/**
 * Read-only access to the objects of a git repository (the bare mirror, or a
 * local repo for offline `validate`/`plan`). Never touches a working tree.
 */
export class GitObjects {
  readonly gitDir: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #timeoutMs: number;
  readonly #catFile: CatFile;

  constructor(gitDir: string, options: { env: NodeJS.ProcessEnv; timeoutMs?: number }) {
    this.gitDir = gitDir;
    this.#env = gitEnv(options.env);
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#catFile = new CatFile(gitDir, this.#env);
  }

  #git(): SimpleGit {
    return git(this.gitDir, this.#env, this.#timeoutMs);
  }

  /** Full commit id of a revision, or RevisionError. */
  async resolveCommit(rev: string): Promise<string> {
    if (rev.startsWith('-') || /[\0\n\r]/.test(rev)) throw new RevisionError(`"${rev}" is not a revision`);
    const info = await this.#catFile.info(`${rev}^{commit}`);
    if (!info) throw new RevisionError(`revision "${rev}" does not exist in ${this.gitDir}`);
    return info.oid;
  }

  /** Every entry under `scope` at `commit` (`ls-tree -r -z -l`), paths relative to the repo root. */
  async listTree(commit: string, scope: string): Promise<TreeEntry[]> {
    const args = ['ls-tree', '-r', '-z', '-l', '--full-tree', commit];
    if (scope !== '') args.push('--', scope);
    const out = await this.#raw(args);
    const entries: TreeEntry[] = [];
    for (const record of out.split('\0')) {
      if (record === '') continue;
      const tab = record.indexOf('\t');
      const [mode, type, oid, size] = record.slice(0, tab).split(/ +/);
      entries.push({ mode: mode!, type: type as TreeEntry['type'], oid: oid!, size: size === '-' ? 0 : Number(size), path: record.slice(tab + 1) });
    }
    return entries;
  }

  /**
   * What changed under `scope` between two commits: `git diff --raw -z -M`, the
   * raw form of --name-status that also gives modes and blob ids, so the delta
   * needs no second listing.
   */
  async diff(from: string, to: string, scope: string): Promise<FileChange[]> {
    const args = ['diff', '--raw', '-z', '-M', '--no-abbrev', from, to];
    if (scope !== '') args.push('--', scope);
    let out: string;
    try {
      out = await this.#raw(args);
    } catch (err) {
      throw new GitError(`cannot diff ${from.slice(0, 12)}..${to.slice(0, 12)}: ${(err as Error).message}`, { cause: err });
    }
    const fields = out.split('\0');
    const changes: FileChange[] = [];
    for (let i = 0; i < fields.length; ) {
      const header = fields[i++];
      if (!header) continue;
      // :100644 100644 <old> <new> M
      const [oldMode, newMode, oldOid, newOid, statusField] = header.slice(1).split(' ');
      const status = statusField![0] as FileChange['status'];
      const first = fields[i++]!;
      const change: FileChange = { status, oldMode: oldMode!, newMode: newMode!, oldOid: oldOid!, newOid: newOid! };
      if (status === 'R' || status === 'C') {
        change.oldPath = first;
        change.newPath = fields[i++]!;
        if (status === 'C') delete change.oldPath;
      } else if (status === 'A') {
        change.newPath = first;
      } else if (status === 'D') {
        change.oldPath = first;
      } else {
        change.oldPath = first;
        change.newPath = first;
      }
      if (ZERO_OID.test(change.oldOid)) change.oldOid = '';
      if (ZERO_OID.test(change.newOid)) change.newOid = '';
      changes.push(change);
    }
    return changes;
  }

  /** Blob contents by id. */
  readBlob(oid: string): Promise<Buffer> {
    return this.#catFile.read(oid);
  }

  /** Id, type and size of `<commit>:<path>`, or undefined if absent. */
  async pathInfo(commit: string, path: string): Promise<ObjectInfo | undefined> {
    if (!/[\n\r]/.test(path)) return this.#catFile.info(`${commit}:${path}`);
    // cat-file reads one name per line: look a path with a line break up in its folder's listing instead.
    const folder = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    const entry = (await this.listTree(commit, folder)).find((e) => e.path === path);
    return entry && { oid: entry.oid, type: entry.type, size: entry.size };
  }

  /** Whether `ancestor` is reachable from `commit` (false after a force-push rewrote it away). */
  async isAncestor(ancestor: string, commit: string): Promise<boolean> {
    // Not `merge-base --is-ancestor`: its answer is the exit code, and simple-git resolves a silent exit 1.
    try {
      const [a, base] = await Promise.all([this.resolveCommit(ancestor), this.#raw(['merge-base', ancestor, commit])]);
      return base.trim() === a;
    } catch {
      return false;
    }
  }

  async hasCommit(commit: string): Promise<boolean> {
    return (await this.#catFile.info(`${commit}^{commit}`)) !== undefined;
  }

  async #raw(args: string[]): Promise<string> {
    try {
      return await this.#git().raw(args);
    } catch (err) {
      throw new GitError(`git ${args[0]} failed: ${firstLine((err as Error).message)}`, { cause: err });
    }
  }

  close(): void {
    this.#catFile.close();
  }
}

export interface MirrorOptions {
  /** Remote URL or path, from configuration only. */
  url: string;
  branch: string;
  /** Subfolder Plumb reads, '' for the whole repo. */
  path: string;
  /** Where the bare mirror lives (inside the state directory). */
  mirrorDir: string;
  env: NodeJS.ProcessEnv;
  /** A git command that produces no output for this long is killed. */
  timeoutMs: number;
}

/**
 * The bare mirror of the config repo in the state directory: `clone --mirror`
 * once, then `fetch` of the configured branch. Never a working tree.
 */
export class GitMirror {
  readonly url: string;
  readonly branch: string;
  readonly scope: string;
  readonly mirrorDir: string;
  readonly objects: GitObjects;
  readonly #env: NodeJS.ProcessEnv;
  readonly #timeoutMs: number;

  constructor(options: MirrorOptions) {
    this.url = checkRemote(options.url);
    this.branch = checkBranch(options.branch);
    this.scope = checkScopePath(options.path);
    this.mirrorDir = options.mirrorDir;
    this.#env = gitEnv(options.env);
    this.#timeoutMs = options.timeoutMs;
    this.objects = new GitObjects(options.mirrorDir, { env: options.env, timeoutMs: options.timeoutMs });
  }

  #fetching: Promise<string> | undefined;

  /** Brings the mirror up to date and returns the branch's commit. Concurrent calls share one fetch. */
  fetch(signal?: AbortSignal): Promise<string> {
    this.#fetching ??= this.#fetch(signal).finally(() => (this.#fetching = undefined));
    return this.#fetching;
  }

  async #fetch(signal?: AbortSignal): Promise<string> {
    if (!existsSync(join(this.mirrorDir, 'HEAD'))) {
      // A fresh mirror has every branch as it is now: fetching again at once only costs a process.
      await this.#clone(signal);
      return this.head();
    }
    try {
      await git(this.mirrorDir, this.#env, this.#timeoutMs, signal).raw([
        'fetch',
        '--prune',
        '--no-tags',
        '--quiet',
        'origin',
        `+refs/heads/${this.branch}:refs/heads/${this.branch}`,
      ]);
    } catch (err) {
      throw new GitError(`fetching ${redactUrl(this.url)} (${this.branch}) failed: ${firstLine((err as Error).message)}`, { cause: err });
    }
    return this.head();
  }

  /** The mirror's commit for the configured branch, without fetching. */
  async head(): Promise<string> {
    try {
      return await this.objects.resolveCommit(`refs/heads/${this.branch}`);
    } catch (err) {
      throw new RevisionError(`branch "${this.branch}" does not exist in ${redactUrl(this.url)}`, { cause: err });
    }
  }

  /** Keeps the accepted commit reachable in the mirror, so a force-push cannot garbage-collect the delta base. */
  async pin(commit: string): Promise<void> {
    await git(this.mirrorDir, this.#env, this.#timeoutMs).raw(['update-ref', 'refs/plumb/accepted', commit]);
  }

  async #clone(signal?: AbortSignal): Promise<void> {
    await mkdir(dirname(this.mirrorDir), { recursive: true });
    const partial = `${this.mirrorDir}.partial`;
    await rm(partial, { recursive: true, force: true });
    try {
      await git(dirname(this.mirrorDir), this.#env, this.#timeoutMs, signal).clone(this.url, partial, ['--mirror', '--quiet']);
    } catch (err) {
      await rm(partial, { recursive: true, force: true });
      throw new GitError(`cloning ${redactUrl(this.url)} failed: ${firstLine((err as Error).message)}`, { cause: err });
    }
    await rename(partial, this.mirrorDir); // a half-finished clone is never mistaken for a mirror
  }

  close(): void {
    this.objects.close();
  }
}

function firstLine(text: string): string {
  return redactUrl(text.trim().split('\n').find((l) => l.trim() !== '') ?? text).slice(0, 300);
}
