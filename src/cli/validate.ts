import { loadFull } from '../load/loader.js';
import { SchemaRegistry } from '../load/schemas.js';
import { diagnosticToJson, formatDiagnostic } from '../load/types.js';
import { builtinProviderSchemas } from '../daemon/provider-schemas.js';
import { WORKTREE } from '../source/worktree.js';
import { resolveContext, type CommonFlags } from './context.js';
import { printJson, type Out } from './output.js';
import { openObjects, openWorktree, PARALLEL_LOAD, refuseRevisionWithWorktree, type RepoReader } from './repo.js';

export interface ValidateFlags extends CommonFlags {
  rev?: string;
  /** Check the files of the working tree, uncommitted ones too (editor and pre-commit hooks). */
  worktree?: boolean;
}

/** `plumb validate [--rev REV | --worktree]`: offline, for pre-merge CI and pre-commit hooks. Exit 0 valid, 1 invalid. */
export async function validateCommand(flags: ValidateFlags, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  refuseRevisionWithWorktree(flags, '--rev', flags.rev);
  const ctx = resolveContext(flags, env);
  const { objects, defaultRev }: { objects: RepoReader; defaultRev: string } = flags.worktree ? await openWorktree(ctx, env) : openObjects(ctx, env);
  try {
    const commit = await objects.resolveCommit(flags.rev ?? defaultRev);
    const registry = new SchemaRegistry(builtinProviderSchemas());
    const result = await loadFull(commit, { objects, registry, scope: ctx.config.repo.path, limits: ctx.config.limits, parallel: PARALLEL_LOAD, hashSpecs: false });
    const valid = result.diagnostics.length === 0;
    if (flags.json) {
      printJson(out, { valid, commit, files: result.filesRead, resources: result.set.resources.size, diagnostics: result.diagnostics.map(diagnosticToJson) });
    } else {
      for (const d of result.diagnostics) out.write(formatDiagnostic(d) + '\n');
      process.stderr.write(
        valid
          ? `${commit.slice(0, 12)}: valid (${result.set.resources.size} resources in ${result.filesRead} files)\n`
          : `${commit.slice(0, 12)}: ${result.diagnostics.length} error(s); nothing from ${commit === WORKTREE ? 'it would be applied if committed as it is' : 'this commit would be applied'}\n`,
      );
    }
    return valid ? 0 : 1;
  } finally {
    objects.close();
  }
}
