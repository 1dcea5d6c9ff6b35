/**
 * The NETCONF contract (netconf-contract.ts) against the simulator and against
 * netconfd: a server speaking base:1.0 and 1.1 (simulator profile `full`,
 * netconfd's default), and one speaking base:1.0 only (profile `base10`,
 * netconfd --protocols=netconf1.0). netconfd runs when it is installed (and
 * the tests run as root), and must when CI is set, as in netconfd.test.ts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from 'vitest';
import { generateEd25519Key, NetconfSimulator } from '../../fixtures/simulators/netconf/index.js';
import { netconfdMissing, startNetconfd, type NetconfdLab } from '../helpers/netconfd.js';
import { CONTRACT_CASES, ContractHarness, type ContractServer } from './netconf-contract.js';

interface Lab {
  server: ContractServer;
  stop(): Promise<void>;
}

async function simulatorLab(bases: 'both' | '1.0'): Promise<Lab> {
  const key = generateEd25519Key();
  const sim = await NetconfSimulator.start({
    devices: ['contract'],
    profile: bases === 'both' ? 'full' : 'base10',
    authorizedKeys: [key.public],
    // As netconfd starts here: an empty running configuration.
    initialRunning: () => '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>',
  });
  const device = sim.device('contract');
  return {
    server: { bases, port: device.port, username: sim.username, privateKey: Buffer.from(key.private), hostKeyFingerprint: sim.hostKeyFingerprint },
    stop: () => sim.stop(),
  };
}

async function netconfdLab(bases: 'both' | '1.0'): Promise<Lab> {
  // Key login only: netconfd.test.ts, which may run alongside, logs in with the password its own lab set.
  const lab: NetconfdLab = await startNetconfd({ passwordLogin: false, ...(bases === 'both' ? {} : { protocols: 'netconf1.0' as const }) });
  return {
    server: { bases, port: lab.port, username: lab.user, privateKey: readFileSync(lab.keyRef.slice('file:'.length)), hostKeyFingerprint: lab.hostKeyFingerprint },
    stop: () => lab.stop(),
  };
}

function contractSuite(label: string, bases: 'both' | '1.0', start: (bases: 'both' | '1.0') => Promise<Lab>): void {
  describe(`NETCONF contract: ${label}`, () => {
    let lab: Lab | undefined;
    let h: ContractHarness;
    beforeAll(async () => {
      lab = await start(bases);
      h = new ContractHarness(lab.server);
    });
    afterAll(async () => {
      await lab?.stop();
    });
    beforeEach(async () => {
      await h.reset();
    });
    afterEach(async () => {
      await h.closeAll();
    });
    for (const c of CONTRACT_CASES) {
      if (c.bases !== undefined && c.bases !== bases) continue;
      it(c.name, () => c.run(h));
    }
  });
}


for (const bases of ['both', '1.0'] as const) contractSuite(`simulator (${bases === 'both' ? 'full' : 'base10'})`, bases, simulatorLab);

const why = netconfdMissing();
if (why) {
  if (process.env.CI) {
    describe('NETCONF contract: netconfd', () => {
      it('needs netconfd (CI installs it, and runs as root)', () => {
        throw new Error(why);
      });
    });
  } else {
    describe.skip(`NETCONF contract: netconfd (skipped: ${why})`, () => {
      it('needs netconfd', () => {});
    });
  }
} else {
  for (const bases of ['both', '1.0'] as const) contractSuite(`netconfd (${bases === 'both' ? 'base:1.0 and 1.1' : '--protocols=netconf1.0'})`, bases, netconfdLab);
}
