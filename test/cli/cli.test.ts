import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { sshFile, startSshLab, type SshLab } from '../helpers/ssh-lab.js';

const cli = join(packageRoot(), 'dist/src/cli/main.js');
const STACK = /\n\s+at .+:\d+:\d+\)?/;

/** Async on purpose: the simulated hosts live in this process and must keep answering while the CLI runs. */
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

describe('plumb CLI', () => {
  let lab: SshLab;
  let repo: TempRepo;
  let state: string;
  let first: string;

  beforeAll(async () => {
    lab = await startSshLab(['cli1']);
    repo = new TempRepo();
    state = tempDir('plumb-cli-state-');
    repo.write('targets.yaml', lab.target('cli1'));
    repo.write('files.yaml', sshFile('motd', 'cli1', '/etc/motd', 'hello\n'));
    first = repo.commit('first');
  });
  afterAll(async () => {
    await lab.stop();
    repo.cleanup();
  });

  test('validate: exit 0 on a valid commit, 1 with file:line:col lines on an invalid one', async () => {
    const ok = await plumb('validate', '--repo', repo.dir);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('valid (2 resources in 2 files)');

    repo.write('broken.yaml', 'apiVersion: plumb/v1\nkind: ssh.Fil\nmetadata: { name: x, target: cli1 }\nspec: {}\n');
    const bad = repo.commit('broken');
    const res = await plumb('validate', '--repo', repo.dir);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^broken\.yaml:2:7: unknown kind "ssh\.Fil" \(did you mean "ssh\.File"\?\); known kinds: Target, .*ssh\.File, .*ssh\.User\n$/);
    expect(res.stderr + res.stdout).not.toMatch(STACK);

    const json = await plumb('validate', '--repo', repo.dir, '--rev', bad, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: false, diagnostics: [{ file: 'broken.yaml', line: 2, col: 7 }] });
    expect((await plumb('validate', '--repo', repo.dir, '--rev', first)).code).toBe(0);
    repo.remove('broken.yaml');
    repo.commit('unbreak');
  });

  test('plan: 2 when there are changes, 0 when none, 1 on an error; --live reads the target', async () => {
    const fresh = await plumb('plan', '--repo', repo.dir);
    expect(fresh.code).toBe(2);
    expect(fresh.stdout).toMatch(/\+ create ssh\.File\/motd\s+cli1\s+new: not applied yet/);

    const live = await plumb('plan', '--repo', repo.dir, '--live', '--json');
    expect(live.code).toBe(2);
    expect(JSON.parse(live.stdout).ops).toMatchObject([{ id: 'ssh.File/motd', action: 'create', status: 'planned' }]);
    expect(lab.sim.host('cli1').counters.writes).toBe(0); // a dry run writes nothing

    expect((await plumb('plan', '--repo', repo.dir, '--from', 'HEAD', '--to', 'HEAD')).code).toBe(0);
    const missing = await plumb('plan', '--repo', repo.dir, '--to', 'no-such-rev');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^plumb: revision "no-such-rev" does not exist in .+ \[PLUMB_REVISION\]\n$/);
  });

  test('apply --once converges; status, history and tombstones read the state', async () => {
    const apply = await plumb('apply', '--once', '--repo', repo.dir, '--state', state);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    expect(readFileSync(join(lab.sim.host('cli1').root, 'etc/motd'), 'utf8')).toBe('hello\n');
    expect(apply.stdout).toMatch(/1 changed, 0 deleted/);

    const again = await plumb('apply', '--once', '--repo', repo.dir, '--state', state);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 changed, 0 deleted/);

    const status = JSON.parse((await plumb('status', '--state', state, '--repo', repo.dir, '--json')).stdout);
    expect(status.source.appliedCommit).toBe(repo.head());
    expect(status.counts).toEqual({ converged: 1 });
    expect((await plumb('status', 'ssh.File/motd', '--repo', repo.dir, '--state', state)).stdout).toMatch(/converged\s+ssh\.File\/motd\s+cli1\s+files\.yaml:1/);
    expect((await plumb('status', 'nope/nothing', '--repo', repo.dir, '--state', state)).code).toBe(1);

    const history = JSON.parse((await plumb('history', 'ssh.File/motd', '--repo', repo.dir, '--state', state, '--json')).stdout);
    expect(history.map((e: { type: string }) => e.type)).toEqual(['create']);

    repo.write('files.yaml', '# nothing here any more\n');
    repo.commit('remove motd');
    expect((await plumb('apply', '--once', '--repo', repo.dir, '--state', state)).code).toBe(0);
    const tombstones = JSON.parse((await plumb('tombstones', '--all', '--repo', repo.dir, '--state', state, '--json')).stdout);
    expect(tombstones).toMatchObject([{ resourceId: 'ssh.File/motd', state: 'done', policy: 'Delete' }]);
  });

  test('errors are one line with a code, never a stack trace', async () => {
    const none = await plumb('status');
    expect(none.code).toBe(1);
    expect(none.stderr).toBe('plumb: no configuration: give --config FILE, or --repo DIR --state DIR (or set PLUMB_CONFIG) [PLUMB_USAGE]\n');
    const noState = await plumb('status', '--state', tempDir(), '--repo', repo.dir);
    expect(noState.stderr).toMatch(/no Plumb state in .+ yet: run `plumb apply --once` or start the daemon first \[PLUMB_STATE\]/);
    const badConfig = tempDir();
    const configFile = join(badConfig, 'plumb.yaml');
    writeFileSync(configFile, 'repo:\n  url: ext::sh -c touch% /tmp/pwned\n  pollIntervl: 5s\n');
    const cfg = await plumb('apply', '--once', '--config', configFile);
    expect(cfg.code).toBe(1);
    expect(cfg.stderr).toContain(`${configFile}:3:3: unknown setting "pollIntervl"`);
    expect(cfg.stderr).not.toMatch(STACK);
    writeFileSync(configFile, 'repo:\n  url: "ext::sh -c touch% /tmp/pwned"\n');
    expect((await plumb('validate', '--config', configFile)).stderr).toContain('uses a git remote helper (e.g. ext::)');
    expect((await plumb('apply', '--repo', repo.dir, '--state', state)).stderr).toContain('apply needs --once');
  });

  test('explain lists kinds and prints a kind reference', async () => {
    expect((await plumb('explain')).stdout).toMatch(/ssh\.File\s+A regular file/);
    expect((await plumb('explain', 'ssh.File')).stdout).toContain('| `path` | string | yes |');
    expect((await plumb('explain', 'ssh.Fiel')).stderr).toContain('did you mean "ssh.File"');
  });
});

describe('plumb backup', () => {
  test('copies the state online into a database that opens and holds the same records', async () => {
    const lab = await startSshLab(['bk1']);
    const repo = new TempRepo();
    const state = tempDir('plumb-bk-state-');
    try {
      repo.write('t.yaml', `${lab.target('bk1')}---\n${sshFile('f', 'bk1', `/etc/bk-${Date.now()}`, 'x\n')}`);
      repo.commit('one file');
      expect((await plumb('apply', '--once', '--repo', repo.dir, '--state', state)).code).toBe(0);
      const copy = join(tempDir('plumb-bk-'), 'copy.db');
      const res = await plumb('backup', copy, '--repo', repo.dir, '--state', state);
      expect(res.code, res.stderr).toBe(0);
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(copy, { readonly: true });
      expect(db.prepare("SELECT status FROM resources WHERE id = 'ssh.File/f'").get()).toEqual({ status: 'converged' });
      db.close();
      expect((await plumb('backup', copy, '--repo', repo.dir, '--state', state)).stderr).toContain('exists; give a new file name');
    } finally {
      await lab.stop();
      repo.cleanup();
    }
  });
});
