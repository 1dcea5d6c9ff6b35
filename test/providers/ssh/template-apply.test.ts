import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyCommand } from '../../../src/cli/apply.js';
import type { Out } from '../../../src/cli/output.js';
import { compileConfig } from '../../../src/daemon/config.js';
import { Engine } from '../../../src/daemon/engine.js';
import { silentLog } from '../../../src/daemon/log.js';
import { builtinProviders } from '../../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../../helpers/git-repo.js';
import { startSshLab, type SshLab } from '../../helpers/ssh-lab.js';

/** A Target of the lab with `vars` (YAML flow text) added to its spec. */
const withVars = (targetYaml: string, vars: string): string => `${targetYaml}  vars: ${vars}\n`;
const templated = `apiVersion: plumb/v1
kind: ssh.File
metadata: { name: app.conf, target: tpl1 }
spec:
  path: /etc/app.conf
  templateFile: templates/app.conf.mustache
  mode: "0640"
---
apiVersion: plumb/v1
kind: ssh.File
metadata: { name: motd, target: tpl1 }
spec:
  path: /etc/motd
  template: "Welcome to {{hostname}} <{{env}}>\\n"
`;

/** End to end: commit, apply --once over SSH (the simulator), the rendered bytes on the host; then a vars change. */
describe('ssh.File templates, applied', () => {
  let lab: SshLab;
  let repo: TempRepo;
  let config: string;
  const apply = async (): Promise<{ code: number; stdout: string }> => {
    let stdout = '';
    const out: Out = { isTTY: false, columns: 200, write: (text) => void (stdout += text) };
    return { code: await applyCommand({ once: true, config }, out, {}), stdout };
  };
  const onHost = (path: string): string => readFileSync(join(lab.sim.host('tpl1').root, path), 'utf8');

  beforeAll(async () => {
    lab = await startSshLab(['tpl1']);
    repo = new TempRepo();
    config = join(tempDir('plumb-tpl-config-'), 'plumb.yaml');
    writeFileSync(config, `repo:\n  url: ${repo.dir}\n  branch: main\nstateDir: ${tempDir('plumb-tpl-state-')}\nrun:\n  maxAttempts: 1\n`);
  });
  afterAll(async () => {
    await lab.stop();
    repo.cleanup();
  });

  test('the rendered file is written; a vars change rewrites only what renders differently; a no-op pass writes nothing', async () => {
    repo.write('targets.yaml', withVars(lab.target('tpl1'), '{ hostname: tpl1, env: prod, port: 8080, peers: [{ name: a, addr: 10.0.0.1 }, { name: b, addr: 10.0.0.2 }] }'));
    repo.write('files.yaml', templated);
    repo.write('templates/app.conf.mustache', '# {{hostname}}\nlisten = {{port}}\n{{#peers}}\npeer {{name}} = {{addr}}\n{{/peers}}\n{{^peers}}\n# no peers\n{{/peers}}\n');
    repo.commit('A');
    const first = await apply();
    expect(first.code, first.stdout).toBe(0);
    expect(onHost('etc/app.conf')).toBe('# tpl1\nlisten = 8080\npeer a = 10.0.0.1\npeer b = 10.0.0.2\n');
    expect(onHost('etc/motd')).toBe('Welcome to tpl1 <prod>\n'); // not HTML-escaped

    const writes = lab.writes();
    expect((await apply()).code).toBe(0);
    expect(lab.writes()).toBe(writes);

    // B: only the vars change. The unchanged files.yaml is rendered again; motd renders the same and is not rewritten.
    repo.write('targets.yaml', withVars(lab.target('tpl1'), '{ hostname: tpl1, env: prod, port: 9090, peers: [] }'));
    repo.commit('B');
    const second = await apply();
    expect(second.code, second.stdout).toBe(0);
    expect(onHost('etc/app.conf')).toBe('# tpl1\nlisten = 9090\n# no peers\n');
    expect(onHost('etc/motd')).toBe('Welcome to tpl1 <prod>\n');

    // C: a var the template needs is gone: rejected at the template's line and column, nothing written.
    const before = lab.writes();
    repo.write('targets.yaml', withVars(lab.target('tpl1'), '{ hostname: tpl1, env: prod, peers: [] }'));
    repo.commit('C');
    const rejected = await apply();
    expect(rejected.code).not.toBe(0);
    expect(rejected.stdout).toContain("templates/app.conf.mustache:2:10: unknown variable \"port\" in {{port}}");
    expect(lab.writes()).toBe(before);
    expect(onHost('etc/app.conf')).toBe('# tpl1\nlisten = 9090\n# no peers\n');
  });

  test('the daemon path: one engine, warm delta loads; a vars change re-renders the file in the unchanged YAML file', async () => {
    const warm = new TempRepo();
    try {
      warm.write('targets.yaml', withVars(lab.target('tpl1'), '{ hostname: tpl1, env: stage, port: 1 }'));
      warm.write('files.yaml', templated.replace('templateFile: templates/app.conf.mustache', 'template: "port={{port}}\\n"').replace('/etc/app.conf', '/etc/warm.conf').replace('name: app.conf', 'name: warm.conf').replace('/etc/motd', '/etc/warm-motd'));
      warm.commit('A');
      const engine = await Engine.open({ config: compileConfig({ repo: { url: warm.dir, branch: 'main' }, stateDir: tempDir('plumb-tpl-warm-'), run: { maxAttempts: 1 } }), providers: builtinProviders(), log: silentLog, env: {} });
      try {
        expect((await engine.pass()).rejected).toBeUndefined();
        expect(onHost('etc/warm.conf')).toBe('port=1\n');
        warm.write('targets.yaml', withVars(lab.target('tpl1'), '{ hostname: tpl1, env: stage, port: 2 }'));
        warm.commit('B');
        const second = await engine.pass();
        expect(second.rejected).toBeUndefined();
        expect(second.plan?.mode).toBe('delta');
        expect(second.plan?.ops.filter((op) => op.action === 'update').map((op) => op.id)).toEqual(['ssh.File/warm.conf']);
        expect(onHost('etc/warm.conf')).toBe('port=2\n');
      } finally {
        await engine.close();
      }
    } finally {
      warm.cleanup();
    }
  });
});
