import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { GitObjects } from '../source/git.js';
import type { CliContext } from './context.js';

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
