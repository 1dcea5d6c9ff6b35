import type { SchemaRegistry } from './schemas.js';

type Schema = Record<string, unknown>;

/** Markdown reference of one kind's spec, rendered from its JSON Schema (the single source of truth). */
export function kindMarkdown(registry: SchemaRegistry, kind: string): string {
  const info = registry.kinds.get(kind);
  if (!info) throw new Error(registry.unknownKindMessage(kind));
  const lines: string[] = [`## ${kind}`, ''];
  if (typeof info.schema.description === 'string') lines.push(info.schema.description, '');
  lines.push(`Provider: ${info.provider ?? 'core'} · Schema: \`schemas/${info.schemaFile}\``, '');
  lines.push('| Field | Type | Required | Default | Description |', '| --- | --- | --- | --- | --- |');
  const required = new Set((info.schema.required as string[] | undefined) ?? []);
  for (const [name, prop] of Object.entries((info.schema.properties ?? {}) as Record<string, Schema>)) {
    lines.push(`| \`${name}\` | ${typeOf(prop, info.schema)} | ${required.has(name) ? 'yes' : ''} | ${prop.default === undefined ? '' : `\`${JSON.stringify(prop.default)}\``} | ${cell(String(prop.description ?? ''))} |`);
  }
  if (kind === 'Target') {
    lines.push('', 'The rest of a Target spec is defined by its provider:');
    for (const [provider, { targetSchema }] of registry.providers) {
      lines.push('', `### Target with \`provider: ${provider}\``, '');
      if (typeof targetSchema.description === 'string') lines.push(targetSchema.description, '');
      lines.push('| Field | Type | Required | Default | Description |', '| --- | --- | --- | --- | --- |');
      const req = new Set((targetSchema.required as string[] | undefined) ?? []);
      for (const [name, prop] of Object.entries((targetSchema.properties ?? {}) as Record<string, Schema>)) {
        lines.push(`| \`${name}\` | ${typeOf(prop, targetSchema)} | ${req.has(name) ? 'yes' : ''} | ${prop.default === undefined ? '' : `\`${JSON.stringify(prop.default)}\``} | ${cell(String(prop.description ?? ''))} |`);
      }
    }
  }
  const examples = info.schema.examples as unknown[] | undefined;
  if (examples?.[0]) {
    lines.push('', 'Example:', '', '```yaml', `apiVersion: plumb/v1`, `kind: ${kind}`, `metadata: { name: example${info.provider ? ', target: web1' : ''} }`, 'spec:');
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
    'Every document is `apiVersion: plumb/v1`, a `kind`, `metadata` and a `spec`.',
    '',
    '## metadata (every kind)',
    '',
    '| Field | Type | Required | Default | Description |',
    '| --- | --- | --- | --- | --- |',
  ];
  const required = new Set((metadata.required as string[] | undefined) ?? []);
  for (const [name, prop] of Object.entries((metadata.properties ?? {}) as Record<string, Schema>)) {
    out.push(`| \`${name}\` | ${typeOf(prop, metadata)} | ${required.has(name) ? 'yes' : ''} | ${prop.default === undefined ? '' : `\`${JSON.stringify(prop.default)}\``} | ${cell(String(prop.description ?? ''))} |`);
  }
  out.push('');
  for (const kind of [...registry.kinds.keys()].sort((a, b) => (a === 'Target' ? -1 : b === 'Target' ? 1 : a.localeCompare(b)))) out.push(kindMarkdown(registry, kind));
  return out.join('\n');
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
