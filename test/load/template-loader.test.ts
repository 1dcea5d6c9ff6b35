import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { builtinProviders } from '../../src/daemon/providers.js';
import { loadDelta, loadFull, type LoadOptions } from '../../src/load/loader.js';
import { SchemaRegistry } from '../../src/load/schemas.js';
import type { DesiredSet, Diagnostic } from '../../src/load/types.js';
import { GitObjects } from '../../src/source/git.js';
import { TempRepo } from '../helpers/git-repo.js';

const registry = new SchemaRegistry(builtinProviders());
const FP = 'SHA256:NLgTlF4nTtX575a4WZvWekm8/8bf/j7UXJNpzOiuKIA';

/** An ssh Target; `vars` is YAML flow text, e.g. `{ port: 80 }`. */
const target = (name: string, vars?: string, address = '10.0.0.1'): string =>
  `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec:\n  provider: ssh\n  address: ${address}\n  user: root\n  privateKey: env:KEY\n  hostKey: "${FP}"\n${vars ? `  vars: ${vars}\n` : ''}`;
const file = (name: string, on: string, spec: string): string => `apiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: ${name}, target: ${on} }\nspec:\n  path: /etc/${name}\n${spec}`;
const docs = (...parts: string[]): string => parts.join('---\n');
const brief = (diagnostics: Diagnostic[]): string[] => diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);
const contentOf = (set: { get(id: string): { spec: unknown } | undefined }, id: string): unknown => (set.get(id)?.spec as { content?: unknown } | undefined)?.content;

/** A desired set as plain data, to compare a delta-applied set with a full load. */
const plain = (set: DesiredSet): unknown =>
  [...set.resources.values()].map((r) => ({ id: r.id, file: r.file, spec: r.spec, specHash: r.specHash, attachments: Object.keys(r.attachments) })).sort((a, b) => a.id.localeCompare(b.id));

describe('loader: ssh.File templates', () => {
  let repo: TempRepo;
  let objects: GitObjects;
  const options = (): LoadOptions => ({ objects, registry, scope: '' });

  beforeEach(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
  });
  afterEach(() => {
    objects.close();
    repo.cleanup();
  });

  test('an inline template is rendered into content from its Target vars, even when the Target is in a later file', async () => {
    repo.write('a-files.yaml', file('app.conf', 'web1', '  template: |\n    listen {{port}}\n    {{#upstreams}}\n    server {{host}}\n    {{/upstreams}}\n'));
    repo.write('z-targets.yaml', target('web1', '{ port: 8080, upstreams: [{ host: a }, { host: b }] }'));
    const loaded = await loadFull(repo.commit(), options());
    expect(brief(loaded.diagnostics)).toEqual([]);
    const r = loaded.set.resources.get('ssh.File/app.conf')!;
    expect(r.spec).toMatchObject({ content: 'listen 8080\nserver a\nserver b\n', template: 'listen {{port}}\n{{#upstreams}}\nserver {{host}}\n{{/upstreams}}\n' });
  });

  test('an unknown variable is a validation error at its line:col inside the YAML scalar, whatever its style', async () => {
    const vars = '{ port: 80 }';
    repo.write('t.yaml', target('web1', vars));
    repo.write(
      'files.yaml',
      docs(
        file('block', 'web1', '  template: |\n    a = 1\n    port = {{prot}}\n'),
        file('quoted', 'web1', '  template: "x\\ty {{nope}}\\n"\n'),
        file('plain', 'web1', '  template: listen {{port}} {{host}}\n'),
        file('single', 'web1', "  template: 'it''s {{ missing }}'\n"),
      ),
    );
    const loaded = await loadFull(repo.commit(), options());
    expect(brief(loaded.diagnostics)).toEqual([
      'files.yaml:8:12: unknown variable "prot" (did you mean "port"?) in {{prot}}; defined here: port. Add it to the vars of Target/web1 or fix the name',
      'files.yaml:15:19: unknown variable "nope" in {{nope}}; defined here: port. Add it to the vars of Target/web1 or fix the name',
      'files.yaml:22:29: unknown variable "host" (did you mean "port"?) in {{host}}; defined here: port. Add it to the vars of Target/web1 or fix the name',
      'files.yaml:29:20: unknown variable "missing" in {{ missing }}; defined here: port. Add it to the vars of Target/web1 or fix the name',
    ]);
  });

  test('a templateFile is resolved like source: its errors are at the template file:line:col', async () => {
    repo.write('t.yaml', target('web1', '{ name: web }'));
    repo.write('app/files.yaml', file('app.conf', 'web1', '  templateFile: tmpl/app.conf.mustache\n'));
    repo.write('app/tmpl/app.conf.mustache', 'name = {{name}}\n{{#tls}}\ncert = x\n{{/tls}}\n');
    const loaded = await loadFull(repo.commit(), options());
    expect(brief(loaded.diagnostics)).toEqual(['app/tmpl/app.conf.mustache:2:1: unknown variable "tls" in {{#tls}}; defined here: name. Add it to the vars of Target/web1 or fix the name']);

    repo.write('app/files.yaml', file('app.conf', 'web1', '  templateFile: tmpl/missing.mustache\n'));
    expect(brief((await loadFull(repo.commit(), options())).diagnostics)).toEqual(['app/files.yaml:6:17: "tmpl/missing.mustache" (app/tmpl/missing.mustache) does not exist at this commit']);

    repo.write('app/files.yaml', file('app.conf', 'web1', '  templateFile: tmpl/bin.mustache\n'));
    repo.write('app/tmpl/bin.mustache', Buffer.from([0xff, 0xfe, 0x00]));
    expect(brief((await loadFull(repo.commit(), options())).diagnostics)).toEqual(['app/tmpl/bin.mustache:1:1: app/tmpl/bin.mustache is not UTF-8 text, so it cannot be a template (use source: for binary files)']);
  });

  test('exactly one of content, source, template, templateFile', async () => {
    repo.write('t.yaml', target('web1', '{ a: 1 }'));
    repo.write('files.yaml', file('x', 'web1', '  content: "x"\n  template: "{{a}}"\n'));
    expect(brief((await loadFull(repo.commit(), options())).diagnostics)).toEqual([
      'files.yaml:4:1: set exactly one of content (the text), source (a file of the config repo), template (a template) or templateFile (a template file of the config repo) when state is present',
    ]);
  });

  test('vars are plain values: a secret reference, a dotted name or a null is refused at its position', async () => {
    repo.write('t.yaml', target('web1', '{ token: "env:API_TOKEN", nested: { "a.b": 1 }, ok: [1, true, x], gone: null }'));
    expect(brief((await loadFull(repo.commit(), options())).diagnostics)).toEqual([
      't.yaml:10:11: a var is a plain value, never a secret reference: templates are rendered into plans, files and the state database, and Plumb does not resolve secrets into them',
      't.yaml:10:43: "nested" "a.b" is not valid: a key is a letter or _, then letters, digits, _ or - (no dots: a dot reaches into a mapping, {{a.b}})',
      't.yaml:10:75: a var needs a value ("" for empty text): an empty or null one would render as nothing',
    ]);
  });

  test('the rendered size is bounded by the attachment limit', async () => {
    repo.write('t.yaml', target('web1', '{ l: [1, 2, 3, 4] }'));
    repo.write('files.yaml', file('x', 'web1', '  template: "{{#l}}0123456789{{/l}}"\n'));
    const loaded = await loadFull(repo.commit(), { ...options(), limits: { maxAttachmentBytes: 32 } });
    expect(brief(loaded.diagnostics)).toEqual(['files.yaml:6:20: the rendered template is over the 32-byte limit; make it smaller or split the file']);
  });

  describe('delta loads re-render what a change affects', () => {
    test('editing only the template file re-renders its file resource (and nothing else is parsed)', async () => {
      repo.write('t.yaml', target('web1', '{ name: web }'));
      repo.write('files.yaml', docs(file('app.conf', 'web1', '  templateFile: app.mustache\n'), file('motd', 'web1', '  content: "hi\\n"\n')));
      repo.write('app.mustache', 'name = {{name}}\n');
      const a = repo.commit();
      const base = (await loadFull(a, options())).set;
      const before = base.resources.get('ssh.File/app.conf')!;
      expect(contentOf(base.resources, 'ssh.File/app.conf')).toBe('name = web\n');

      repo.write('app.mustache', 'server_name = {{name}}\n');
      const b = repo.commit();
      const delta = await loadDelta(base, b, options());
      expect(brief(delta.diagnostics)).toEqual([]);
      expect(contentOf(delta, 'ssh.File/app.conf')).toBe('server_name = web\n');
      expect(delta.get('ssh.File/app.conf')!.specHash).not.toBe(before.specHash);
      expect(delta.get('ssh.File/motd')!.specHash).toBe(base.resources.get('ssh.File/motd')!.specHash);
      expect(delta.filesRead).toBe(1); // files.yaml, parsed again for its template
      const applied = delta.apply();
      expect(plain(applied)).toEqual(plain((await loadFull(b, options())).set));
    });

    test('a template file edit that uses an undefined name is rejected at the template position', async () => {
      repo.write('t.yaml', target('web1', '{ name: web }'));
      repo.write('files.yaml', file('app.conf', 'web1', '  templateFile: app.mustache\n'));
      repo.write('app.mustache', 'name = {{name}}\n');
      const base = (await loadFull(repo.commit(), options())).set;
      repo.write('app.mustache', 'name = {{name}}\nport = {{port}}\n');
      const delta = await loadDelta(base, repo.commit(), options());
      expect(brief(delta.diagnostics)).toEqual(['app.mustache:2:8: unknown variable "port" in {{port}}; defined here: name. Add it to the vars of Target/web1 or fix the name']);
    });

    test('changing a Target vars re-renders its templated files in unchanged files; other files are not read', async () => {
      repo.write('t.yaml', target('web1', '{ port: 80 }'));
      repo.write('files.yaml', file('app.conf', 'web1', '  template: "port {{port}}\\n"\n'));
      repo.write('other.yaml', file('motd', 'web1', '  content: "hi\\n"\n'));
      repo.write('t2.yaml', target('web2', '{ port: 1 }'));
      repo.write('files2.yaml', file('app2.conf', 'web2', '  template: "port {{port}}\\n"\n'));
      const base = (await loadFull(repo.commit(), options())).set;

      repo.write('t.yaml', target('web1', '{ port: 8080 }'));
      const b = repo.commit();
      const delta = await loadDelta(base, b, options());
      expect(brief(delta.diagnostics)).toEqual([]);
      expect(contentOf(delta, 'ssh.File/app.conf')).toBe('port 8080\n');
      expect([...delta.added.keys()].sort()).toEqual(['Target/web1', 'ssh.File/app.conf']);
      expect(delta.filesRead).toBe(2); // t.yaml and files.yaml: not other.yaml, not web2's
      expect(plain(delta.apply())).toEqual(plain((await loadFull(b, options())).set));
    });

    test('removing a var a template still uses is an error at the template, in the file that did not change', async () => {
      repo.write('t.yaml', target('web1', '{ port: 80, host: a }'));
      repo.write('files.yaml', file('app.conf', 'web1', '  template: |\n    host {{host}}\n    port {{port}}\n'));
      const base = (await loadFull(repo.commit(), options())).set;
      repo.write('t.yaml', target('web1', '{ host: a }'));
      const delta = await loadDelta(base, repo.commit(), options());
      expect(brief(delta.diagnostics)).toEqual(['files.yaml:8:10: unknown variable "port" (did you mean "host"?) in {{port}}; defined here: host. Add it to the vars of Target/web1 or fix the name']);
    });

    test('a Target change outside vars parses nothing else', async () => {
      repo.write('t.yaml', target('web1', '{ port: 80 }'));
      repo.write('files.yaml', file('app.conf', 'web1', '  template: "port {{port}}\\n"\n'));
      const base = (await loadFull(repo.commit(), options())).set;
      repo.write('t.yaml', target('web1', '{ port: 80 }', '10.0.0.2'));
      const delta = await loadDelta(base, repo.commit(), options());
      expect(brief(delta.diagnostics)).toEqual([]);
      expect(delta.filesRead).toBe(1);
      expect([...delta.added.keys()]).toEqual(['Target/web1']);
    });

    test('the template itself edited in its own file, and a Target and its files changed in one commit', async () => {
      repo.write('all.yaml', docs(target('web1', '{ port: 80 }'), file('app.conf', 'web1', '  template: "port {{port}}\\n"\n')));
      const base = (await loadFull(repo.commit(), options())).set;
      repo.write('all.yaml', docs(file('app.conf', 'web1', '  template: "listen {{port}}\\n"\n'), target('web1', '{ port: 81 }')));
      const b = repo.commit();
      const delta = await loadDelta(base, b, options());
      expect(brief(delta.diagnostics)).toEqual([]);
      expect(contentOf(delta, 'ssh.File/app.conf')).toBe('listen 81\n');
      expect(plain(delta.apply())).toEqual(plain((await loadFull(b, options())).set));
    });
  });
});
