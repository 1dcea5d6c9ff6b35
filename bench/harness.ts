/** What the converge benchmarks share: the CLI they run and the repo they commit. */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../src/util/package-root.js';

const cli = join(packageRoot(), 'dist/src/cli/main.js');

/** One commit of everything in `repo` (a fresh repository on branch main). */
export function commitAll(repo: string): void {
  const git = (...args: string[]): void => void execFileSync('git', args, { cwd: repo, stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('-c', 'user.email=b@plumb.invalid', '-c', 'user.name=bench', 'commit', '-q', '-m', 'bench');
}

/**
 * Runs the built CLI as a child process (its own core), as an operator would,
 * as the `plumb` bin runs it (plain node; the flag the systemd unit adds is the
 * daemon's, ADR 5). Wall time always; user+system CPU when
 * /usr/bin/time is there to measure it.
 */
export function runCli(args: string[]): Promise<{ code: number; ms: number; out: string; cpuS: number | undefined }> {
  const started = performance.now();
  const timed = existsSync('/usr/bin/time');
  const argv = [cli, ...args];
  return new Promise((resolve) => {
    const child = timed
      ? spawn('/usr/bin/time', ['-f', 'PLUMB_BENCH_CPU %U %S', process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('close', (code) => {
      const cpu = /PLUMB_BENCH_CPU ([\d.]+) ([\d.]+)/.exec(out);
      resolve({ code: code ?? -1, ms: performance.now() - started, out, cpuS: cpu ? Number(cpu[1]) + Number(cpu[2]) : undefined });
    });
  });
}
