import { describe, expect, test } from 'vitest';
import { DEFAULT_YAML_LIMITS, parseYaml, type YamlFile } from '../../src/load/yaml.js';

const F = 'f.yaml';
const ok = (file: YamlFile): YamlFile => {
  expect(file.diagnostics).toEqual([]);
  return file;
};
const only = (file: YamlFile): { line: number; col: number; message: string } => {
  expect(file.documents).toEqual([]);
  expect(file.diagnostics).toHaveLength(1);
  const { line, col, message } = file.diagnostics[0]!;
  return { line, col, message };
};
const at = (line: number, col: number) => ({ file: F, line, col });

describe('positions', () => {
  test('keys and values in block style', () => {
    const text = ['apiVersion: plumb/v1', 'kind: ssh.File', 'metadata:', '  name: motd', '  dependsOn:', '    - ssh.Directory/etc', '    - "ssh.File/x"', 'spec:', '  port:   22', '  nested:', '    deeper: { a: 1 }'].join('\n');
    const [doc] = ok(parseYaml(text, F)).documents;
    expect(doc!.position).toEqual(at(1, 1));
    expect(doc!.positionOf('/kind')).toEqual(at(2, 7));
    expect(doc!.positionOf('/kind', { key: true })).toEqual(at(2, 1));
    expect(doc!.positionOf('/metadata/name')).toEqual(at(4, 9));
    expect(doc!.positionOf('/metadata/name', { key: true })).toEqual(at(4, 3));
    expect(doc!.positionOf('/metadata/dependsOn/0')).toEqual(at(6, 7));
    expect(doc!.positionOf('/metadata/dependsOn/1')).toEqual(at(7, 7));
    expect(doc!.positionOf('/spec/port')).toEqual(at(9, 11));
    expect(doc!.positionOf('/spec/port', { key: true })).toEqual(at(9, 3));
    expect(doc!.positionOf('/spec/nested/deeper/a')).toEqual(at(11, 18));
    // Unknown pointers fall back to the nearest ancestor that exists.
    expect(doc!.positionOf('/spec/port/nope')).toEqual(at(9, 11));
    expect(doc!.positionOf('/spec/missing')).toEqual(at(9, 3)); // the /spec mapping starts at its first key
    expect(doc!.positionOf('/nothing/here')).toEqual(at(1, 1));
    expect(doc!.positionOf('')).toEqual(at(1, 1));
  });

  test('keys and values in flow style, on one line and across lines', () => {
    const text = 'metadata: { name: a, target: t1, dependsOn: [x/y, "k/z"] }\nspec: {\n  value: "v",\n    extra: 1 }\n';
    const [doc] = ok(parseYaml(text, F)).documents;
    expect(doc!.positionOf('/metadata')).toEqual(at(1, 11));
    expect(doc!.positionOf('/metadata/name')).toEqual(at(1, 19));
    expect(doc!.positionOf('/metadata/target', { key: true })).toEqual(at(1, 22));
    expect(doc!.positionOf('/metadata/target')).toEqual(at(1, 30));
    expect(doc!.positionOf('/metadata/dependsOn/1')).toEqual(at(1, 51));
    expect(doc!.positionOf('/spec/value')).toEqual(at(3, 10));
    expect(doc!.positionOf('/spec/extra', { key: true })).toEqual(at(4, 5));
  });

  test('keys with JSON-pointer characters, quoted keys, anchors and aliases', () => {
    const text = 'a/b: 1\n"t~x": 2\nbase: &b { k: v }\nuse: *b\n';
    const [doc] = ok(parseYaml(text, F)).documents;
    expect(doc!.positionOf('/a~1b')).toEqual(at(1, 6));
    expect(doc!.positionOf('/t~0x', { key: true })).toEqual(at(2, 1));
    expect(doc!.positionOf('/base')).toEqual(at(3, 7));
    expect(doc!.positionOf('/use')).toEqual(at(4, 6));
    expect(doc!.value).toEqual({ 'a/b': 1, 't~x': 2, base: { k: 'v' }, use: { k: 'v' } });
  });

  test('an empty value is placed at its key, a block scalar at its first character', () => {
    const text = 'spec:\nlist:\n  -\n  - x\nkey: |\n    first line\n    second\n';
    const [doc] = ok(parseYaml(text, F)).documents;
    expect(doc!.positionOf('/spec')).toEqual(at(1, 1));
    expect(doc!.positionOf('/list/0')).toEqual(at(3, 3)); // no offset of its own: its list's
    expect(doc!.positionOf('/key')).toEqual(at(6, 5));
    expect(doc!.value).toEqual({ spec: '', list: ['', 'x'], key: 'first line\nsecond\n' });
  });

  test('every document of a file has its own positions; empty documents are kept as empty values', () => {
    const text = '# header\n---\n---\na: 1\nb:\n  c: 2\n---\n# only a comment\n---\n- x\n- y: 3\n...\n';
    const { documents } = ok(parseYaml(text, F));
    expect(documents.map((d) => d.value)).toEqual(['', { a: 1, b: { c: 2 } }, '', ['x', { y: 3 }]]);
    expect(documents.map((d) => d.index)).toEqual([0, 1, 2, 3]);
    expect(documents[1]!.position).toEqual(at(4, 1));
    expect(documents[1]!.positionOf('/b/c')).toEqual(at(6, 6));
    expect(documents[3]!.position).toEqual(at(10, 1));
    expect(documents[3]!.positionOf('/1/y')).toEqual(at(11, 6));
  });

  test('an empty file or a comment-only file has no documents and no diagnostics', () => {
    expect(ok(parseYaml('', F)).documents).toEqual([]);
    expect(ok(parseYaml('# nothing\n\n', F)).documents).toEqual([]);
  });

  test('a byte-order mark does not shift columns', () => {
    const [doc] = ok(parseYaml('\uFEFFa: 1\nb: 2\n', F)).documents;
    expect(doc!.positionOf('/a', { key: true })).toEqual(at(1, 1));
    expect(doc!.positionOf('/b')).toEqual(at(2, 4));
  });

  test('columns count characters, not bytes', () => {
    const [doc] = ok(parseYaml('名前: ü\nnext: x\n', F)).documents;
    expect(doc!.positionOf('/名前')).toEqual(at(1, 5));
  });
});

describe('the JSON schema', () => {
  test('YAML 1.1 booleans, octal-looking numbers and tilde stay strings; no merge keys', () => {
    const [doc] = ok(parseYaml('a: yes\nb: no\nc: on\nd: 0644\ne: ~\nf: null\ng: true\nh: 12\ni: 1.5\nj: 0x1F\nk: 2024-01-01\nl:\n  <<: { x: 1 }\n', F)).documents;
    expect(doc!.value).toEqual({ a: 'yes', b: 'no', c: 'on', d: '0644', e: '~', f: null, g: true, h: 12, i: 1.5, j: '0x1F', k: '2024-01-01', l: { '<<': { x: 1 } } });
  });

  test('custom and binary tags are refused with a position', () => {
    expect(only(parseYaml('a: 1\nb: !custom x\n', F))).toMatchObject({ line: 2, col: 4, message: expect.stringContaining('unknown scalar tag') });
    expect(only(parseYaml('x: !!binary aGk=\n', F)).message).toContain('unknown scalar tag');
  });
});

describe('refusals', () => {
  test('duplicate keys, in block and flow mappings', () => {
    expect(only(parseYaml('a: 1\nb: 2\na: 3\n', F))).toEqual({ line: 3, col: 1, message: expect.stringContaining('duplicated mapping key (each key may appear once per mapping)') });
    expect(only(parseYaml('m: { x: 1, x: 2 }\n', F))).toMatchObject({ line: 1, message: expect.stringContaining('duplicated mapping key') });
    // Quoting does not make a key different.
    expect(only(parseYaml('"a": 1\na: 2\n', F)).message).toContain('duplicated mapping key');
  });

  test.each([
    ['__proto__: {}\n', 1, 1, '__proto__'],
    ['a:\n  "__proto__": { admin: true }\n', 2, 3, '__proto__'],
    ['a: { constructor: 1 }\n', 1, 6, 'constructor'],
    ['- prototype: 1\n', 1, 3, 'prototype'],
    ['ok: 1\n---\nx:\n  y:\n    __proto__: 1\n', 5, 5, '__proto__'],
    // Spelled so that the source is longer than the key: escapes, quotes doubled, a block scalar.
    ['"\\x5f_proto__": 1\n', 1, 1, '__proto__'],
    ['"\\u0070rototype": 1\n', 1, 1, 'prototype'],
    ["'constructor': 1\n", 1, 1, 'constructor'],
    ['? |-\n  prototype\n: 1\n', 2, 3, 'prototype'],
  ])('forbidden key in %j', (text, line, col, key) => {
    expect(only(parseYaml(text, F))).toEqual({ line, col, message: `key "${key}" is not allowed (it could alter object prototypes); rename it` });
  });

  test('forbidden words are fine as values and inside longer keys', () => {
    expect(ok(parseYaml('a: __proto__\nconstructors: 1\nb: [constructor]\n', F)).documents[0]!.value).toEqual({ a: '__proto__', constructors: 1, b: ['constructor'] });
  });

  test('invalid UTF-8 is refused at the first bad byte', () => {
    const bytes = Buffer.concat([Buffer.from('a: ok\nb: caf'), Buffer.from([0xe9]), Buffer.from(' x\n')]);
    expect(only(parseYaml(bytes, F))).toEqual({ line: 2, col: 7, message: 'file is not valid UTF-8' });
    expect(only(parseYaml(Buffer.from([0x61, 0x3a, 0x20, 0xff, 0xfe]), F)).col).toBe(4);
  });

  test('a real U+FFFD character in valid UTF-8 bytes is accepted', () => {
    expect(ok(parseYaml(Buffer.from('a: "\uFFFD"\n', 'utf8'), F)).documents[0]!.value).toEqual({ a: '\uFFFD' });
  });

  test('maxDepth', () => {
    const nested = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}\n`;
    // js-yaml's count of levels is its own (a flow sequence at the root refuses at maxDepth - 1); the limit holds either way.
    expect(ok(parseYaml(nested(8), F, { ...DEFAULT_YAML_LIMITS, maxDepth: 10 })).documents).toHaveLength(1);
    expect(only(parseYaml(nested(10), F, { ...DEFAULT_YAML_LIMITS, maxDepth: 10 }))).toEqual({ line: 1, col: 10, message: 'YAML: nesting exceeded maxDepth (10)' });
    const block = Array.from({ length: 12 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n') + ' 1\n';
    expect(only(parseYaml(block, F, { ...DEFAULT_YAML_LIMITS, maxDepth: 10 })).message).toContain('maxDepth');
  });

  test('an unclosed flow collection or quote is reported where it opens', () => {
    expect(only(parseYaml('a: 1\nm: { x: 1, y: 2\nnext: 3\n', F))).toEqual({ line: 2, col: 4, message: expect.stringContaining('this "{" is never closed') });
    expect(only(parseYaml('l: [1, 2\n', F))).toEqual({ line: 1, col: 4, message: expect.stringContaining('this "[" is never closed (add the matching "]")') });
    expect(only(parseYaml('a: "open\nb: 1\n', F))).toEqual({ line: 1, col: 4, message: expect.stringContaining('this quoted string is never closed (add the closing ")') });
    expect(only(parseYaml("a: 'open", F))).toEqual({ line: 1, col: 4, message: expect.stringContaining("add the closing ')") });
    // A plain indentation error is left as the parser says it.
    expect(only(parseYaml('a:\n    b: 1\n  c: 2\n', F)).message).not.toContain('never closed');
  });
});

describe('alias expansion', () => {
  const limits = { ...DEFAULT_YAML_LIMITS, maxNodes: 200 };

  test('legitimate anchor reuse passes', () => {
    const text = 'defaults: &d { mode: "0644", owner: root, group: root }\na: *d\nb: *d\nc: { <<: *d }\n';
    const [doc] = ok(parseYaml(text, F, limits)).documents;
    expect((doc!.value as Record<string, unknown>).b).toEqual({ mode: '0644', owner: 'root', group: 'root' });
  });

  test('a billion-laughs document is refused at the alias that crosses the limit, before it is built', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [prev, name] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g'], ['g', 'h'], ['h', 'i'], ['i', 'j']] as const) lines.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    const started = Date.now();
    const result = only(parseYaml(lines.join('\n') + '\n', F));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(result.message).toContain(`more than ${DEFAULT_YAML_LIMITS.maxNodes} nodes through aliases`);
    expect(result.line).toBe(5); // e: expands to 111,111 nodes
  });

  test('the count is exact: a document of N nodes passes at maxNodes N and fails at N - 1', () => {
    // root mapping 1 + keys 2 + list 1 + 3 items + alias copy of the list (4) = 11
    const text = 'a: &l [1, 2, 3]\nb: *l\n';
    expect(ok(parseYaml(text, F, { ...DEFAULT_YAML_LIMITS, maxNodes: 11 })).documents).toHaveLength(1);
    expect(only(parseYaml(text, F, { ...DEFAULT_YAML_LIMITS, maxNodes: 10 }))).toEqual({ line: 2, col: 4, message: expect.stringContaining('alias bomb') });
  });

  test('each document counts on its own; anchors do not leak across documents', () => {
    const doc = 'a: &l [1, 2, 3]\nb: *l\n';
    expect(ok(parseYaml(`${doc}---\n${doc}---\n${doc}`, F, { ...DEFAULT_YAML_LIMITS, maxNodes: 11 })).documents).toHaveLength(3);
    expect(only(parseYaml('a: &l [1]\n---\nb: *l\n', F)).message).toMatch(/unidentified alias|alias/);
  });
});
