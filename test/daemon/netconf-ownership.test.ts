import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startNetconfLab, SW_NS, SYS_NS, type NetconfLab } from '../providers/netconf/netconf-lab.js';

/**
 * What Plumb set and the spec no longer has is removed; what others set is left
 * alone; containers Plumb created go with the resource (a three-way diff: last
 * applied, desired, live), on a simulated switch that starts empty.
 */
const NC = 'urn:ietf:params:xml:ns:netconf:base:1.0';
const port = (body: string): string =>
  `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: trunk, target: sw1 }\nspec:\n  keys: { ports/port: [name] }\n  config:\n    ports:\n      "@xmlns": ${SW_NS}\n      port:\n        - name: eth5\n${body}`;
const ntp = (servers: string[]): string =>
  `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: ntp, target: sw1 }\nspec:\n  keys: { system/ntp/server: [name] }\n  config:\n    system:\n      "@xmlns": ${SYS_NS}\n      ntp:\n        server:\n${servers.map((s) => `          - { name: ${s}, udp: { address: ${s}.example.net } }\n`).join('')}`;

describe('NETCONF ownership: removed values are removed', () => {
  let lab: NetconfLab;
  let repo: TempRepo;
  let engine: Engine;

  beforeAll(async () => {
    lab = await startNetconfLab(['sw1'], { empty: true });
  });
  afterAll(async () => {
    await lab.stop();
  });
  beforeEach(async () => {
    lab.sim.device('sw1').setRunning(`<config xmlns="${NC}"/>`);
    repo = new TempRepo();
    repo.write('targets.yaml', lab.targetDoc('sw1'));
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-own-'), run: { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '5s', opTimeout: '20s' } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });
  const running = (): string => lab.sim.device('sw1').running();
  const commitAndPass = async (file: string, content: string | undefined, message: string) => {
    if (content === undefined) repo.remove(file);
    else repo.write(file, content);
    repo.commit(message);
    const report = await engine.pass();
    expect(report.run!.results.filter((r) => r.status === 'failed'), message).toEqual([]);
    return report;
  };

  test('a leaf-list [10, 20] -> [20, 30] leaves exactly 20 and 30; a dropped leaf goes; the plan says why', async () => {
    await commitAndPass('p.yaml', port('          description: trunk\n          trunk-vlans: [10, 20]\n'), 'A');
    expect(running()).toContain('<trunk-vlans>10</trunk-vlans>');
    const b = await commitAndPass('p.yaml', port('          trunk-vlans: [20, 30]\n'), 'B');
    expect(b.run!.results[0]!.changes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: '/config/ports/port/eth5/trunk-vlans', before: ['10'], after: undefined, note: expect.stringContaining('leaf-list to remove: 10') }),
        expect.objectContaining({ path: '/config/ports/port/eth5/description', before: 'trunk', after: undefined, note: expect.stringContaining('no longer in spec') }),
      ]),
    );
    const xml = running();
    expect(xml).not.toContain('<trunk-vlans>10</trunk-vlans>');
    expect(xml).toContain('<trunk-vlans>20</trunk-vlans>');
    expect(xml).toContain('<trunk-vlans>30</trunk-vlans>');
    expect(xml).not.toContain('description');
    // Converged now: a sweep plans nothing more to remove, and sends nothing.
    const edits = lab.sim.device('sw1').counters.editConfigs;
    const sweep = await engine.pass({ sweep: true });
    expect(sweep.run!.results.map((r) => r.status)).toEqual(['converged']);
    expect(lab.sim.device('sw1').counters.editConfigs).toBe(edits);
  });

  test('deleting a resource removes the entry and containers it created, and nothing someone else put beside them', async () => {
    await commitAndPass('n.yaml', ntp(['a', 'b']), 'A');
    expect(running()).toContain('<ntp>');
    await commitAndPass('n.yaml', undefined, 'gone');
    expect(running()).not.toContain('<ntp');
    expect(running()).not.toContain('example.net');
  });

  test('a container that was there before stays when the resource goes; a leaf someone added to its entry stays too', async () => {
    lab.sim.device('sw1').setRunning(`<config xmlns="${NC}"><system xmlns="${SYS_NS}"><ntp><enabled>true</enabled></ntp></system></config>`);
    await commitAndPass('n.yaml', ntp(['a']), 'A');
    await commitAndPass('p.yaml', port('          trunk-vlans: [10]\n'), 'port');
    // Someone else configures the port Plumb created: the entry is no longer Plumb's alone.
    const xml = running().replace('<trunk-vlans>10</trunk-vlans>', '<trunk-vlans>10</trunk-vlans><mode>trunk</mode>');
    lab.sim.device('sw1').setRunning(xml);
    repo.remove('n.yaml');
    await commitAndPass('p.yaml', undefined, 'both gone');
    const after = running();
    expect(after).toContain('<ntp><enabled>true</enabled></ntp>');
    expect(after).not.toContain('example.net');
    expect(after).toContain('<port><name>eth5</name><mode>trunk</mode></port>');
    expect(after).not.toContain('trunk-vlans');
  });
});
