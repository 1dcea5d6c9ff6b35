import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { sshFile, startSshLab, type SshLab } from '../helpers/ssh-lab.js';

/**
 * Invariant 7: secrets appear in no log line, no SQLite row, no error message.
 * The daemon runs at debug level with a private key from env:, a password from
 * file:, a wrong password and a missing secret file; then every byte it logged,
 * every CLI output and the database files are searched for the secret values.
 */
const cli = join(packageRoot(), 'dist/src/cli/main.js');
const PASSWORD = 'correct-horse-battery-staple-4d2f';
const WRONG = 'wrong-password-9c81e0a7';

let lab: SshLab;
let repo: TempRepo;
let dir: string;

beforeAll(async () => {
  lab = await startSshLab(['keyhost', 'pwhost', 'badpw', 'nosecret'], { password: PASSWORD });
  dir = tempDir('plumb-secrets-');
  repo = new TempRepo();
  writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'wrong'), WRONG, { mode: 0o600 });
  const withAuth = (name: string, auth: string): string => lab.target(name).replace(`privateKey: file:${lab.keyFile}`, auth);
  repo.write(
    'targets.yaml',
    [
      withAuth('keyhost', 'privateKey: env:PLUMB_TEST_DEPLOY_KEY'),
      withAuth('pwhost', `password: file:${join(dir, 'pw')}`),
      withAuth('badpw', `password: file:${join(dir, 'wrong')}`),
      withAuth('nosecret', `password: file:${join(dir, 'missing')}`),
    ].join('---\n'),
  );
  repo.write('files.yaml', ['keyhost', 'pwhost', 'badpw', 'nosecret'].map((h) => sshFile(`${h}-f`, h, '/etc/plumb-secret-test', `${h}\n`)).join('---\n'));
  repo.commit('targets with secrets');
  writeFileSync(join(dir, 'plumb.yaml'), `repo:\n  url: ${repo.dir}\n  pollInterval: 200ms\nstateDir: ${join(dir, 'state')}\nrun:\n  maxAttempts: 1\nlog:\n  level: debug\n`);
});

afterAll(async () => {
  await lab?.stop();
  repo?.cleanup();
});

test('no secret value in logs, CLI output, error messages or the SQLite files', async () => {
  const key = readFileSync(lab.keyFile, 'utf8');
  const env = { ...process.env, PLUMB_TEST_DEPLOY_KEY: key };
  const daemon = spawn(process.execPath, [cli, 'daemon', '--config', join(dir, 'plumb.yaml')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  daemon.stdout!.on('data', (c: Buffer) => (logs += c.toString('utf8')));
  daemon.stderr!.on('data', (c: Buffer) => (logs += c.toString('utf8')));
  const status = (): { resources: Array<{ id: string; status: string; lastError: string | null }> } =>
    JSON.parse(execFileSync(process.execPath, [cli, 'status', '--all', '--json', '--config', join(dir, 'plumb.yaml')], { encoding: 'utf8' })) as never;
  const deadline = Date.now() + 30_000;
  let settled = false;
  while (!settled && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    try {
      const files = status().resources.filter((r) => r.id.startsWith('ssh.File/'));
      settled = files.length === 4 && files.every((r) => r.status === 'converged' || r.status === 'failed');
    } catch {
      // no state yet
    }
  }
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  expect(settled).toBe(true);

  const byId = new Map(status().resources.map((r) => [r.id, r]));
  expect(byId.get('ssh.File/keyhost-f'), JSON.stringify([...byId.values()])).toMatchObject({ status: 'converged' });
  expect(byId.get('ssh.File/pwhost-f'), JSON.stringify([...byId.values()])).toMatchObject({ status: 'converged' });
  expect(byId.get('ssh.File/badpw-f')?.lastError).toMatch(/refused|auth/i);
  expect(byId.get('ssh.File/nosecret-f')?.lastError).toContain(`file:${join(dir, 'missing')}`);

  const outputs = [
    logs,
    execFileSync(process.execPath, [cli, 'status', '--all', '--json', '--config', join(dir, 'plumb.yaml')], { encoding: 'utf8' }),
    execFileSync(process.execPath, [cli, 'history', '--limit', '500', '--json', '--config', join(dir, 'plumb.yaml')], { encoding: 'utf8' }),
    execFileSync(process.execPath, [cli, 'status', '--all', '--config', join(dir, 'plumb.yaml')], { encoding: 'utf8' }),
  ];
  const stateFiles = readdirSync(join(dir, 'state')).filter((f) => f.startsWith('plumb.db'));
  expect(stateFiles).toContain('plumb.db');
  const dbBytes = stateFiles.map((f) => readFileSync(join(dir, 'state', f)).toString('latin1'));

  // The whole key, and each of its base64 lines, must be absent; so must both passwords.
  const keyLines = key.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'));
  const secrets = [PASSWORD, WRONG, key.trim(), ...keyLines];
  expect(logs.length).toBeGreaterThan(1000); // the daemon really logged (debug level)
  for (const secret of secrets) {
    for (const [i, text] of outputs.entries()) expect(text.includes(secret), `output ${i} contains a secret`).toBe(false);
    for (const [i, bytes] of dbBytes.entries()) expect(bytes.includes(secret), `${stateFiles[i]} contains a secret`).toBe(false);
  }
}, 60_000);
