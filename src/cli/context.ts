import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compileConfig, loadConfigFile, type Config } from '../daemon/config.js';
import { ConfigError, UsageError } from '../errors.js';

/** Flags every verb takes. */
export interface CommonFlags {
  config?: string;
  repo?: string;
  state?: string;
  branch?: string;
  path?: string;
  json?: boolean;
}

const DEFAULT_CONFIG = '/etc/plumb/plumb.yaml';

export interface CliContext {
  config: Config;
  /** The config file it came from, absolute (none with --repo). */
  configPath?: string;
  /** Set when the repo was given as a local directory (--repo, or a config whose url is a path). */
  localRepo?: string;
  /** Whether a state directory was named (config file, or --state). */
  hasState: boolean;
  /** The repo came from --repo: offline commands default to its HEAD rather than the configured branch. */
  viaRepoFlag: boolean;
}

/**
 * `--config FILE`, or `--repo DIR [--state DIR]` without a config file. With
 * neither, $PLUMB_CONFIG or /etc/plumb/plumb.yaml.
 */
export function resolveContext(flags: CommonFlags, env: Record<string, string | undefined>, needs: { state?: boolean } = {}): CliContext {
  if (flags.config && flags.repo) throw new UsageError('give either --config FILE or --repo DIR, not both');
  let configPath = flags.config;
  if (!configPath && !flags.repo) {
    configPath = env.PLUMB_CONFIG ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
    if (!configPath) throw new UsageError(`no configuration: give --config FILE, or --repo DIR${needs.state ? ' --state DIR' : ''} (or set PLUMB_CONFIG)`);
  }
  if (configPath) {
    const path = resolve(configPath);
    const config = loadConfigFile(path);
    if (flags.state) config.stateDir = resolve(flags.state);
    const local = config.repo.url.startsWith('/') && existsSync(config.repo.url) ? config.repo.url : undefined;
    return { config, configPath: path, hasState: true, viaRepoFlag: false, ...(local ? { localRepo: local } : {}) };
  }
  const repo = resolve(flags.repo!);
  if (!existsSync(repo)) throw new UsageError(`--repo ${flags.repo}: no such directory`);
  if (needs.state && !flags.state) throw new UsageError('--repo DIR needs --state DIR for this command (where Plumb keeps its records)');
  const branch = flags.branch ?? currentBranch(repo);
  const config = compileConfig({ repo: { url: repo, branch, path: flags.path ?? '' }, stateDir: flags.state ? resolve(flags.state) : resolve(repo, '.plumb-state-unused') });
  return { config, localRepo: repo, hasState: Boolean(flags.state), viaRepoFlag: true };
}

/**
 * The branch HEAD names: read from the HEAD file (a git spawn cost ~60 ms of a
 * CLI run); git answers when the layout is one this does not know.
 */
export function currentBranch(repo: string): string {
  const known = branchFromHeadFile(repo);
  if (known !== undefined) return known;
  try {
    return execFileSync('git', ['symbolic-ref', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    throw new ConfigError(`${repo}: cannot tell its current branch (detached HEAD?); pass --branch NAME`);
  }
}

/** `ref: refs/heads/NAME` of a work tree's .git/HEAD, a linked worktree's (`.git` is a `gitdir:` file) or a bare repo's HEAD. */
function branchFromHeadFile(repo: string): string | undefined {
  try {
    const dotGit = join(repo, '.git');
    let gitDir: string;
    if (existsSync(dotGit)) {
      gitDir = statSync(dotGit).isDirectory() ? dotGit : resolve(repo, /^gitdir: (.+)$/m.exec(readFileSync(dotGit, 'utf8'))?.[1]?.trim() ?? '');
    } else gitDir = repo;
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8');
    return /^ref: refs\/heads\/(\S+)\s*$/.exec(head)?.[1];
  } catch {
    return undefined;
  }
}
