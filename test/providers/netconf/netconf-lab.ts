import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateEd25519Key, NetconfSimulator, type DeviceProfile } from '../../../fixtures/simulators/netconf/index.js';
import type { Resource, Target } from '../../../src/provider.js';
import { SecretResolver } from '../../../src/secrets/resolve.js';
import { tempDir } from '../../helpers/git-repo.js';
import { testLog } from '../../helpers/provider-contract.js';
import { makeResource } from '../../helpers/resources.js';
import { netconfProvider, type ConfigSpec, type NetconfSession } from '../../../providers/netconf/index.js';

export const IF_NS = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
export const IANA_NS = 'urn:ietf:params:xml:ns:yang:iana-if-type';
export const SW_NS = 'urn:example:plumb:switch';
export const SYS_NS = 'urn:ietf:params:xml:ns:yang:ietf-system';
export const secrets = new SecretResolver({ env: {} });

/** Simulated NETCONF devices on loopback, a client key, and Targets/resources for them. */
export interface NetconfLab {
  sim: NetconfSimulator;
  dir: string;
  keyFile: string;
  target(device: string, extra?: Record<string, unknown>): Target;
  /** A Target document (YAML) for `device`. */
  targetDoc(device: string, extra?: string): string;
  open(device: string, extra?: Record<string, unknown>): Promise<NetconfSession>;
  stop(): Promise<void>;
}

export async function startNetconfLab(devices: string[], options: { profile?: DeviceProfile | ((name: string) => DeviceProfile); latencyMs?: number; confirmTimeoutUnitMs?: number; maxMessageBytes?: number; empty?: boolean } = {}): Promise<NetconfLab> {
  const dir = tempDir('plumb-nc-lab-');
  const key = generateEd25519Key();
  const keyFile = join(dir, 'client_key');
  writeFileSync(keyFile, key.private, { mode: 0o600 });
  const sim = await NetconfSimulator.start({
    devices,
    authorizedKeys: [key.public],
    ...(options.profile ? { profile: typeof options.profile === 'function' ? (n: string) => (options.profile as (n: string) => DeviceProfile)(n) : options.profile } : {}),
    ...(options.latencyMs ? { latencyMs: options.latencyMs } : {}),
    ...(options.confirmTimeoutUnitMs ? { confirmTimeoutUnitMs: options.confirmTimeoutUnitMs } : {}),
    ...(options.maxMessageBytes ? { maxMessageBytes: options.maxMessageBytes } : {}),
    ...(options.empty ? { initialRunning: () => '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>' } : {}),
  });
  const target = (device: string, extra: Record<string, unknown> = {}): Target => {
    const spec: Record<string, unknown> = { provider: 'netconf', address: '127.0.0.1', port: sim.device(device).port, user: sim.username, privateKey: `file:${keyFile}`, hostKey: sim.hostKeyFingerprint, connectTimeout: '5s', ...extra };
    for (const k of Object.keys(spec)) if (spec[k] === undefined) delete spec[k];
    return { name: device, spec: spec as Target['spec'] };
  };
  return {
    sim,
    dir,
    keyFile,
    target,
    targetDoc: (device, extra = '') =>
      `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${device} }\nspec:\n  provider: netconf\n  address: 127.0.0.1\n  port: ${sim.device(device).port}\n  user: ${sim.username}\n  privateKey: file:${keyFile}\n  hostKey: "${sim.hostKeyFingerprint}"\n${extra}`,
    open: async (device, extra) => netconfProvider.open(target(device, extra), { secrets, signal: AbortSignal.timeout(10_000), log: testLog(), connectTimeoutMs: 5_000 }),
    stop: () => sim.stop(),
  };
}

/** A merge-mode VLAN of the vendor-like switch model. */
export function vlanSpec(vlans: Array<{ id: number; name: string; description?: string }>): ConfigSpec {
  return {
    keys: { 'vlans/vlan': ['id'] },
    config: { vlans: { '@xmlns': SW_NS, vlan: vlans.map((v) => ({ id: v.id, name: v.name, ...(v.description ? { description: v.description } : {}) })) } },
  };
}

export function vlanResource(name: string, target: string, vlans: Array<{ id: number; name: string; description?: string }>): Resource<ConfigSpec> {
  return makeResource('netconf.Config', name, vlanSpec(vlans), { target });
}

/** Description leaves of interfaces, merge mode. */
export function interfaceSpec(entries: Array<{ name: string; description?: string; enabled?: boolean; type?: boolean }>): ConfigSpec {
  return {
    keys: { 'interfaces/interface': ['name'] },
    config: {
      interfaces: {
        '@xmlns': IF_NS,
        interface: entries.map((e) => ({
          name: e.name,
          ...(e.description !== undefined ? { description: e.description } : {}),
          ...(e.type ? { type: { '@xmlns:ianaift': IANA_NS, '#text': 'ianaift:ethernetCsmacd' } } : {}),
          ...(e.enabled !== undefined ? { enabled: e.enabled } : {}),
        })),
      },
    },
  };
}
