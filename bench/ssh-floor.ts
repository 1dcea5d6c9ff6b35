/**
 * bench/ssh-floor: Plumb's cold first pass against the floor, side by side, on
 * real OpenSSH. 20 sshd processes on loopback (test/helpers/openssh.ts: one
 * port, host key and client key each), 1 ssh.Directory + 10 ssh.File per host.
 *
 *   npm run bench:ssh-floor      (PLUMB_BENCH_HOSTS, PLUMB_BENCH_FILES, PLUMB_BENCH_RUNS to vary)
 *
 * Each run, in alternating order: `plumb apply --once` as a new user runs it
 * (fresh state directory, the built CLI as a child process, from process start
 * to exit), and bench/ssh-floor-script.ts doing the same writes (a child process
 * too, from process start to exit). The remote directories are emptied before
 * each. Printed: every run's two times and their ratio, then the medians and
 * the median ratio against the bound 1.3. After the runs, a no-op pass
 * (`apply --once --all`) must leave the sshds' SFTP logs without a single write.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../src/util/package-root.js';
import { sshdAvailable, SSHD_MISSING, startOpenSsh, type OpenSshServer } from '../test/helpers/openssh.js';
import { commitAll, runCli } from './harness.js';
import type { FloorJob } from './ssh-floor-script.js';

const HOSTS = Number(process.env.PLUMB_BENCH_HOSTS ?? 20);
const FILES = Number(process.env.PLUMB_BENCH_FILES ?? 10);
const RUNS = Number(process.env.PLUMB_BENCH_RUNS ?? 5);
const BOUND = 1.3;
const root = join(packageRoot(), '.bench', 'ssh-floor');
const floorScript = join(packageRoot(), 'dist/bench/ssh-floor-script.js');

const appDir = (s: OpenSshServer): string => join(s.remoteRoot, 'app');
const content = (h: number, f: number): string => `host ${h} file ${f}\nlisten = 0.0.0.0:${8000 + f}\n`;

function runFloor(jobPath: string): Promise<{ code: number; ms: number; out: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [floorScript, jobPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('close', (code) => resolve({ code: code ?? -1, ms: performance.now() - started, out }));
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  if (!sshdAvailable()) throw new Error(SSHD_MISSING);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const servers = await Promise.all(Array.from({ length: HOSTS }, () => startOpenSsh({ cleanHome: true })));
  try {
    const repo = join(root, 'repo');
    mkdirSync(join(repo, 'hosts'), { recursive: true });
    const job: FloorJob = { hosts: [] };
    servers.forEach((s, h) => {
      const name = `h${String(h).padStart(2, '0')}`;
      const docs = [
        `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec:\n  provider: ssh\n  address: ${s.address}\n  port: ${s.port}\n  user: ${s.user}\n  privateKey: ${s.clientKeyRef}\n  hostKey: "${s.hostKeyFingerprint}"\n`,
        `apiVersion: plumb/v1\nkind: ssh.Directory\nmetadata: { name: ${name}-app, target: ${name} }\nspec:\n  path: ${appDir(s)}\n  mode: "0755"\n`,
      ];
      const files: FloorJob['hosts'][number]['files'] = [];
      for (let f = 0; f < FILES; f++) {
        const path = join(appDir(s), `f${f}.conf`);
        files.push({ path, content: content(h, f) });
        docs.push(
          `apiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: ${name}-f${f}, target: ${name}, dependsOn: [ssh.Directory/${name}-app] }\nspec:\n  path: ${path}\n  content: ${JSON.stringify(content(h, f))}\n  mode: "0644"\n`,
        );
      }
      writeFileSync(join(repo, 'hosts', `${name}.yaml`), docs.join('---\n'));
      job.hosts.push({ address: s.address, port: s.port, user: s.user, keyPath: s.clientKeyPath, fingerprint: s.hostKeyFingerprint, dir: appDir(s), files });
    });
    commitAll(repo);
    const jobPath = join(root, 'floor-job.json');
    writeFileSync(jobPath, JSON.stringify(job));
    const reset = (): void => servers.forEach((s) => rmSync(appDir(s), { recursive: true, force: true }));
    const plumb = async (run: number): Promise<number> => {
      reset();
      const state = join(root, `state-${run}`);
      const r = await runCli(['apply', '--once', '--repo', repo, '--state', state]);
      if (r.code !== 0) throw new Error(`plumb apply failed (exit ${r.code}):\n${r.out.slice(-3000)}`);
      return r.ms;
    };
    const floor = async (): Promise<number> => {
      reset();
      const r = await runFloor(jobPath);
      if (r.code !== 0) throw new Error(`floor script failed (exit ${r.code}):\n${r.out.slice(-3000)}`);
      return r.ms;
    };

    console.log(`${HOSTS} OpenSSH hosts x (1 directory + ${FILES} files); Plumb: \`plumb apply --once\`, fresh state, default config; floor: bench/ssh-floor-script.ts; ${RUNS} runs`);
    const ratios: number[] = [];
    const plumbMs: number[] = [];
    const floorMs: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      // Alternate who goes first: a noisy neighbour then costs both sides alike.
      let p: number;
      let f: number;
      if (run % 2 === 1) {
        p = await plumb(run);
        f = await floor();
      } else {
        f = await floor();
        p = await plumb(run);
      }
      plumbMs.push(p);
      floorMs.push(f);
      ratios.push(p / f);
      console.log(`run ${run}: plumb ${(p / 1000).toFixed(2)} s, floor ${(f / 1000).toFixed(2)} s, ratio ${(p / f).toFixed(2)}`);
    }
    const ratio = median(ratios);
    console.log(`median: plumb ${(median(plumbMs) / 1000).toFixed(2)} s, floor ${(median(floorMs) / 1000).toFixed(2)} s, ratio ${ratio.toFixed(2)} vs bound ${BOUND} -> ${ratio <= BOUND ? 'within' : 'OVER'} (${(ratio / BOUND).toFixed(2)} of the bound)`);

    // The converged fleet: a no-op pass reads every resource and writes nothing.
    await plumb(0);
    const writesBefore = servers.reduce((n, s) => n + s.sftpWrites(), 0);
    const noop = await runCli(['apply', '--once', '--all', '--repo', repo, '--state', join(root, 'state-0')]);
    if (noop.code !== 0) throw new Error(`no-op pass failed (exit ${noop.code}):\n${noop.out.slice(-3000)}`);
    const noopWrites = servers.reduce((n, s) => n + s.sftpWrites(), 0) - writesBefore;
    console.log(`no-op pass (--all): ${(noop.ms / 1000).toFixed(2)} s, ${noopWrites} SFTP writes (goal 0)`);
    if (noopWrites !== 0 || ratio > BOUND) process.exitCode = 1;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
