import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runPlumb, waitUntil } from '../helpers/cli.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { sshFile, startSshLab, type SshLab } from '../helpers/ssh-lab.js';

/**
 * kill -9 in the middle of writing a file leaves its temporary file beside it.
 * Plumb journals the temporary file's name before creating it, so the next run
 * removes it; and it can no longer keep the directory from being deleted.
 */
let lab: SshLab;
let repo: TempRepo;

beforeAll(async () => {
  lab = await startSshLab(['web1'], { latencyMs: 150 }); // every SFTP request is slow: the write takes a while
});
afterAll(async () => {
  await lab.stop();
  repo?.cleanup();
});

const temps = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((n) => /^\.app\.conf\.plumb-[0-9a-f]{12}$/.test(n)) : []);

test('a temporary file left by kill -9 is removed by the next run, and the directory can then be deleted', async () => {
  repo = new TempRepo();
  const state = tempDir('plumb-temp-state-');
  const dir = join(lab.sim.host('web1').root, 'srv/app');
  repo.write('targets.yaml', lab.target('web1'));
  const docs = (content: string): string =>
    [`apiVersion: plumb/v1\nkind: ssh.Directory\nmetadata: { name: app-dir, target: web1 }\nspec: { path: /srv/app, mode: "0755" }\n`, sshFile('app-conf', 'web1', '/srv/app/app.conf', content, ', dependsOn: [ssh.Directory/app-dir]')].join('---\n');
  repo.write('app.yaml', docs('v1\n'));
  repo.commit('v1');

  // Killed while the temporary file exists, before it is renamed into place.
  const first = runPlumb(['apply', '--once', '--repo', repo.dir, '--state', state]);
  await waitUntil(() => temps(dir).length > 0 || first.child.exitCode !== null, 30_000, 'the temporary file');
  first.child.kill('SIGKILL');
  expect((await first.done).signal).toBe('SIGKILL');
  expect(temps(dir)).toHaveLength(1);
  expect(existsSync(join(dir, 'app.conf'))).toBe(false);

  const second = await runPlumb(['apply', '--once', '--repo', repo.dir, '--state', state]).done;
  expect(second.code, second.stdout + second.stderr).toBe(0);
  expect(temps(dir)).toEqual([]);
  expect(readFileSync(join(dir, 'app.conf'), 'utf8')).toBe('v1\n');

  // Deleting both now succeeds at once: nothing Plumb left behind keeps the directory busy.
  repo.remove('app.yaml');
  repo.commit('gone');
  const third = await runPlumb(['apply', '--once', '--repo', repo.dir, '--state', state]).done;
  expect(third.code, third.stdout + third.stderr).toBe(0);
  expect(existsSync(dir)).toBe(false);
}, 120_000);

test('removing a file also removes the temporary files an older run left for it unjournaled, and only those', async () => {
  const repo2 = new TempRepo();
  try {
    const state = tempDir('plumb-temp-state-');
    const dir = join(lab.sim.host('web1').root, 'srv/old');
    repo2.write('targets.yaml', lab.target('web1'));
    repo2.write(
      'old.yaml',
      [`apiVersion: plumb/v1\nkind: ssh.Directory\nmetadata: { name: old-dir, target: web1 }\nspec: { path: /srv/old }\n`, sshFile('old-conf', 'web1', '/srv/old/app.conf', 'x\n', ', dependsOn: [ssh.Directory/old-dir]')].join('---\n'),
    );
    repo2.commit('old');
    expect((await runPlumb(['apply', '--once', '--repo', repo2.dir, '--state', state]).done).code).toBe(0);
    writeFileSync(join(dir, '.app.conf.plumb-0123456789ab'), 'half a write');
    writeFileSync(join(dir, '.other.conf.plumb-0123456789ab'), 'not this resource: stays');
    repo2.remove('old.yaml');
    repo2.commit('gone');
    const res = await runPlumb(['apply', '--once', '--repo', repo2.dir, '--state', state]).done;
    // The other file's leftover is not this resource's: the directory is not empty, and says so.
    expect(res.code).toBe(1);
    expect(existsSync(join(dir, '.app.conf.plumb-0123456789ab'))).toBe(false);
    expect(existsSync(join(dir, '.other.conf.plumb-0123456789ab'))).toBe(true);
    expect(res.stdout + res.stderr).toContain('/srv/old is not empty');
  } finally {
    repo2.cleanup();
  }
}, 120_000);
