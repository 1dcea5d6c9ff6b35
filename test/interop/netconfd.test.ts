/**
 * Interop with a real NETCONF server: Debian's yuma123 netconfd behind OpenSSH
 * (test/helpers/netconfd.ts), once speaking only base:1.0 (end-of-message
 * framing) and once only base:1.1 (chunked framing). The provider contract,
 * then configurations converged through the engine: ietf-interfaces create,
 * change, a no-op pass that sends no edit-config, removal; the three-way diff on
 * netconfd's own models (an ietf-system leaf-list, ietf-ip's address list nested
 * in an interface, its ipv4/ipv6 presence containers) beside what another
 * session wrote; an edit netconfd rejects; a confirmed commit that does not
 * verify; a wrong host key; and the built CLI
 * killed -9 while its confirmed commit is pending on netconfd.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { netconfProvider } from '../../providers/netconf/index.js';
import type { ConfigSpec, NetconfSession } from '../../providers/netconf/index.js';
import { serializeXml, type XmlElement } from '../../providers/netconf/client/xml.js';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import type { Target } from '../../src/provider.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { runPlumb } from '../helpers/cli.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { netconfdMissing, startNetconfd, type NetconfdLab } from '../helpers/netconfd.js';
import { describeProviderContract, testLog } from '../helpers/provider-contract.js';
import { makeResource } from '../helpers/resources.js';

const IF_NS = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
const IANA_NS = 'urn:ietf:params:xml:ns:yang:iana-if-type';
const IP_NS = 'urn:ietf:params:xml:ns:yang:ietf-ip';
const SYS_NS = 'urn:ietf:params:xml:ns:yang:ietf-system';
const ETHERNET = { '@xmlns:ianaift': IANA_NS, '#text': 'ianaift:ethernetCsmacd' };
const ETHERNET_XML = `<type xmlns:ianaift="${IANA_NS}">ianaift:ethernetCsmacd</type>`;
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

/** A session of its own (not the engine's): "someone else" on the device. */
async function withSession<T>(lab: NetconfdLab, work: (s: NetconfSession) => Promise<T>): Promise<T> {
  const s = (await netconfProvider.open(target(lab), { secrets, signal: AbortSignal.timeout(15_000), log: testLog(), connectTimeoutMs: 10_000 })) as NetconfSession;
  try {
    return await work(s);
  } finally {
    await s.close();
  }
}

async function runningInterfaces(lab: NetconfdLab): Promise<string> {
  return (await runningConfig(lab)).map((e) => serializeXml(e)).join('');
}

async function runningConfig(lab: NetconfdLab, source: 'running' | 'candidate' = 'running'): Promise<XmlElement[]> {
  return withSession(lab, (s) => s.getConfig(source, undefined, AbortSignal.timeout(10_000)));
}

/** Another session edits the candidate and commits it (xmlns:nc is declared on <config> for operation attributes). */
async function otherSessionCommits(lab: NetconfdLab, config: string): Promise<void> {
  await withSession(lab, async (s) => {
    await s.rpc(`<edit-config><target><candidate/></target><config xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">${config}</config></edit-config>`, 'edit-config', AbortSignal.timeout(10_000));
    await s.rpc('<commit/>', 'commit', AbortSignal.timeout(10_000));
  });
}

/** The children named `name` of every element in `els`. */
function below(els: XmlElement[], name: string): XmlElement[] {
  return els.flatMap((e) => e.children.filter((c) => c.name === name));
}

/** The interfaces/interface entry named `name`. */
function iface(config: XmlElement[], name: string): XmlElement | undefined {
  return below(
    config.filter((e) => e.name === 'interfaces' && e.ns === IF_NS),
    'interface',
  ).find((e) => e.children.some((c) => c.name === 'name' && c.text === name));
}

const texts = (els: XmlElement[]): string[] => els.map((e) => e.text.trim()).sort();

/** A random pinned key: the lab's host key does not match it. */
const wrongFingerprint = (): string => `SHA256:${createHash('sha256').update(randomBytes(32)).digest('base64').replace(/=+$/, '')}`;

/** A netconf.Config document; YAML reads the spec written as JSON. */
const configDoc = (name: string, spec: ConfigSpec | Record<string, unknown>): string => `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${name}, target: nd1 }\nspec: ${JSON.stringify(spec)}\n`;

/** Polls a state (a file, the device, the journal); never a guess at a duration. */
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string, context: () => string = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function withDb<T>(stateDir: string, read: (db: Database.Database) => T): T {
  const db = new Database(join(stateDir, 'plumb.db'), { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
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
        lab = await startNetconfd({ protocols, gateIfconfig: true });
      });
      afterAll(async () => {
        await lab?.stop();
      });

      const targetDoc = (hostKey = lab.hostKeyFingerprint): string =>
        `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: nd1 }\nspec:\n  provider: netconf\n  address: 127.0.0.1\n  port: ${lab.port}\n  user: ${lab.user}\n  privateKey: ${lab.keyRef}\n  hostKey: "${hostKey}"\n  confirmTimeout: 30s\n`;
      const ifDoc = (name: string, ifname: string, description: string): string =>
        `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ${name}, target: nd1 }\nspec:\n  keys: { interfaces/interface: [name] }\n  config:\n    interfaces:\n      "@xmlns": ${IF_NS}\n      interface:\n        - name: ${ifname}\n          description: ${JSON.stringify(description)}\n          type: { "@xmlns:ianaift": "${IANA_NS}", "#text": "ianaift:ethernetCsmacd" }\n          enabled: true\n`;

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

        /** Commits the repo as it is now and runs one pass; `failing` lists the ids expected to fail. */
        const pass = async (message: string, failing: string[] = []) => {
          repo.commit(message);
          const report = await engine.pass();
          expect(
            report.run!.results.filter((r) => r.status === 'failed').map((r) => [r.id, r.error?.message]),
            message,
          ).toEqual(failing.map((id) => [id, expect.any(String)]));
          return report;
        };

        it('a leaf-list [a, b] -> [b, c] leaves exactly b and c of what Plumb set; deleting the resource leaves only what another session set', async () => {
          await otherSessionCommits(lab, `<system xmlns="${SYS_NS}"><dns-resolver><search>other.example</search></dns-resolver></system>`);
          const dns = (search: string[]): string => configDoc('dns', { config: { system: { '@xmlns': SYS_NS, 'dns-resolver': { search } } } });
          const search = async (): Promise<string[]> => texts(below(below((await runningConfig(lab)).filter((e) => e.name === 'system' && e.ns === SYS_NS), 'dns-resolver'), 'search'));
          repo.write('targets.yaml', targetDoc());
          repo.write('dns.yaml', dns(['a.plumb.example', 'b.plumb.example']));
          await pass('A');
          expect(await search()).toEqual(['a.plumb.example', 'b.plumb.example', 'other.example']);

          repo.write('dns.yaml', dns(['b.plumb.example', 'c.plumb.example']));
          const b = await pass('B');
          expect(b.run!.results.map((r) => [r.id, r.status])).toEqual([['netconf.Config/dns', 'changed']]);
          expect(b.run!.results[0]!.changes).toEqual(
            expect.arrayContaining([
              expect.objectContaining({ path: '/config/system/dns-resolver/search', before: ['a.plumb.example'], after: undefined, note: expect.stringContaining('leaf-list to remove: a.plumb.example') }),
              expect.objectContaining({ path: '/config/system/dns-resolver/search', after: ['b.plumb.example', 'c.plumb.example'], note: 'leaf-list to add: c.plumb.example' }),
            ]),
          );
          expect(await search()).toEqual(['b.plumb.example', 'c.plumb.example', 'other.example']);

          // Converged: a sweep removes nothing more and sends no edit-config.
          const edits = editTransactions(lab);
          const sweep = await engine.pass({ sweep: true });
          expect(sweep.run!.results.map((r) => [r.id, r.status])).toEqual([['netconf.Config/dns', 'converged']]);
          expect(editTransactions(lab)).toBe(edits);

          repo.remove('dns.yaml');
          const removed = await pass('remove');
          expect(removed.run!.results.map((r) => [r.id, r.status])).toEqual([['netconf.Config/dns', 'deleted']]);
          expect(await search()).toEqual(['other.example']);
          expect(engine.store.tombstones()).toEqual([]);
          await otherSessionCommits(lab, `<system xmlns="${SYS_NS}"><dns-resolver nc:operation="delete"/></system>`);
        });

        it('a list nested in a list entry (ietf-ip addresses of an interface): entries come and go; the entry another session added stays', async () => {
          await otherSessionCommits(
            lab,
            `<interfaces xmlns="${IF_NS}"><interface><name>plumb-n1</name>${ETHERNET_XML}<ipv4 xmlns="${IP_NS}"><address><ip>10.9.0.9</ip><prefix-length>24</prefix-length></address></ipv4></interface></interfaces>`,
          );
          const addresses = (ips: string[]): string =>
            configDoc('addrs', {
              keys: { 'interfaces/interface': ['name'], 'interfaces/interface/ipv4/address': ['ip'] },
              config: { interfaces: { '@xmlns': IF_NS, interface: [{ name: 'plumb-n1', ipv4: { '@xmlns': IP_NS, address: ips.map((ip) => ({ ip, 'prefix-length': 24 })) } }] } },
            });
          const ips = async (): Promise<string[]> => texts(below(below(below([iface(await runningConfig(lab), 'plumb-n1')!], 'ipv4'), 'address'), 'ip'));
          repo.write('targets.yaml', targetDoc());
          repo.write('addrs.yaml', addresses(['10.9.0.1']));
          await pass('A');
          expect(await ips()).toEqual(['10.9.0.1', '10.9.0.9']);

          repo.write('addrs.yaml', addresses(['10.9.0.2', '10.9.0.3']));
          const b = await pass('B');
          expect(b.run!.results[0]!.changes).toEqual(
            expect.arrayContaining([
              expect.objectContaining({ path: '/config/interfaces/interface/plumb-n1/ipv4/address/10.9.0.1', before: { ip: '10.9.0.1', 'prefix-length': '24' }, after: undefined }),
              expect.objectContaining({ path: '/config/interfaces/interface/plumb-n1/ipv4/address/10.9.0.2', before: undefined, note: 'list entry to create' }),
            ]),
          );
          expect(await ips()).toEqual(['10.9.0.2', '10.9.0.3', '10.9.0.9']);

          repo.remove('addrs.yaml');
          await pass('remove');
          const entry = iface(await runningConfig(lab), 'plumb-n1');
          expect(texts(below(below(below([entry!], 'ipv4'), 'address'), 'ip'))).toEqual(['10.9.0.9']);
          expect(texts(below([entry!], 'type'))).toEqual(['ianaift:ethernetCsmacd']);
          await otherSessionCommits(lab, `<interfaces xmlns="${IF_NS}"><interface nc:operation="delete"><name>plumb-n1</name></interface></interfaces>`);
        });

        it('a list entry Plumb created, which another session added an entry to, stays with that entry alone when the resource goes', async () => {
          const users = (keys: string[]): string =>
            configDoc('users', {
              keys: { 'system/authentication/user': ['name'], 'system/authentication/user/authorized-key': ['name'] },
              config: { system: { '@xmlns': SYS_NS, authentication: { user: [{ name: 'plumb-u1', 'authorized-key': keys.map((name) => ({ name, algorithm: 'ssh-ed25519', 'key-data': 'AAAA' })) }] } } },
            });
          const user = async (): Promise<XmlElement[]> =>
            below(below((await runningConfig(lab)).filter((e) => e.name === 'system' && e.ns === SYS_NS), 'authentication'), 'user').filter((u) => u.children.some((c) => c.name === 'name' && c.text === 'plumb-u1'));
          const keyNames = async (): Promise<string[]> => texts(below(below(await user(), 'authorized-key'), 'name'));
          repo.write('targets.yaml', targetDoc());
          repo.write('users.yaml', users(['k1', 'k2']));
          await pass('A');
          expect(await keyNames()).toEqual(['k1', 'k2']);
          repo.write('users.yaml', users(['k2']));
          await pass('B');
          expect(await keyNames()).toEqual(['k2']);
          // Someone else adds a key to the user Plumb created: the user is no longer Plumb's alone.
          await otherSessionCommits(lab, `<system xmlns="${SYS_NS}"><authentication><user><name>plumb-u1</name><authorized-key><name>other</name><algorithm>ssh-ed25519</algorithm><key-data>BBBB</key-data></authorized-key></user></authentication></system>`);
          repo.remove('users.yaml');
          const removed = await pass('remove');
          expect(removed.run!.results.map((r) => [r.id, r.status])).toEqual([['netconf.Config/users', 'deleted']]);
          expect(await user(), 'the user stays, for the key someone else added').toHaveLength(1);
          expect(await keyNames()).toEqual(['other']);
          await otherSessionCommits(lab, `<system xmlns="${SYS_NS}"><authentication nc:operation="delete"/></system>`);
        });

        it('presence containers the resource created go with it; the one another session made stays', async () => {
          // plumb-p1 and its (empty) ipv6 are someone else's; Plumb adds ipv4 and an ipv6 mtu, and interface plumb-p2 with an empty ipv4.
          await otherSessionCommits(lab, `<interfaces xmlns="${IF_NS}"><interface><name>plumb-p1</name>${ETHERNET_XML}<ipv6 xmlns="${IP_NS}"/></interface></interfaces>`);
          repo.write('targets.yaml', targetDoc());
          repo.write(
            'presence.yaml',
            configDoc('presence', {
              keys: { 'interfaces/interface': ['name'] },
              config: {
                interfaces: {
                  '@xmlns': IF_NS,
                  interface: [
                    { name: 'plumb-p1', ipv4: { '@xmlns': IP_NS, mtu: 1400 }, ipv6: { '@xmlns': IP_NS, mtu: 1500 } },
                    { name: 'plumb-p2', type: ETHERNET, ipv4: { '@xmlns': IP_NS } },
                  ],
                },
              },
            }),
          );
          await pass('A');
          let config = await runningConfig(lab);
          expect(texts(below(below([iface(config, 'plumb-p1')!], 'ipv4'), 'mtu'))).toEqual(['1400']);
          expect(texts(below(below([iface(config, 'plumb-p1')!], 'ipv6'), 'mtu'))).toEqual(['1500']);
          expect(below([iface(config, 'plumb-p2')!], 'ipv4')).toHaveLength(1);

          repo.remove('presence.yaml');
          const removed = await pass('remove');
          expect(removed.run!.results.map((r) => [r.id, r.status])).toEqual([['netconf.Config/presence', 'deleted']]);
          config = await runningConfig(lab);
          const p1 = iface(config, 'plumb-p1');
          expect(p1, 'the interface another session made stays').toBeDefined();
          expect(below([p1!], 'ipv4'), 'the ipv4 presence container Plumb created is gone').toEqual([]);
          expect(below([p1!], 'ipv6').map((e) => e.children.map((c) => c.name)), 'the ipv6 presence container stays, without the mtu Plumb set').toEqual([[]]);
          expect(iface(config, 'plumb-p2'), 'the interface Plumb created is gone').toBeUndefined();
          await otherSessionCommits(lab, `<interfaces xmlns="${IF_NS}"><interface nc:operation="delete"><name>plumb-p1</name></interface></interfaces>`);
        });

        it("an edit netconfd rejects fails the transaction with netconfd's own error; the candidate is discarded and both locks are released", async () => {
          repo.write('targets.yaml', targetDoc());
          repo.write(
            'bad.yaml',
            configDoc('bad', {
              keys: { 'interfaces/interface': ['name'], 'interfaces/interface/ipv4/address': ['ip'] },
              config: { interfaces: { '@xmlns': IF_NS, interface: [{ name: 'plumb-bad', type: ETHERNET, ipv4: { '@xmlns': IP_NS, address: [{ ip: '10.7.0.1', 'prefix-length': 99 }] } }] } },
            }),
          );
          // Sent first, accepted into the candidate, then the whole transaction fails with the rejected edit.
          repo.write('good.yaml', ifDoc('a-good', 'plumb-good', 'sent before the rejected edit'));
          const report = await pass('bad', ['netconf.Config/a-good', 'netconf.Config/bad']);
          const error = report.run!.results.find((r) => r.id === 'netconf.Config/bad')!.error!;
          expect(report.run!.results.find((r) => r.id === 'netconf.Config/a-good')!.error!.message).toBe(error.message);
          // error-tag, error-message, error-path and error-app-tag as netconfd wrote them.
          expect(error.message).toContain('edit-config of netconf.Config/bad failed: invalid-value (protocol): value not in range');
          expect(error.message).toContain("ip:address[ip:ip='10.7.0.1']/ip:prefix-length");
          expect(error.message).toContain('app-tag not-in-range');
          expect(error.message).toContain('bad-value=99');
          // The engine's session is still open: another session can take both locks, and the candidate holds nothing of the transaction.
          await withSession(lab, async (s) => {
            await s.lock('running', AbortSignal.timeout(10_000));
            await s.lock('candidate', AbortSignal.timeout(10_000));
            const candidate = await s.getConfig('candidate', undefined, AbortSignal.timeout(10_000));
            expect(iface(candidate, 'plumb-good'), 'the accepted edit was discarded').toBeUndefined();
            expect(iface(candidate, 'plumb-bad')).toBeUndefined();
            await s.unlock('candidate', AbortSignal.timeout(10_000));
            await s.unlock('running', AbortSignal.timeout(10_000));
          });
          const running = await runningConfig(lab);
          expect(iface(running, 'plumb-good')).toBeUndefined();
          expect(iface(running, 'plumb-bad')).toBeUndefined();
        });

        it('a confirmed commit whose re-read differs is rolled back at once, and nothing is left pending', async () => {
          // netconfd stores the uint16 "01400" as 1400: running never reads as the spec says, so the verification fails.
          repo.write('targets.yaml', targetDoc());
          repo.write(
            'mtu.yaml',
            configDoc('mtu', { keys: { 'interfaces/interface': ['name'] }, config: { interfaces: { '@xmlns': IF_NS, interface: [{ name: 'plumb-v1', type: ETHERNET, ipv4: { '@xmlns': IP_NS, mtu: '01400' } }] } } }),
          );
          const report = await pass('unverifiable', ['netconf.Config/mtu']);
          const error = report.run!.results[0]!.error!;
          expect(error.code).toBe('PLUMB_VERIFY');
          expect(error.message).toContain('after the confirmed commit running still differs (netconf.Config/mtu differs at /config/interfaces/interface/plumb-v1/ipv4/mtu)');
          expect(iface(await runningConfig(lab), 'plumb-v1'), 'running is back on its previous configuration').toBeUndefined();
          // Nothing pending: another session may commit.
          await withSession(lab, (s) => s.commit({}, AbortSignal.timeout(10_000)));
        });

        it('a wrong host key: refused before any authentication, the error says so, nothing is written', async () => {
          const sshdFrom = lab.sshdLog().length;
          const netconfdFrom = lab.netconfdLog().length;
          const edits = editTransactions(lab);
          repo.write('targets.yaml', targetDoc(wrongFingerprint()));
          repo.write('if.yaml', ifDoc('hostkey-if', 'plumb-hk', 'never written'));
          const report = await pass('wrong host key', ['netconf.Config/hostkey-if']);
          const error = report.run!.results[0]!.error!;
          expect(error.code).toBe('PLUMB_HOST_KEY');
          expect(error.message).toContain(`host key ${lab.hostKeyFingerprint} does not match the pinned hostKey`);
          expect(error.message).toContain('No credentials were sent');
          const sshd = lab.sshdLog().slice(sshdFrom);
          expect(sshd).toContain('Connection from 127.0.0.1');
          expect(sshd, 'no authentication was attempted').not.toMatch(/publickey|password|keyboard-interactive|Accepted|Failed|Starting session/i);
          expect(lab.netconfdLog().slice(netconfdFrom), 'netconfd never saw a session').not.toContain('New session');
          expect(editTransactions(lab)).toBe(edits);
          expect(iface(await runningConfig(lab), 'plumb-hk')).toBeUndefined();
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
      describe('the built CLI killed -9 while its confirmed commit is pending on netconfd', () => {
        let repo: TempRepo;
        let stateDir: string;
        beforeEach(() => {
          repo = new TempRepo();
          stateDir = tempDir('plumb-crash-state-');
        });
        afterEach(async () => {
          await lab.releaseIfconfig();
          repo.cleanup();
        });

        const persists = protocols === 'netconf1.1';
        it(
          persists
            ? 'base:1.1: the confirmed commit (with persist) outlives the session; the next run cancels it by its persist-id and writes again: the crashed write unknown, the new one done'
            : 'base:1.0: netconfd cannot roll back for the dead session (it still holds the lock) and keeps the config; the next run reads it converged: the crashed write unknown, settled by that read',
          async () => {
            const ops = (): Array<{ state: string; error: string | null; progress: { persistId: string | null; confirmBy: number } | null }> =>
              existsSync(join(stateDir, 'plumb.db'))
                ? withDb(stateDir, (db) =>
                    (db.prepare("SELECT state, error, progress FROM ops WHERE resource_id = 'netconf.Config/crash-if' ORDER BY id").all() as Array<{ state: string; error: string | null; progress: string | null }>).map((o) => ({
                      ...o,
                      progress: o.progress === null ? null : (JSON.parse(o.progress) as { persistId: string | null; confirmBy: number }),
                    })),
                  )
                : [];
            const progress = { persistId: persists ? expect.stringMatching(/^[0-9a-f]{32}$/) : null, confirmBy: expect.any(Number) };
            repo.write('targets.yaml', targetDoc());
            repo.write('if.yaml', ifDoc('crash-if', 'plumb-crash', 'survives a crash'));
            repo.commit('create');
            await lab.holdIfconfig();
            const logFrom = lab.netconfdLog().length;
            const first = runPlumb(['apply', '--once', '--repo', repo.dir, '--state', stateDir]);
            let output = '';
            first.child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
            first.child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
            const context = (): string => `plumb: ${output}\nifconfig: ${lab.ifconfigCalls()}\nnetconfd: ${lab.netconfdLog().slice(logFrom)}`;
            // netconfd is inside the commit: its interface SIL runs `ifconfig plumb-crash up` for the new interface, and the stub holds it.
            await until(() => lab.ifconfigCalls().includes('held plumb-crash up'), 30_000, 'netconfd running the held ifconfig', context);
            // The commit held is the confirmed one: its progress (with the persist token on base:1.1) was journaled before it was sent.
            const journaled = ops();
            expect(journaled).toEqual([{ state: 'intent', error: null, progress }]);
            first.child.kill('SIGKILL');
            expect((await first.done).signal).toBe('SIGKILL');
            await lab.releaseIfconfig();
            // netconfd finishes the commit, then finds the session gone.
            await until(() => /Session \d+ closed/.test(lab.netconfdLog().slice(logFrom)), 30_000, 'netconfd closing the killed session', context);
            const closed = lab.netconfdLog().slice(logFrom);
            expect(iface(await runningConfig(lab), 'plumb-crash'), 'running has the unconfirmed commit').toBeDefined();
            if (persists) {
              await withSession(lab, async (s) => {
                // Pending: another session cannot commit until it is confirmed or cancelled.
                await expect(s.commit({}, AbortSignal.timeout(10_000))).rejects.toThrow(/confirmed-commit pending/);
              });
            } else {
              // RFC 6241 8.4.1 wants a rollback when the session ends; netconfd 2.13 tries before it drops the dead session's
              // locks, fails, and forgets the confirmed commit: nothing is pending, the config stays.
              expect(closed).toContain('restore running config failed (config locked)');
              await withSession(lab, (s) => s.commit({}, AbortSignal.timeout(10_000)));
            }

            const secondFrom = lab.netconfdLog().length;
            const second = await runPlumb(['apply', '--once', '--repo', repo.dir, '--state', stateDir]).done;
            expect(second.code, second.stdout + second.stderr).toBe(0);
            const log = lab.netconfdLog().slice(secondFrom);
            // The crashed write: unknown at start-up (Plumb was killed mid-operation), then settled.
            const crashed = { state: 'resolved', error: expect.stringContaining('stopped mid-operation'), progress: journaled[0]!.progress };
            expect(withDb(stateDir, (db) => db.prepare("SELECT type FROM events WHERE resource_id = 'netconf.Config/crash-if' AND type = 'interrupt'").all())).toHaveLength(1);
            if (persists) {
              // Cancelled by its persist-id (netconfd's rollback is an edit by session 0) before the new confirmed commit, which was confirmed.
              expect(ops()).toEqual([crashed, { state: 'done', error: null, progress }]);
              expect(log).toMatch(/on session 0 by superuser@localhost\s+at \S+ on target 'running'[\s\S]*operation create on session \d+ by plumbnc@127\.0\.0\.1\s+at \S+ on target 'running'/);
              await withSession(lab, (s) => s.commit({}, AbortSignal.timeout(10_000)));
            } else {
              // Read converged: settled without a write.
              expect(ops()).toEqual([crashed]);
              expect(log).not.toContain('edit-transaction');
            }
            expect(texts(below([iface(await runningConfig(lab), 'plumb-crash')!], 'description'))).toEqual(['survives a crash']);
            await otherSessionCommits(lab, `<interfaces xmlns="${IF_NS}"><interface nc:operation="delete"><name>plumb-crash</name></interface></interfaces>`);
          },
        );
      });
    });
  }
}
