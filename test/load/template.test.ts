import { describe, expect, test } from 'vitest';
import type { JsonObject } from '../../src/provider.js';
import { fileSource, renderTemplate, type RenderResult } from '../../src/load/template.js';

const render = (text: string, values: JsonObject, maxBytes = 1 << 20): RenderResult => renderTemplate(fileSource(text, 'tmpl/app.conf'), { values, from: 'Target/web1' }, { maxBytes });
const ok = (text: string, values: JsonObject): string => {
  const result = render(text, values);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.line}:${p.col}: ${p.message}`).join('\n'));
  return result.text;
};
/** Problems as `line:col: message`. */
const problems = (text: string, values: JsonObject, maxBytes?: number): string[] => {
  const result = render(text, values, maxBytes);
  expect(result.ok, 'expected problems').toBe(false);
  return result.ok ? [] : result.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`);
};

describe('templates: rendering', () => {
  test('variables: text, numbers and booleans, with whitespace inside the tag', () => {
    expect(ok('port = {{port}}\nname = {{ name }}\ntls = {{tls}}\nratio = {{ratio}}\n', { port: 8080, name: 'web', tls: false, ratio: 0.5 })).toBe('port = 8080\nname = web\ntls = false\nratio = 0.5\n');
  });

  test('nothing is HTML-escaped: {{x}}, {{{x}}} and {{&x}} all write the value as it is', () => {
    const values = { q: `a < b && "c" > 'd' / e=f` };
    expect(ok('{{q}}|{{{q}}}|{{&q}}', values)).toBe(`${values.q}|${values.q}|${values.q}`);
  });

  test('sections over lists repeat with each item; {{.}} is the item; outer names stay visible', () => {
    const values = { domain: 'example.org', upstreams: [{ host: 'a', port: 1 }, { host: 'b', port: 2 }], dns: ['10.0.0.1', '10.0.0.2'] };
    const text = 'upstream app {\n{{#upstreams}}\n  server {{host}}.{{domain}}:{{port}};\n{{/upstreams}}\n}\n{{#dns}}nameserver {{.}}\n{{/dns}}';
    expect(ok(text, values)).toBe('upstream app {\n  server a.example.org:1;\n  server b.example.org:2;\n}\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n');
  });

  test('a section over a mapping renders once inside it; dotted names reach into mappings and list items', () => {
    const values = { db: { host: 'db1', port: 5432 }, hosts: ['x', 'y'] };
    expect(ok('{{#db}}{{host}}:{{port}}{{/db}} {{db.host}} {{hosts.1}}', values)).toBe('db1:5432 db1 y');
  });

  test('falsy values skip a section and show an inverted one: false, null-free empty text, 0, the empty list', () => {
    const values = { off: false, empty: '', zero: 0, none: [], on: true, word: 'w' };
    expect(ok('{{#off}}A{{/off}}{{#empty}}B{{/empty}}{{#zero}}C{{/zero}}{{#none}}D{{/none}}{{#on}}E{{/on}}{{#word}}[{{.}}]{{/word}}', values)).toBe('E[w]');
    expect(ok('{{^off}}a{{/off}}{{^empty}}b{{/empty}}{{^zero}}c{{/zero}}{{^none}}d{{/none}}{{^on}}e{{/on}}', values)).toBe('abcd');
  });

  test('comments vanish; standalone tags leave no blank lines; delimiters can change for text full of braces', () => {
    expect(ok('{{! a comment }}\na\n  {{#on}}\nb\n  {{/on}}\nc\n', { on: true })).toBe('a\nb\nc\n');
    expect(ok('{{=<% %>=}}\nliteral {{not a tag}} <% x %>\n', { x: 'X' })).toBe('literal {{not a tag}} X\n');
  });

  test('deterministic: the same template and vars give the same bytes', () => {
    const values = { m: { b: 2, a: 1 }, l: [3, 1, 2] };
    const text = '{{#l}}{{.}}{{/l}} {{#m}}{{a}}{{b}}{{/m}}';
    expect(ok(text, values)).toBe(ok(text, JSON.parse(JSON.stringify(values)) as JsonObject));
    expect(ok(text, values)).toBe('312 12');
  });
});

describe('templates: every problem at its line and column', () => {
  test('an unknown variable is an error, never an empty string, with a suggestion and what is defined', () => {
    expect(problems('a\nport = {{prot}}\n', { port: 1, host: 'h' })).toEqual(['tmpl/app.conf:2:8: unknown variable "prot" (did you mean "port"?) in {{prot}}; defined here: host, port. Add it to the vars of Target/web1 or fix the name']);
    expect(problems('{{x}}', {})).toEqual(['tmpl/app.conf:1:1: unknown variable "x" in {{x}}; Target/web1 has no vars. Add it to the vars of Target/web1 or fix the name']);
  });

  test('every unknown name is reported, also in branches not taken today and in inverted sections', () => {
    const text = '{{#off}}\n  {{typo}}\n{{/off}}\n{{^on}}{{other}}{{/on}} {{last}}';
    expect(problems(text, { off: false, on: true })).toEqual([
      'tmpl/app.conf:2:3: unknown variable "typo" in {{typo}}; defined here: off, on. Add it to the vars of Target/web1 or fix the name',
      'tmpl/app.conf:4:8: unknown variable "other" in {{other}}; defined here: off, on. Add it to the vars of Target/web1 or fix the name',
      'tmpl/app.conf:4:25: unknown variable "last" in {{last}}; defined here: off, on. Add it to the vars of Target/web1 or fix the name',
    ]);
  });

  test('an unknown section or inverted section name is an error (not a skipped section)', () => {
    expect(problems('x {{#feature}}on{{/feature}}', { features: [] })).toEqual(['tmpl/app.conf:1:3: unknown variable "feature" (did you mean "features"?) in {{#feature}}; defined here: features. Add it to the vars of Target/web1 or fix the name']);
    expect(problems('{{^nope}}x{{/nope}}', { a: 1 })[0]).toMatch(/^tmpl\/app.conf:1:1: unknown variable "nope"/);
  });

  test('a dotted name whose inner key is missing, or that goes through a value that is not a mapping', () => {
    expect(problems('{{db.hots}}', { db: { host: 'h', port: 1 } })).toEqual(['tmpl/app.conf:1:1: unknown variable "db.hots" in {{db.hots}}: "db" has no "hots" (it has host, port (did you mean "host"?))']);
    expect(problems(' {{port.x}}', { port: 1 })).toEqual(['tmpl/app.conf:1:2: unknown variable "port.x" in {{port.x}}: "port" has no "x" (it is number 1)']);
  });

  test('a list or mapping where text is wanted', () => {
    expect(problems('{{dns}}', { dns: ['a'] })).toEqual(['tmpl/app.conf:1:1: {{dns}} is a list, not text: use a section, {{#dns}}...{{/dns}}, to go through it']);
    expect(problems('{{db}}', { db: { a: 1 } })).toEqual(['tmpl/app.conf:1:1: {{db}} is a mapping, not text: use a section, {{#db}}...{{/db}}, to go through it']);
  });

  test('object prototype names are not variables (no lookups outside the vars themselves)', () => {
    expect(problems('{{constructor}}{{#toString}}x{{/toString}}{{__proto__}}', { a: 1 }).map((p) => p.replace(/;.*/, ''))).toEqual([
      'tmpl/app.conf:1:1: unknown variable "constructor" in {{constructor}}',
      'tmpl/app.conf:1:16: unknown variable "toString" in {{#toString}}',
      'tmpl/app.conf:1:43: unknown variable "__proto__" in {{__proto__}}',
    ]);
  });

  test('partials are refused', () => {
    expect(problems('a {{> header}}', { header: 'x' })).toEqual(['tmpl/app.conf:1:3: partials ({{> header}}) are not supported: use templateFile for a whole file, or write the text here']);
  });

  test('syntax errors: an unclosed tag, a section never closed, a close without an open, a mismatched close', () => {
    expect(problems('a\nb {{x', { x: 1 })).toEqual(['tmpl/app.conf:2:3: template: this tag is never closed (add "}}")']);
    expect(problems('{{#l}}\nx\n', { l: [] })).toEqual(['tmpl/app.conf:3:1: template: section "l" is not closed before this point (add {{/l}})']);
    expect(problems('x\n  {{/l}}', { l: [] })).toEqual(['tmpl/app.conf:2:3: template: this closes section "l", which is not open']);
    expect(problems('{{#a}}{{/b}}', { a: true })).toEqual(['tmpl/app.conf:1:7: template: section "a" is not closed before this point (add {{/a}})']);
  });

  test('the rendered size is bounded like an attachment; so is the work of nested sections', () => {
    expect(problems('{{#l}}0123456789{{/l}}', { l: [1, 2, 3] }, 25)).toEqual(['tmpl/app.conf:1:7: the rendered template is over the 25-byte limit; make it smaller or split the file']);
    const many = Array.from({ length: 100 }, (_, i) => i);
    const result = renderTemplate(fileSource('{{#l}}{{#l}}{{#l}}{{#l}}{{/l}}{{/l}}{{/l}}{{/l}}', 't'), { values: { l: many }, from: 'Target/t' }, { maxBytes: 1 << 20, maxSteps: 100_000 });
    expect(result.ok ? [] : result.problems.map((p) => p.message)).toEqual(['the template does more than 100000 steps (sections over lists nested in each other?); simplify it']);
  });

  test('columns count characters, not bytes, after multi-byte text', () => {
    expect(problems('é✓ {{x}}', {})[0]).toMatch(/^tmpl\/app.conf:1:4: /);
  });
});
