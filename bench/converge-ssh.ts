/**
 * bench/converge-ssh: 200 simulated hosts x 10 files, converged by the real CLI.
 *
 *   npm run bench:converge-ssh        (PLUMB_BENCH_HOSTS, PLUMB_BENCH_FILES, PLUMB_BENCH_LATENCY_MS to vary)
 *
 * The simulator runs in this process; `plumb apply --once` runs as a child
 * process (its own core), as an operator would run it. Figures: wall time of the
 * first pass (2,000 creates) and of a no-op pass (`--all`: every file read, none
 * written), SFTP requests and writes each pass caused, and the no-op pass's
 * requests per file against the bound for a converged file (one lstat, one read).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateEd25519Key, SshSimulator } from '../fixtures/simulators/ssh/index.js';
import { sshProvider } from '../providers/ssh/index.js';
import { DEFAULT_RUNNER_OPTIONS } from '../src/run/runner.js';
import { packageRoot } from '../src/util/package-root.js';
import { commitAll, runCli } from './harness.js';

const HOSTS = Number(process.env.PLUMB_BENCH_HOSTS ?? 200);
const FILES = Number(process.env.PLUMB_BENCH_FILES ?? 10);
const LATENCY = Number(process.env.PLUMB_BENCH_LATENCY_MS ?? 0);
const root = join(packageRoot(), '.bench', 'converge-ssh');

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const key = generateEd25519Key();
  const keyFile = join(root, 'client_key');
  writeFileSync(keyFile, key.private, { mode: 0o600 });
  const names = Array.from({ length: HOSTS }, (_, i) => `h${String(i).padStart(3, '0')}`);
  const sim = await SshSimulator.start({ hosts: names, rootDir: join(root, 'hosts'), authorizedKeys: [key.public], latencyMs: LATENCY });
  try {
    const repo = join(root, 'repo');
    mkdirSync(join(repo, 'hosts'), { recursive: true });
    for (const host of sim.hosts) {
      const docs = [
        `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${host.name} }\nspec:\n  provider: ssh\n  address: 127.0.0.1\n  port: ${host.port}\n  user: deploy\n  privateKey: file:${keyFile}\n  hostKey: "${sim.hostKeyFingerprint}"\n`,
      ];
      for (let f = 0; f < FILES; f++) {
        docs.push(`apiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: ${host.name}-f${f}, target: ${host.name} }\nspec:\n  path: /etc/bench-${f}.conf\n  content: "${host.name} file ${f}\\nlisten = 0.0.0.0:${8000 + f}\\n"\n  mode: "0644"\n`);
      }
      writeFileSync(join(repo, 'hosts', `${host.name}.yaml`), docs.join('---\n'));
    }
    commitAll(repo);
    const args = ['--repo', repo, '--state', join(root, 'state')];
    const requests = (): number => sim.hosts.reduce((n, h) => n + h.counters.sftpOps + h.counters.execs, 0);
    const writes = (): number => sim.hosts.reduce((n, h) => n + h.counters.writes, 0);
    const resources = HOSTS * FILES;
    console.log(`${HOSTS} hosts x ${FILES} files = ${resources} ssh.File resources; simulated latency ${LATENCY} ms per request; run defaults: ${DEFAULT_RUNNER_OPTIONS.concurrency} in flight, ${sshProvider.perTarget} per target (the ssh provider's)`);

    const first = await runCli(['apply', '--once', ...args]);
    if (first.code !== 0) throw new Error(`first pass failed:\n${first.out.slice(-2000)}`);
    const firstRequests = requests();
    const firstWrites = writes();
    console.log(`first pass:  ${(first.ms / 1000).toFixed(2)} s wall (process start to exit), ${firstRequests} requests, ${firstWrites} writes, ${(resources / (first.ms / 1000)).toFixed(0)} files/s`);

    const noop = await runCli(['apply', '--once', '--all', ...args]);
    if (noop.code !== 0) throw new Error(`no-op pass failed:\n${noop.out.slice(-2000)}`);
    const noopRequests = requests() - firstRequests;
    const noopWrites = writes() - firstWrites;
    console.log(`no-op pass:  ${(noop.ms / 1000).toFixed(2)} s wall, ${noopRequests} requests, ${noopWrites} writes (goal 0), ${(resources / (noop.ms / 1000)).toFixed(0)} files/s`);
    // A converged file costs one lstat and, because its size matches, one read: SFTP open, read, read to EOF, close.
    const bound = 5;
    console.log(`no-op pass requests per file: ${(noopRequests / resources).toFixed(2)} vs bound ${bound} (lstat + open/read/EOF/close) -> ratio ${(noopRequests / resources / bound).toFixed(2)}`);
    if (noopWrites !== 0) process.exitCode = 1;
  } finally {
    await sim.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
