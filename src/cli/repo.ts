import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import type { ObjectReader, ParallelLoad } from '../load/loader.js';
import { GitObjects } from '../source/git.js';
import { WORKTREE, WorktreeObjects } from '../source/worktree.js';
import type { CliContext } from './context.js';

/** What `validate` and `plan` read the config through: commits (or the working tree) and their files. */
export type RepoReader = ObjectReader & Pick<GitObjects, 'resolveCommit' | 'close'>;

/**
 * Offline access to the config repo for `validate` and `plan`: the local repo
 * itself when there is one, otherwise the daemon's mirror (no fetch).
 */
export function openObjects(ctx: CliContext, env: NodeJS.ProcessEnv): { objects: GitObjects; defaultRev: string } {
  if (ctx.localRepo) return { objects: new GitObjects(ctx.localRepo, { env }), defaultRev: ctx.viaRepoFlag ? 'HEAD' : `refs/heads/${ctx.config.repo.branch}` };
  const mirror = join(ctx.config.stateDir, 'mirror.git');
  if (!existsSync(join(mirror, 'HEAD'))) {
    throw new UsageError(`${ctx.config.repo.url} is remote and there is no mirror in ${ctx.config.stateDir} yet; run the daemon or \`plumb apply --once\` first, or use --repo with a local clone`);
  }
  return { objects: new GitObjects(mirror, { env }), defaultRev: `refs/heads/${ctx.config.repo.branch}` };
}

/**
 * `--worktree`: the files of a local checkout as they are now, uncommitted ones
 * too (editor and pre-commit hooks); commits (a plan's base) from the same repo.
 * `defaultRev` is the working tree's stand-in for a commit id.
 */
export async function openWorktree(ctx: CliContext, env: NodeJS.ProcessEnv): Promise<{ objects: WorktreeObjects; defaultRev: string }> {
  if (!ctx.localRepo) throw new UsageError(`--worktree reads the files of a local checkout, and ${ctx.config.repo.url} is remote; give --repo DIR`);
  const objects = new GitObjects(ctx.localRepo, { env });
  let worktree: WorktreeObjects | undefined;
  try {
    worktree = await WorktreeObjects.open(ctx.localRepo, objects, { env });
  } finally {
    if (!worktree) objects.close();
  }
  if (!worktree) throw new UsageError(`--worktree: ${ctx.localRepo} is a bare repository and has no working tree; give --repo with a checkout`);
  return { objects: worktree, defaultRev: WORKTREE };
}

/** --worktree names what to read; a revision flag beside it would contradict it. */
export function refuseRevisionWithWorktree(flags: { worktree?: boolean }, revisionFlag: string, given: string | undefined): void {
  if (flags.worktree && given !== undefined) throw new UsageError(`--worktree checks the working tree, not a commit; drop ${revisionFlag} ${given}, or drop --worktree`);
}

/** Full loads in validate and plan parse in worker threads, which build their registry from the built-in providers' schemas (no transports) too. */
export const PARALLEL_LOAD: ParallelLoad = { providers: { url: new URL('../daemon/provider-schemas.js', import.meta.url).href, name: 'builtinProviderSchemas' } };
