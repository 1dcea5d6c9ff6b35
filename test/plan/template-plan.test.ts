import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { Out } from '../../src/cli/output.js';
import { planCommand } from '../../src/cli/plan.js';
import { lineDiff } from '../../src/cli/text-diff.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { loadDelta, loadFull } from '../../src/load/loader.js';
import { SchemaRegistry } from '../../src/load/schemas.js';
import { targetId, type DesiredSet } from '../../src/load/types.js';
import { plan } from '../../src/plan/planner.js';
import { deltaScope, recordedFromDesired } from '../../src/plan/scope.js';
import type { TargetSpec } from '../../src/provider.js';
import { GitObjects } from '../../src/source/git.js';
import { TempRepo } from '../helpers/git-repo.js';

const FP = 'SHA256:NLgTlF4nTtX575a4WZvWekm8/8bf/j7UXJNpzOiuKIA';
const target = (vars: string): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: web1 }\nspec:\n  provider: ssh\n  address: 10.0.0.1\n  user: root\n  privateKey: env:KEY\n  hostKey: "${FP}"\n  vars: ${vars}\n`;
const TEMPLATE = `apiVersion: plumb/v1
kind: ssh.File
metadata: { name: nginx.conf, target: web1 }
spec:
  path: /etc/nginx/conf.d/app.conf
  template: |
    server {
      listen {{port}};
    {{#upstreams}}
      server {{.}};
    {{/upstreams}}
    }
`;

describe('plan: a template is planned as its rendered text', () => {
  let repo: TempRepo;
  let objects: GitObjects;
  beforeEach(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
  });
  afterEach(() => {
    objects.close();
    repo.cleanup();
  });

  test('commit A, then B changes only the Target vars: an update of the file whose before/after are the rendered texts', async () => {
    const registry = new SchemaRegistry(builtinProviders());
    const options = { objects, registry, scope: '' };
    repo.write('targets.yaml', target('{ port: 80, upstreams: [a, b] }'));
    repo.write('nginx.yaml', TEMPLATE);
    const a = repo.commit('A');
    repo.write('targets.yaml', target('{ port: 8080, upstreams: [a, c] }'));
    const b = repo.commit('B');

    const base = await loadFull(a, options);
    expect(base.diagnostics).toEqual([]);
    const delta = await loadDelta(base.set, b, options);
    expect(delta.diagnostics).toEqual([]);
    const { scope, changedTargets } = deltaScope(base.set, delta);
    const specOf = (set: DesiredSet) => (name: string) => (set.resources.get(targetId(name))?.spec as TargetSpec | undefined) ?? null;
    const result = plan({ commit: b, base: a, mode: 'delta', desired: delta, scope, recorded: recordedFromDesired(base.set.resources, scope, specOf(base.set)), tombstones: [], retry: new Set(), changedTargets });

    const op = result.ops.find((o) => o.id === 'ssh.File/nginx.conf')!;
    expect(op.action).toBe('update');
    expect(op.reasons[0]).toBe('spec changed: spec.content');
    expect((op.before as { content: string }).content).toBe('server {\n  listen 80;\n  server a;\n  server b;\n}\n');
    expect((op.after as { content: string }).content).toBe('server {\n  listen 8080;\n  server a;\n  server c;\n}\n');
  });

  test('plumb plan --from A --to B prints the rendered line diff, not the template', async () => {
    repo.write('targets.yaml', target('{ port: 80, upstreams: [a, b] }'));
    repo.write('nginx.yaml', TEMPLATE);
    const a = repo.commit('A');
    repo.write('targets.yaml', target('{ port: 8080, upstreams: [a, c] }'));
    const b = repo.commit('B');
    let stdout = '';
    const out: Out = { isTTY: false, columns: 200, write: (text) => void (stdout += text) };
    const code = await planCommand({ repo: repo.dir, from: a, to: b }, out, {});
    expect(code).toBe(2);
    const lines = stdout.split('\n');
    const at = lines.findIndex((l) => l.includes('ssh.File/nginx.conf'));
    expect(lines[at]).toMatch(/^ {2}~ update ssh\.File\/nginx\.conf\s+web1\s+spec changed: spec\.content$/);
    expect(lines.slice(at + 1, at + 8)).toEqual(['      content:', '        @@ line 2', '        -  listen 80;', '        +  listen 8080;', '        @@ line 4', '        -  server b;', '        +  server c;']);
  });
});

describe('lineDiff', () => {
  test('changed, added and removed lines; control characters escaped; long diffs cut', () => {
    expect(lineDiff('a\nb\nc\n', 'a\nB\nc\nd\n')).toEqual(['@@ line 2', '-b', '+B', '@@ line 4', '+d']);
    expect(lineDiff('x\n', 'x\u001b[31m\n')).toEqual(['@@ line 1', '-x', '+x\\u001b[31m']);
    const many = Array.from({ length: 50 }, (_, i) => `l${i}`).join('\n');
    expect(lineDiff('', many, 5)).toEqual(['@@ line 1', '-', '+l0', '+l1', '+l2', '... 47 more line(s)']);
  });
});
