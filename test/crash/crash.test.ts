import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startSshLab, sshFile, type SshLab } from '../helpers/ssh-lab.js';

/**
 * kill -9 of the daemon at random points of a multi-target convergence, at least
 * 20 times, with commits (changes and deletions) landing between kills. After
 * every kill: the database is intact, no tombstone is lost, and the guarded
 * command never ran after its guard started to hold. At the end everything converges.
 */
const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
const KILLS = 24;
const cli = join(packageRoot(), 'dist/src/cli/main.js');

let lab: SshLab;
let repo: TempRepo;
let stateDir: string;
let config: string;

function hostDocs(host: string, revision: number, withExtras: boolean): string {
  const docs = [
    `apiVersion: plumb/v1\nkind: ssh.Directory\nmetadata: { name: ${host}-root, target: ${host} }\nspec: { path: /srv/crash, mode: "0755" }\n`,
    // The guard appears atomically (write, then rename), as a creates guard should: a kill mid-write must not leave it half made.
    `apiVersion: plumb/v1\nkind: ssh.Command\nmetadata: { name: ${host}-init, target: ${host}, dependsOn: [ssh.Directory/${host}-root] }\nspec: { run: "sleep 0.1 && echo crash-init-${host} > /srv/crash/guard.new && mv /srv/crash/guard.new /srv/crash/guard", creates: /srv/crash/guard }\n`,
  ];
  for (let i = 0; i < 4; i++) docs.push(sshFile(`${host}-f${i}`, host, `/srv/crash/f${i}.conf`, `${host} f${i} revision ${revision}\n`, `, dependsOn: [ssh.Directory/${host}-root]`));
  if (withExtras) for (let i = 0; i < 2; i++) docs.push(sshFile(`${host}-extra${i}`, host, `/srv/crash/extra${i}.conf`, `extra ${i}\n`, `, dependsOn: [ssh.Directory/${host}-root]`));
  return docs.join('---\n');
}

function writeRepo(revision: number, withExtras: boolean): void {
  for (const h of HOSTS) repo.write(`hosts/${h}.yaml`, hostDocs(h, revision, withExtras));
}

function startDaemon(): ChildProcess {
  const child = spawn(process.execPath, [cli, 'daemon', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  return child;
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** Resolves once the daemon has accepted the repo's head (or exited). */
async function acceptedHead(daemon: ChildProcess): Promise<void> {
  const head = repo.head();
  while (daemon.exitCode === null && daemon.signalCode === null) {
    if (readDb((db) => (db.prepare('SELECT accepted_commit FROM source').get() as { accepted_commit: string | null }).accepted_commit) === head) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function readDb<T>(fn: (db: Database.Database) => T): T | undefined {
  if (!existsSync(join(stateDir, 'plumb.db'))) return undefined;
  const db = new Database(join(stateDir, 'plumb.db'), { readonly: true });
  try {
    // Killed before the first migration committed: an empty database, created again at the next start.
    if ((db.pragma('user_version', { simple: true }) as number) === 0) return undefined;
    return fn(db);
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  lab = await startSshLab(HOSTS, { latencyMs: 15 });
  repo = new TempRepo();
  stateDir = tempDir('plumb-crash-state-');
  config = join(tempDir('plumb-crash-cfg-'), 'plumb.yaml');
  repo.write('targets.yaml', HOSTS.map((h) => lab.target(h)).join('---\n'));
  writeRepo(0, true);
  repo.commit('initial');
  writeFileSync(
    config,
    `repo:\n  url: ${repo.dir}\n  pollInterval: 200ms\nstateDir: ${stateDir}\nrun:\n  retryAfter: 50ms\n  maxRetryAfter: 200ms\n  backoff: 20ms\n  maxBackoff: 100ms\nsweep:\n  interval: 0s\nlog:\n  level: warn\n`,
  );
});

afterAll(async () => {
  await lab?.stop();
  repo?.cleanup();
});

test(`kill -9 at random points ${KILLS} times: state intact, no tombstone lost, guarded command never reruns, everything converges`, async () => {
  const seenTombstones = new Set<number>();
  let revision = 0;
  let extras = true;
  for (let kill = 1; kill <= KILLS; kill++) {
    // Commits land between kills: content changes, and twice the extras are deleted (tombstones) or brought back.
    if (kill % 4 === 0) {
      revision++;
      if (kill % 8 === 0) extras = !extras;
      writeRepo(revision, extras);
      repo.commit(`revision ${revision}${extras ? '' : ' without extras'}`);
    }
    const daemon = startDaemon();
    // Odd kills land anywhere from start-up on; even ones once the newest commit is accepted (a state, not a guess
    // at how long start-up takes on a loaded machine), so kills mid-convergence and mid-deletion always happen.
    if (kill % 2 === 0) await acceptedHead(daemon);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * (kill % 2 === 0 ? 600 : 1350))));
    daemon.kill('SIGKILL');
    await stopped(daemon);

    const check = readDb((db) => ({
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      tombstones: db.prepare('SELECT id, state FROM tombstones').all() as Array<{ id: number; state: string }>,
    }));
    if (!check) continue; // killed before the first transaction
    expect(check.integrity, `kill ${kill}`).toBe('ok');
    const now = new Set(check.tombstones.map((t) => t.id));
    for (const id of seenTombstones) expect(now.has(id), `kill ${kill}: tombstone ${id} lost`).toBe(true);
    for (const t of check.tombstones) seenTombstones.add(t.id);
  }

  // The guarded command never ran after its guard file appeared (the simulator logs every exec with its start time).
  for (const h of HOSTS) {
    const guard = join(lab.sim.host(h).root, 'srv/crash/guard');
    if (!existsSync(guard)) continue;
    const guardAt = statSync(guard).mtimeMs;
    const runs = lab.sim.host(h).execLog.filter((e) => e.command.includes(`crash-init-${h}`));
    const after = runs.filter((e) => e.at > guardAt + 5);
    expect(after, `${h}: ran again after its guard held`).toEqual([]);
  }

  // Finally, without interruption, everything converges to the newest commit.
  const daemon = startDaemon();
  const head = repo.head();
  const deadline = Date.now() + 60_000;
  let converged = false;
  while (Date.now() < deadline && !converged) {
    await new Promise((r) => setTimeout(r, 250));
    converged =
      readDb((db) => {
        const source = db.prepare('SELECT applied_commit FROM source').get() as { applied_commit: string | null };
        const open = db.prepare("SELECT COUNT(*) AS n FROM resources WHERE status <> 'converged' AND kind <> 'Target'").get() as { n: number };
        const pending = db.prepare("SELECT COUNT(*) AS n FROM tombstones WHERE state = 'pending'").get() as { n: number };
        return source.applied_commit === head && open.n === 0 && pending.n === 0;
      }) ?? false;
  }
  daemon.kill('SIGTERM');
  await stopped(daemon);
  expect(converged, 'converged to the newest commit after the last restart').toBe(true);
  expect(seenTombstones.size).toBeGreaterThan(0);

  for (const h of HOSTS) {
    const root = lab.sim.host(h).root;
    for (let i = 0; i < 4; i++) expect(readFileSync(join(root, `srv/crash/f${i}.conf`), 'utf8')).toBe(`${h} f${i} revision ${revision}\n`);
    for (let i = 0; i < 2; i++) expect(existsSync(join(root, `srv/crash/extra${i}.conf`))).toBe(extras);
    expect(readFileSync(join(root, 'srv/crash/guard'), 'utf8')).toBe(`crash-init-${h}\n`);
    const runs = lab.sim.host(h).execLog.filter((e) => e.command.includes(`crash-init-${h}`) && e.exitCode === 0);
    expect(runs.length, `${h}: the init command completed exactly once`).toBe(1);
  }
  readDb((db) => expect(db.pragma('integrity_check', { simple: true })).toBe('ok'));
}, 240_000);
