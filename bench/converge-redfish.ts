/**
 * bench/converge-redfish: 500 simulated BMCs, each with a redfish.System setting
 * power, a boot override and 10 BIOS attributes, at 20 ms of simulated latency
 * per request, converged by the real CLI (`plumb apply --once`, a child process).
 *
 *   npm run bench:converge-redfish    (PLUMB_BENCH_BMCS, PLUMB_BENCH_LATENCY_MS, PLUMB_BENCH_CONCURRENCY to vary)
 *
 * Figures: wall time of the first pass against the lower bound (requests x
 * latency / concurrency: what the requests cost with the queue always full),
 * goal <= 1.5x; and the request count of a no-op pass (`--all`: every System
 * read, nothing written), with its writes (goal 0). Systems are already On and
 * BIOS uses `reboot: Never`, so power is read and compared but no reboot is
 * waited for: the bound is all request time (a reset adds the BMC's reboot
 * delay, which no client can shorten).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedfishSimulator } from '../fixtures/simulators/redfish/index.js';
import { packageRoot } from '../src/util/package-root.js';
import { commitAll, runCli } from './harness.js';

const BMCS = Number(process.env.PLUMB_BENCH_BMCS ?? 500);
const LATENCY = Number(process.env.PLUMB_BENCH_LATENCY_MS ?? 20);
const CONCURRENCY = Number(process.env.PLUMB_BENCH_CONCURRENCY ?? 16);
const root = join(packageRoot(), '.bench', 'converge-redfish');
const PASSWORD = 'bench-password-4711';
const BIOS = {
  ProcTurboMode: 'Disabled',
  ProcVirtualization: 'Disabled',
  LogicalProc: 'Disabled',
  SriovGlobalEnable: 'Enabled',
  MemTest: 'Disabled',
  SysProfile: 'PerfOptimized',
  NumaNodesPerSocket: 2,
  BootMode: 'Uefi',
  ProcCStates: 'Disabled',
  SecureBoot: 'Enabled',
};

/** Runs the CLI; with /usr/bin/time available, also reports the client's CPU seconds (is it waiting or computing?). */
const cpuNote = (r: { cpuS: number | undefined }): string => (r.cpuS === undefined ? '' : `, client CPU ${r.cpuS.toFixed(1)} s`);

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'repo', 'bmcs'), { recursive: true });
  const passwordFile = join(root, 'bmc-password');
  writeFileSync(passwordFile, PASSWORD, { mode: 0o600 });
  const names = Array.from({ length: BMCS }, (_, i) => `bmc${String(i).padStart(3, '0')}`);
  const sim = await RedfishSimulator.start({ bmcs: names, password: PASSWORD, latencyMs: LATENCY, certDir: join(root, 'certs') });
  try {
    const unknown = Object.keys(BIOS).filter((a) => !(a in sim.bmcs[0]!.state.biosCurrent));
    if (unknown.length > 0) throw new Error(`the simulator's BIOS has no ${unknown.join(', ')}`);
    for (const bmc of sim.bmcs) {
      const docs = [
        `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${bmc.name} }\nspec:\n  provider: redfish\n  address: ${bmc.url}\n  user: admin\n  password: file:${passwordFile}\n  certFingerprint: "${sim.certFingerprint}"\n`,
        `apiVersion: plumb/v1\nkind: redfish.System\nmetadata: { name: ${bmc.name}, target: ${bmc.name} }\nspec:\n  powerState: On\n  boot: { source: Pxe, enabled: Continuous, mode: UEFI }\n  bios: ${JSON.stringify(BIOS)}\n  reboot: Never\n`,
      ];
      writeFileSync(join(root, 'repo', 'bmcs', `${bmc.name}.yaml`), docs.join('---\n'));
    }
    const repo = join(root, 'repo');
    commitAll(repo);
    const config = join(root, 'plumb.yaml');
    writeFileSync(config, `repo:\n  url: ${repo}\nstateDir: ${join(root, 'state')}\nrun:\n  concurrency: ${CONCURRENCY}\n`);

    const requests = (): number => sim.bmcs.reduce((n, b) => n + b.counters.requests, 0);
    const writes = (): number => sim.bmcs.reduce((n, b) => n + b.counters.writes, 0);
    console.log(`${BMCS} BMCs (generic profile), each: power On, boot override, 10 BIOS attributes; ${LATENCY} ms per request; run.concurrency ${CONCURRENCY}, 1 per target`);

    const simCpu0 = process.cpuUsage();
    const first = await runCli(['apply', '--once', '--json', '--config', config]);
    const simCpu = process.cpuUsage(simCpu0);
    console.log(`(simulator CPU during the first pass: ${((simCpu.user + simCpu.system) / 1e6).toFixed(1)} s)`);
    if (first.code !== 0) throw new Error(`first pass failed:\n${first.out.slice(-3000)}`);
    const firstRequests = requests();
    const t = (JSON.parse(first.out.slice(first.out.indexOf('{'), first.out.lastIndexOf('}') + 1)) as { timings: Record<string, number> }).timings;
    console.log(`  (pass timings: fetch ${t.fetchMs} ms, load ${t.loadMs} ms, plan ${t.planMs} ms, run ${t.runMs} ms; the rest is process start and exit)`);
    const firstWrites = writes();
    const bound = (firstRequests * LATENCY) / CONCURRENCY;
    console.log(`first pass:  ${(first.ms / 1000).toFixed(2)} s wall (process start to exit)${cpuNote(first)}, ${firstRequests} requests (${(firstRequests / BMCS).toFixed(1)} per BMC), ${firstWrites} writes`);
    console.log(`lower bound: ${(bound / 1000).toFixed(2)} s (requests x ${LATENCY} ms / ${CONCURRENCY}) -> ratio ${(first.ms / bound).toFixed(2)} (goal <= 1.5)`);

    const noop = await runCli(['apply', '--once', '--all', '--config', config]);
    if (noop.code !== 0) throw new Error(`no-op pass failed:\n${noop.out.slice(-3000)}`);
    const noopRequests = requests() - firstRequests;
    const noopWrites = writes() - firstWrites;
    console.log(`no-op pass:  ${(noop.ms / 1000).toFixed(2)} s wall${cpuNote(noop)}, ${noopRequests} requests (${(noopRequests / BMCS).toFixed(1)} per BMC, incl. session login/logout), ${noopWrites} writes (goal 0)`);
    if (noopWrites !== 0) process.exitCode = 1;
  } finally {
    await sim.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
