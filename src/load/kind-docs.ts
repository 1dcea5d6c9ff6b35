import { API_VERSION } from './document.js';
import type { SchemaRegistry } from './schemas.js';
import { TARGET_KIND } from './types.js';

type Schema = Record<string, unknown>;

/** Markdown reference of one kind's spec, rendered from its JSON Schema (the single source of truth). */
export function kindMarkdown(registry: SchemaRegistry, kind: string): string {
  const info = registry.kinds.get(kind);
  if (!info) throw new Error(registry.unknownKindMessage(kind));
  const lines: string[] = [`## ${kind}`, ''];
  if (typeof info.schema.description === 'string') lines.push(info.schema.description, '');
  lines.push(`Provider: ${info.provider ?? 'core'} · Schema: \`schemas/${info.schemaFile}\``, '');
  lines.push(...fieldTable(info.schema));
  if (kind === TARGET_KIND) {
    lines.push('', 'The rest of a Target spec is defined by its provider:');
    for (const [provider, { targetSchema }] of registry.providers) {
      lines.push('', `### Target with \`provider: ${provider}\``, '');
      if (typeof targetSchema.description === 'string') lines.push(targetSchema.description, '');
      lines.push(...fieldTable(targetSchema));
    }
  }
  const examples = info.schema.examples as unknown[] | undefined;
  if (examples?.[0]) {
    lines.push('', 'Example:', '', '```yaml', `apiVersion: ${API_VERSION}`, `kind: ${kind}`, `metadata: { name: example${info.provider ? ', target: web1' : ''} }`, 'spec:');
    for (const [k, v] of Object.entries(examples[0] as Schema)) lines.push(`  ${k}: ${JSON.stringify(v)}`);
    lines.push('```');
  }
  return lines.join('\n') + '\n';
}

/** The whole kind reference: metadata first, then every kind. */
export function kindReference(registry: SchemaRegistry, metadata: Schema): string {
  const out = [
    '# Kind reference',
    '',
    '<!-- Generated from schemas/ by `npm run docs:kinds` (`plumb explain --all`); do not edit by hand: a test compares them. -->',
    '',
    `Every document is \`apiVersion: ${API_VERSION}\`, a \`kind\`, \`metadata\` and a \`spec\`.`,
    '',
    '## metadata (every kind)',
    '',
    ...fieldTable(metadata),
    '',
  ];
  for (const kind of [...registry.kinds.keys()].sort((a, b) => (a === TARGET_KIND ? -1 : b === TARGET_KIND ? 1 : a.localeCompare(b)))) out.push(kindMarkdown(registry, kind));
  return out.join('\n');
}

/** One row per property: name, type, whether required, default, description. */
function fieldTable(schema: Schema): string[] {
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const rows = Object.entries((schema.properties ?? {}) as Record<string, Schema>).map(
    ([name, prop]) => `| \`${name}\` | ${typeOf(prop, schema)} | ${required.has(name) ? 'yes' : ''} | ${prop.default === undefined ? '' : `\`${JSON.stringify(prop.default)}\``} | ${cell(String(prop.description ?? ''))} |`,
  );
  return ['| Field | Type | Required | Default | Description |', '| --- | --- | --- | --- | --- |', ...rows];
}

function typeOf(prop: Schema, root: Schema): string {
  if (typeof prop.$ref === 'string') {
    const name = prop.$ref.split('/').pop()!;
    const target = ((root.definitions ?? {}) as Record<string, Schema>)[name];
    return target ? typeOf(target, root) : name;
  }
  if (Array.isArray(prop.enum)) return prop.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (prop.const !== undefined) return `\`${String(prop.const)}\``;
  const type = Array.isArray(prop.type) ? prop.type.join(' \\| ') : String(prop.type ?? 'any');
  if (type === 'array' && prop.items && typeof prop.items === 'object') return `list of ${typeOf(prop.items as Schema, root)}`;
  if (type === 'object' && prop.additionalProperties && typeof prop.additionalProperties === 'object') return `map of ${typeOf(prop.additionalProperties as Schema, root)}`;
  return type;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
