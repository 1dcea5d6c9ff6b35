/**
 * Simulated BMCs on loopback for redfish tests: the simulator, a password file
 * (file: secret reference, so child processes resolve it too), and Target YAML.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedfishSimulator } from '../../../fixtures/simulators/redfish/index.js';
import type { Profile, RedfishSimulatorOptions } from '../../../fixtures/simulators/redfish/index.js';
import type { Target } from '../../../src/provider.js';
import { tempDir } from '../../helpers/git-repo.js';

export interface RedfishLab {
  sim: RedfishSimulator;
  dir: string;
  /** `file:` reference to the BMC password. */
  passwordRef: string;
  /** A Target object for BMC `name` (extra fields override). */
  target(name: string, extra?: Record<string, unknown>): Target;
  /** A Target document (YAML) for BMC `name`. */
  targetYaml(name: string, extra?: string): string;
  /** Writes all BMCs have seen (session login/logout excluded). */
  writes(): number;
  stop(): Promise<void>;
}

export const BMC_PASSWORD = 'sim-password-0451';

export async function startRedfishLab(bmcs: string[], options: Partial<Omit<RedfishSimulatorOptions, 'bmcs'>> & { profile?: Profile | ((name: string, index: number) => Profile) } = {}): Promise<RedfishLab> {
  const dir = tempDir('plumb-rf-lab-');
  const passwordFile = join(dir, 'bmc-password');
  writeFileSync(passwordFile, `${BMC_PASSWORD}\n`, { mode: 0o600 });
  const sim = await RedfishSimulator.start({ resetDelayMs: 60, gracefulDelayMs: 60, taskDurationMs: 150, ...options, bmcs, password: BMC_PASSWORD });
  const passwordRef = `file:${passwordFile}`;
  return {
    sim,
    dir,
    passwordRef,
    target: (name, extra = {}) => ({
      name,
      spec: { provider: 'redfish', address: sim.bmc(name).url, user: 'admin', password: passwordRef, certFingerprint: sim.certFingerprint, timeouts: { pollInterval: '50ms', request: '5s' }, ...extra },
    }),
    targetYaml: (name, extra = '') => `apiVersion: plumb/v1
kind: Target
metadata: { name: ${name} }
spec:
  provider: redfish
  address: ${sim.bmc(name).url}
  user: admin
  password: ${passwordRef}
  certFingerprint: "${sim.certFingerprint}"
  timeouts: { pollInterval: 50ms, request: 5s }
${extra}`,
    writes: () => sim.bmcs.reduce((n, b) => n + b.counters.writes, 0),
    stop: () => sim.stop(),
  };
}
