/**
 * Interop with a real NETCONF server: Debian's yuma123 netconfd behind OpenSSH
 * (test/helpers/netconfd.ts), once speaking only base:1.0 (end-of-message
 * framing) and once only base:1.1 (chunked framing). The provider contract,
 * then an ietf-interfaces configuration converged through the engine: create,
 * change, a no-op pass that sends no edit-config, removal.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { netconfProvider } from '../../providers/netconf/index.js';
import type { ConfigSpec, NetconfSession } from '../../providers/netconf/index.js';
import { serializeXml } from '../../providers/netconf/client/xml.js';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import type { Target } from '../../src/provider.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { netconfdMissing, startNetconfd, type NetconfdLab } from '../helpers/netconfd.js';
import { describeProviderContract, testLog } from '../helpers/provider-contract.js';
import { makeResource } from '../helpers/resources.js';

const IF_NS = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
const IANA_NS = 'urn:ietf:params:xml:ns:yang:iana-if-type';
const secrets = new SecretResolver({ env: {} });

function target(lab: NetconfdLab, extra: Record<string, unknown> = {}): Target {
  return { name: 'nd1', spec: { provider: 'netconf', address: lab.address, port: lab.port, user: lab.user, privateKey: lab.keyRef, hostKey: lab.hostKeyFingerprint, confirmTimeout: '30s', connectTimeout: '10s', ...extra } };
}

function interfaces(entries: Array<{ name: string; description: string; enabled?: boolean }>): ConfigSpec {
  return {
    mode: 'merge',
    keys: { 'interfaces/interface': ['name'] },
    config: {
      interfaces: {
        '@xmlns': IF_NS,
        interface: entries.map((e) => ({
          name: e.name,
          description: e.description,
          type: { '@xmlns:ianaift': IANA_NS, '#text': 'ianaift:ethernetCsmacd' },
          ...(e.enabled !== undefined ? { enabled: e.enabled } : {}),
        })),
      },
    },
  };
}

/** Distinct edit transactions netconfd logged (every edit-config and commit makes at least one). */
function editTransactions(lab: NetconfdLab): number {
  return new Set([...lab.netconfdLog().matchAll(/^edit-transaction (\d+): operation \S+ on session [1-9]/gm)].map((m) => m[1])).size;
}

async function runningInterfaces(lab: NetconfdLab): Promise<string> {
  const s = await netconfProvider.open(target(lab), { secrets, signal: AbortSignal.timeout(15_000), log: testLog(), connectTimeoutMs: 10_000 });
  try {
    const data = await s.getConfig('running', undefined, AbortSignal.timeout(10_000));
    return data.map((e) => serializeXml(e)).join('');
  } finally {
    await s.close();
  }
}

const why = netconfdMissing();

if (why) {
  if (process.env.CI) {
    describe('netconfd interop', () => {
      it('needs netconfd (CI installs it, and runs as root)', () => {
        throw new Error(why);
      });
    });
  } else {
    describe.skip(`netconfd interop (skipped: ${why})`, () => {
      it('needs netconfd', () => {});
    });
  }
} else {
  for (const protocols of ['netconf1.0', 'netconf1.1'] as const) {
    describe(`netconfd ${protocols}`, () => {
      let lab: NetconfdLab;
      beforeAll(async () => {
        lab = await startNetconfd({ protocols });
      });
      afterAll(async () => {
        await lab?.stop();
      });

      it(`negotiates ${protocols === 'netconf1.0' ? 'end-of-message' : 'chunked'} framing and sees :candidate and :confirmed-commit`, async () => {
        const s = (await netconfProvider.open(target(lab), { secrets, signal: AbortSignal.timeout(15_000), log: testLog(), connectTimeoutMs: 10_000 })) as NetconfSession;
        expect(s.client.framing).toBe(protocols === 'netconf1.0' ? 'eom' : 'chunked');
        expect(s.hasCandidate).toBe(true);
        // netconfd lists :confirmed-commit:1.1 (persist) only to base:1.1 sessions.
        expect(s.confirmedCommit).toBe(protocols === 'netconf1.0' ? '1.0' : '1.1');
        await s.close();
        // A password login works as well (keyboard-interactive or password, whichever the server offers).
        const p = await netconfProvider.open(target(lab, { privateKey: undefined, password: lab.passwordRef }), { secrets, signal: AbortSignal.timeout(15_000), log: testLog(), connectTimeoutMs: 10_000 });
        expect(p.alive).toBe(true);
        await p.close();
      });

      describeProviderContract(`netconf on netconfd (${protocols})`, async () => ({
        provider: netconfProvider,
        target: target(lab),
        secrets,
        cases: [
          {
            kind: 'netconf.Config',
            create: makeResource('netconf.Config', 'contract-if', interfaces([{ name: 'plumb-c0', description: 'created by the contract suite' }]), { target: 'nd1' }),
            update: makeResource('netconf.Config', 'contract-if', interfaces([{ name: 'plumb-c0', description: 'updated by the contract suite', enabled: false }]), { target: 'nd1' }),
          },
        ],
        writes: () => editTransactions(lab),
        teardown: async () => {},
      }));

      describe('engine: converge ietf-interfaces', () => {
        let repo: TempRepo;
        let engine: Engine;
        const targetDoc = (): string =>
          `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: nd1 }\nspec:\n  provider: netconf\n  address: 127.0.0.1\n  port: ${lab.port}\n  user: ${lab.user}\n  privateKey: ${lab.keyRef}\n  hostKey: "${lab.hostKeyFingerprint}"\n  confirmTimeout: 30s\n`;
        const ifDoc = (name: string, ifname: string, description: string): string =>
          `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${name}, target: nd1 }\nspec:\n  keys: { interfaces/interface: [name] }\n  config:\n    interfaces:\n      "@xmlns": ${IF_NS}\n      interface:\n        - name: ${ifname}\n          description: ${JSON.stringify(description)}\n          type: { "@xmlns:ianaift": "${IANA_NS}", "#text": "ianaift:ethernetCsmacd" }\n          enabled: true\n`;

        beforeEach(async () => {
          repo = new TempRepo();
          engine = await Engine.open({
            config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-state-'), run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '10s', opTimeout: '60s' } }),
            providers: [netconfProvider as never],
            log: silentLog,
            env: {},
          });
        });
        afterEach(async () => {
          await engine.close();
          repo.cleanup();
        });

        it('create, change, no-op pass without edit-config, remove', async () => {
          repo.write('targets.yaml', targetDoc());
          repo.write('uplinks.yaml', [ifDoc('uplink-a', 'plumb-a', 'uplink A'), ifDoc('uplink-b', 'plumb-b', 'uplink B')].join('---\n'));
          repo.commit('create');
          const created = await engine.pass();
          expect(created.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual([
            ['netconf.Config/uplink-a', 'changed', undefined],
            ['netconf.Config/uplink-b', 'changed', undefined],
          ]);
          let running = await runningInterfaces(lab);
          expect(running).toContain('<name>plumb-a</name><description>uplink A</description>');
          expect(running).toContain('<name>plumb-b</name><description>uplink B</description>');

          repo.write('uplinks.yaml', [ifDoc('uplink-a', 'plumb-a', 'uplink A, moved'), ifDoc('uplink-b', 'plumb-b', 'uplink B')].join('---\n'));
          repo.commit('change');
          const changed = await engine.pass();
          expect(changed.run!.results.map((r) => [r.id, r.status])).toEqual([['netconf.Config/uplink-a', 'changed']]);
          expect(changed.run!.results[0]!.changes).toMatchObject([{ path: '/config/interfaces/interface/plumb-a/description', before: 'uplink A', after: 'uplink A, moved' }]);
          running = await runningInterfaces(lab);
          expect(running).toContain('<description>uplink A, moved</description>');

          const before = editTransactions(lab);
          const sweep = await engine.pass({ sweep: true });
          expect(sweep.run!.results.map((r) => r.status)).toEqual(['converged', 'converged']);
          expect(editTransactions(lab)).toBe(before);

          repo.remove('uplinks.yaml');
          repo.commit('remove');
          const removed = await engine.pass();
          expect(removed.run!.results.map((r) => [r.id, r.status, r.error?.message])).toEqual([
            ['netconf.Config/uplink-a', 'deleted', undefined],
            ['netconf.Config/uplink-b', 'deleted', undefined],
          ]);
          running = await runningInterfaces(lab);
          expect(running).not.toContain('plumb-a');
          expect(running).not.toContain('plumb-b');
          expect(engine.store.tombstones()).toEqual([]);
          // The stub, not the host, saw netconfd's interface commands.
          expect(lab.ifconfigCalls()).toContain('plumb-a');
        });
      });
    });
  }
}
