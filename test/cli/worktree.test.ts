import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

const cli = join(packageRoot(), 'dist/src/cli/main.js');
const STACK = /\n\s+at .+:\d+:\d+\)?/;

function plumb(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, PLUMB_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

// Never contacted: validate and plan (without --live) are offline.
const TARGET = `apiVersion: plumb/v1
kind: Target
metadata: { name: web1 }
spec: { provider: ssh, address: 127.0.0.1, user: deploy, privateKey: "file:/nonexistent", hostKey: "SHA256:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ" }
`;
const file = (name: string, content: string): string => `apiVersion: plumb/v1
kind: ssh.File
metadata: { name: ${name}, target: web1 }
spec: { path: /etc/${name}, content: ${JSON.stringify(content)} }
`;

describe('validate --worktree and plan --worktree (editor and pre-commit hooks)', () => {
  let repo: TempRepo;

  beforeEach(() => {
    repo = new TempRepo();
    repo.write('targets.yaml', TARGET);
    repo.write('motd.yaml', file('motd', 'hello\n'));
    repo.write('issue.yaml', file('issue', 'welcome\n'));
    repo.write('.gitignore', 'local-*.yaml\n');
    repo.commit('first');
  });
  afterEach(() => repo.cleanup());

  test('an uncommitted broken file is reported at file:line:col, while the commit itself is valid', async () => {
    repo.write('motd.yaml', 'apiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: motd, target: web1 }\nspec: { path: 7, content: "x" }\n');
    const res = await plumb('validate', '--repo', repo.dir, '--worktree');
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('motd.yaml:4:15: "path" must be a string, not number 7 [ssh.File/motd]\n');
    expect(res.stderr).toBe('(worktree): 1 error(s); nothing from it would be applied if committed as it is\n');
    expect((await plumb('validate', '--repo', repo.dir)).code).toBe(0);

    const json = JSON.parse((await plumb('validate', '--repo', repo.dir, '--worktree', '--json')).stdout);
    expect(json).toMatchObject({ valid: false, commit: '(worktree)', diagnostics: [{ file: 'motd.yaml', line: 4, col: 15 }] });
  });

  test('an untracked valid file is loaded, an ignored one is not, a file deleted from the working tree is gone', async () => {
    repo.write('extra/banner.yaml', file('banner', 'hi\n'));
    repo.write('local-scratch.yaml', 'kind: [this is not even YAML');
    repo.remove('issue.yaml');
    const res = await plumb('validate', '--repo', repo.dir, '--worktree', '--json');
    expect(res.stderr).toBe('');
    expect(JSON.parse(res.stdout)).toEqual({ valid: true, commit: '(worktree)', files: 3, resources: 3, diagnostics: [] });
    expect((await plumb('validate', '--repo', repo.dir, '--worktree')).stderr).toBe('(worktree): valid (3 resources in 3 files)\n');
  });

  test('--path scopes the working tree like a commit', async () => {
    repo.write('site/targets.yaml', TARGET);
    repo.write('site/motd.yaml', file('motd', 'scoped\n'));
    repo.write('motd.yaml', 'broken: [');
    const res = await plumb('validate', '--repo', repo.dir, '--path', 'site', '--worktree');
    expect(res.stderr).toBe('(worktree): valid (2 resources in 2 files)\n');
    expect(res.code).toBe(0);
  });

  test('plan --worktree shows the uncommitted change against HEAD (or --from), and nothing for a clean tree', async () => {
    expect((await plumb('plan', '--repo', repo.dir, '--worktree')).code).toBe(0);
    const first = repo.head();
    repo.write('issue.yaml', file('issue', 'welcome, again\n'));
    const second = repo.commit('second');

    repo.write('motd.yaml', file('motd', 'hello, world\n'));
    repo.write('banner.yaml', file('banner', 'new\n'));
    const res = await plumb('plan', '--repo', repo.dir, '--worktree');
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toContain(`Plan ${second.slice(0, 12)}..(worktree) (2 file(s) changed):`);
    expect(res.stdout).toMatch(/~ update ssh\.File\/motd\s+web1\s+spec changed: spec\.content/);
    expect(res.stdout).toMatch(/\+ create ssh\.File\/banner\s+web1/);
    expect(res.stdout).not.toContain('ssh.File/issue');

    const from = await plumb('plan', '--repo', repo.dir, '--worktree', '--from', first, '--json');
    expect(JSON.parse(from.stdout).ops.map((op: { action: string; id: string }) => `${op.action} ${op.id}`).sort()).toEqual(['create ssh.File/banner', 'update ssh.File/issue', 'update ssh.File/motd']);

    repo.write('motd.yaml', 'spec: [');
    const broken = await plumb('plan', '--repo', repo.dir, '--worktree');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/^motd\.yaml:1:\d+: /);
  });

  test('refused with a one-line usage error: a revision beside --worktree, a remote repo, a bare repo', async () => {
    const rev = await plumb('validate', '--repo', repo.dir, '--worktree', '--rev', 'HEAD');
    expect(rev.code).toBe(1);
    expect(rev.stderr).toBe('plumb: --worktree checks the working tree, not a commit; drop --rev HEAD, or drop --worktree [PLUMB_USAGE]\n');
    const to = await plumb('plan', '--repo', repo.dir, '--worktree', '--to', 'HEAD');
    expect(to.stderr).toBe('plumb: --worktree checks the working tree, not a commit; drop --to HEAD, or drop --worktree [PLUMB_USAGE]\n');

    const dir = tempDir('plumb-wt-config-');
    const remote = join(dir, 'remote.yaml');
    writeFileSync(remote, `repo:\n  url: https://git.example.invalid/config.git\nstateDir: ${join(dir, 'state')}\n`);
    const res = await plumb('validate', '--config', remote, '--worktree');
    expect(res.code).toBe(1);
    expect(res.stderr).toBe('plumb: --worktree reads the files of a local checkout, and https://git.example.invalid/config.git is remote; give --repo DIR [PLUMB_USAGE]\n');

    const bare = join(dir, 'bare.git');
    repo.git('clone', '-q', '--bare', repo.dir, bare);
    const bareRes = await plumb('plan', '--repo', bare, '--worktree');
    expect(bareRes.stderr).toBe(`plumb: --worktree: ${bare} is a bare repository and has no working tree; give --repo with a checkout [PLUMB_USAGE]\n`);
    for (const r of [rev, to, res, bareRes]) expect(r.stderr).not.toMatch(STACK);
  });

  test('a config whose repo.url is a local checkout works like --repo', async () => {
    const dir = tempDir('plumb-wt-config-');
    const config = join(dir, 'plumb.yaml');
    writeFileSync(config, `repo:\n  url: ${repo.dir}\n  branch: main\nstateDir: ${join(dir, 'state')}\n`);
    repo.write('motd.yaml', 'apiVersion: plumb/v1\nkind: ssh.Fil\nmetadata: { name: motd, target: web1 }\nspec: {}\n');
    const res = await plumb('validate', '--config', config, '--worktree');
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^motd\.yaml:2:7: unknown kind "ssh\.Fil"/);
  });
});
