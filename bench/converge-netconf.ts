/**
 * bench/converge-netconf: 200 simulated switches x 5 netconf.Config resources
 * (three VLANs, an interface, an NTP server), 10 ms per RPC, converged by the
 * real CLI (`plumb apply --once`, a child process).
 *
 *   npm run bench:converge-netconf   (PLUMB_BENCH_DEVICES, PLUMB_BENCH_LATENCY_MS, PLUMB_BENCH_CONCURRENCY to vary)
 *
 * Figures: wall time of the first pass against the lower bound (RPCs x latency
 * / concurrency), the RPCs, edit-configs and commits it took (one transaction
 * per device), and the edit-config count of a no-op pass (goal 0).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateEd25519Key, IF_NS, NetconfSimulator, SWITCH_NS, SYS_NS } from '../fixtures/simulators/netconf/index.js';
import { packageRoot } from '../src/util/package-root.js';
import { commitAll, runCli } from './harness.js';

const DEVICES = Number(process.env.PLUMB_BENCH_DEVICES ?? 200);
const LATENCY = Number(process.env.PLUMB_BENCH_LATENCY_MS ?? 10);
const CONCURRENCY = Number(process.env.PLUMB_BENCH_CONCURRENCY ?? 16);
const root = join(packageRoot(), '.bench', 'converge-netconf');

function resources(device: string): string[] {
  const doc = (name: string, spec: string): string => `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${device}-${name}, target: ${device} }\nspec:\n${spec}`;
  const vlan = (id: number, name: string): string => doc(`vlan${id}`, `  keys: { vlans/vlan: [id] }\n  config:\n    vlans:\n      "@xmlns": ${SWITCH_NS}\n      vlan:\n        - { id: ${id}, name: ${name} }\n`);
  return [
    vlan(100, 'users'),
    vlan(200, 'voice'),
    vlan(300, 'cameras'),
    doc('uplink', `  keys: { interfaces/interface: [name] }\n  config:\n    interfaces:\n      "@xmlns": ${IF_NS}\n      interface:\n        - { name: eth1, description: "uplink to core", enabled: true }\n`),
    doc('ntp', `  keys: { system/ntp/server: [name] }\n  config:\n    system:\n      "@xmlns": ${SYS_NS}\n      ntp:\n        server:\n          - { name: ntp-bench.example.net, udp: { address: ntp-bench.example.net } }\n`),
  ];
}

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'repo', 'switches'), { recursive: true });
  const key = generateEd25519Key();
  const keyFile = join(root, 'client_key');
  writeFileSync(keyFile, key.private, { mode: 0o600 });
  const names = Array.from({ length: DEVICES }, (_, i) => `sw${String(i).padStart(3, '0')}`);
  const sim = await NetconfSimulator.start({ devices: names, authorizedKeys: [key.public], latencyMs: LATENCY });
  try {
    for (const device of sim.devices) {
      const target = `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${device.name} }\nspec:\n  provider: netconf\n  address: 127.0.0.1\n  port: ${device.port}\n  user: ${sim.username}\n  privateKey: file:${keyFile}\n  hostKey: "${sim.hostKeyFingerprint}"\n`;
      writeFileSync(join(root, 'repo', 'switches', `${device.name}.yaml`), [target, ...resources(device.name)].join('---\n'));
    }
    const repo = join(root, 'repo');
    commitAll(repo);
    const config = join(root, 'plumb.yaml');
    writeFileSync(config, `repo:\n  url: ${repo}\nstateDir: ${join(root, 'state')}\nrun:\n  concurrency: ${CONCURRENCY}\n`);

    const sum = (field: 'rpcs' | 'editConfigs' | 'commits'): number => sim.devices.reduce((n, d) => n + d.counters[field], 0);
    const cpuNote = (r: { cpuS: number | undefined }): string => (r.cpuS === undefined ? '' : `, client CPU ${r.cpuS.toFixed(1)} s`);
    console.log(`${DEVICES} devices x 5 netconf.Config resources; ${LATENCY} ms per RPC; run.concurrency ${CONCURRENCY}, 1 per target`);

    const first = await runCli(['apply', '--once', '--json', '--config', config]);
    if (first.code !== 0) throw new Error(`first pass failed:\n${first.out.slice(-3000)}`);
    const rpcs = sum('rpcs');
    const edits = sum('editConfigs');
    const commits = sum('commits');
    const bound = (rpcs * LATENCY) / CONCURRENCY;
    const t = (JSON.parse(first.out.slice(first.out.indexOf('{'), first.out.lastIndexOf('}') + 1)) as { timings: Record<string, number> }).timings;
    console.log(`first pass:  ${(first.ms / 1000).toFixed(2)} s wall (process start to exit)${cpuNote(first)}, ${rpcs} RPCs (${(rpcs / DEVICES).toFixed(1)} per device), ${edits} edit-configs, ${commits} commits`);
    console.log(`  (pass timings: fetch ${t.fetchMs} ms, load ${t.loadMs} ms, plan ${t.planMs} ms, run ${t.runMs} ms)`);
    console.log(`lower bound: ${(bound / 1000).toFixed(2)} s (RPCs x ${LATENCY} ms / ${CONCURRENCY}) -> ratio ${(first.ms / bound).toFixed(2)}`);

    const noop = await runCli(['apply', '--once', '--all', '--config', config]);
    if (noop.code !== 0) throw new Error(`no-op pass failed:\n${noop.out.slice(-3000)}`);
    const noopEdits = sum('editConfigs') - edits;
    console.log(`no-op pass:  ${(noop.ms / 1000).toFixed(2)} s wall${cpuNote(noop)}, ${sum('rpcs') - rpcs} RPCs, ${noopEdits} edit-configs (goal 0), ${sum('commits') - commits} commits`);
    if (noopEdits !== 0) process.exitCode = 1;
  } finally {
    await sim.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
