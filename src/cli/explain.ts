import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinProviders } from '../daemon/providers.js';
import { kindMarkdown, kindReference } from '../load/kind-docs.js';
import { SchemaRegistry } from '../load/schemas.js';
import { schemasDir } from '../util/package-root.js';
import { UsageError } from '../errors.js';
import type { Out } from './output.js';

/** `plumb explain [KIND] [--all]`: the fields of a kind, from its schema (like `kubectl explain`). */
export function explainCommand(kind: string | undefined, flags: { all?: boolean }, out: Out): number {
  const registry = new SchemaRegistry(builtinProviders());
  if (flags.all) {
    const metadata = JSON.parse(readFileSync(join(schemasDir(), 'metadata.schema.json'), 'utf8')) as Record<string, unknown>;
    out.write(kindReference(registry, metadata));
    return 0;
  }
  if (!kind) {
    out.write('Kinds (plumb explain KIND for its fields):\n');
    for (const [name, info] of [...registry.kinds].sort(([a], [b]) => a.localeCompare(b))) {
      const description = typeof info.schema.description === 'string' ? info.schema.description.split('. ')[0] : '';
      out.write(`  ${name.padEnd(16)} ${description}\n`);
    }
    return 0;
  }
  if (!registry.kinds.has(kind)) throw new UsageError(registry.unknownKindMessage(kind));
  out.write(kindMarkdown(registry, kind));
  return 0;
}
