import { loadFull } from '../load/loader.js';
import { SchemaRegistry } from '../load/schemas.js';
import { diagnosticToJson, formatDiagnostic } from '../load/types.js';
import { builtinProviders } from '../daemon/providers.js';
import { resolveContext, type CommonFlags } from './context.js';
import { printJson, type Out } from './output.js';
import { openObjects } from './repo.js';

/** `plumb validate [--rev REV]`: offline, for pre-merge CI. Exit 0 valid, 1 invalid. */
export async function validateCommand(flags: CommonFlags & { rev?: string }, out: Out, env: NodeJS.ProcessEnv): Promise<number> {
  const ctx = resolveContext(flags, env);
  const { objects, defaultRev } = openObjects(ctx, env);
  try {
    const commit = await objects.resolveCommit(flags.rev ?? defaultRev);
    const registry = new SchemaRegistry(builtinProviders());
    const result = await loadFull(commit, { objects, registry, scope: ctx.config.repo.path, limits: ctx.config.limits });
    const valid = result.diagnostics.length === 0;
    if (flags.json) {
      printJson(out, { valid, commit, files: result.filesRead, resources: result.set.resources.size, diagnostics: result.diagnostics.map(diagnosticToJson) });
    } else {
      for (const d of result.diagnostics) out.write(formatDiagnostic(d) + '\n');
      process.stderr.write(
        valid
          ? `${commit.slice(0, 12)}: valid (${result.set.resources.size} resources in ${result.filesRead} files)\n`
          : `${commit.slice(0, 12)}: ${result.diagnostics.length} error(s); nothing from this commit would be applied\n`,
      );
    }
    return valid ? 0 : 1;
  } finally {
    objects.close();
  }
}
