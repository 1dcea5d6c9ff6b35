import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateEd25519Key, SshSimulator, type SshSimulatorOptions } from '../../fixtures/simulators/ssh/index.js';
import { tempDir } from './git-repo.js';

/** Simulated SSH hosts on loopback plus a client key, and YAML for their Targets. */
export interface SshLab {
  sim: SshSimulator;
  dir: string;
  keyFile: string;
  /** A Target document for host `name` of the simulator. */
  target(name: string): string;
  /** Total writes all hosts have seen. */
  writes(): number;
  stop(): Promise<void>;
}

export async function startSshLab(
  hosts: string[],
  options: { latencyMs?: number; password?: string; seed?: SshSimulatorOptions['seed']; commands?: SshSimulatorOptions['commands'] } = {},
): Promise<SshLab> {
  const dir = tempDir('plumb-lab-');
  const key = generateEd25519Key() // ssh2's generator yields an unparsable key about 1 time in 300;
  const keyFile = join(dir, 'client_key');
  writeFileSync(keyFile, key.private, { mode: 0o600 });
  const sim = await SshSimulator.start({ hosts, rootDir: join(dir, 'hosts'), authorizedKeys: [key.public], ...(options.latencyMs ? { latencyMs: options.latencyMs } : {}), ...(options.password ? { password: options.password } : {}), ...(options.seed ? { seed: options.seed } : {}), ...(options.commands ? { commands: options.commands } : {}) });
  return {
    sim,
    dir,
    keyFile,
    target: (name) => `apiVersion: plumb/v1
kind: Target
metadata: { name: ${name} }
spec:
  provider: ssh
  address: 127.0.0.1
  port: ${sim.host(name).port}
  user: deploy
  privateKey: file:${keyFile}
  hostKey: "${sim.hostKeyFingerprint}"
`,
    writes: () => sim.hosts.reduce((n, h) => n + h.counters.writes, 0),
    stop: () => sim.stop(),
  };
}

export function sshFile(name: string, target: string, path: string, content: string, extra = ''): string {
  return `apiVersion: plumb/v1
kind: ssh.File
metadata: { name: ${name}, target: ${target}${extra} }
spec:
  path: ${path}
  content: ${JSON.stringify(content)}
  mode: "0644"
`;
}
