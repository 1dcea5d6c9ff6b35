import net from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { RedfishSimulator, type RedfishSimulatorOptions, type SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { paths, startTestSim } from './redfish-client.js';

function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

async function getStatus(bmc: SimBmc, agent: Agent, path: string, headers: Record<string, string> = {}): Promise<number> {
  const answer = await request(`${bmc.url}${path}`, { dispatcher: agent, headers });
  await answer.body.text();
  return answer.statusCode;
}

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Start on a random base port below the ephemeral range (no client socket takes it meanwhile), retried if taken. */
async function startOnFreeBasePort(options: RedfishSimulatorOptions): Promise<{ sim: RedfishSimulator; basePort: number }> {
  for (let attempt = 0; ; attempt += 1) {
    const basePort = 20_000 + Math.floor(Math.random() * 10_000);
    try {
      return { sim: await RedfishSimulator.start({ ...options, basePort }), basePort };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

describe('redfish simulator: lifecycle and scale', () => {
  it('starts 500 BMCs at 20 ms latency; each answers an authenticated request, all within a few seconds', async () => {
    const started = Date.now();
    const sim = await RedfishSimulator.start({ bmcs: 500, latencyMs: 20, password: 'pw', profile: (_n, i) => (['generic', 'idrac', 'ilo', 'legacy'] as const)[i % 4] ?? 'generic' });
    const startMs = Date.now() - started;
    const agent = new Agent({ connect: { ca: sim.caPem } });
    try {
      expect(sim.bmcs).toHaveLength(500);
      expect(new Set(sim.bmcs.map((b) => b.port)).size).toBe(500);
      const asked = Date.now();
      const statuses = await Promise.all(sim.bmcs.map((bmc) => getStatus(bmc, agent, '/redfish/v1/Managers', { Authorization: basicAuth('admin', 'pw') })));
      const askMs = Date.now() - asked;
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(sim.bmcs.every((b) => b.counters.requests === 1 && b.counters.tlsHandshakes === 1)).toBe(true);
      expect(startMs).toBeLessThan(10_000);
      expect(askMs).toBeLessThan(10_000);
    } finally {
      await agent.destroy();
      await sim.stop();
    }
  });

  it('stop() resolves quickly with keep-alive connections open, and the ports close', async () => {
    const t = await startTestSim({ bmcs: 3 });
    const client = await t.admin();
    for (const bmc of t.sim.bmcs) expect(await getStatus(bmc, t.agent, '/redfish/v1/')).toBe(200);
    expect(t.sim.bmcs.every((b) => b.openConnections >= 1)).toBe(true);
    // A reset and a firmware task in flight: their timers must not keep anything alive.
    await client.post(paths.reset(), { ResetType: 'ForceRestart' });
    await client.post(paths.simpleUpdate, { ImageURI: 'http://x/BIOS-1.bin' });
    const started = Date.now();
    await t.sim.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    for (const bmc of t.sim.bmcs) expect(await portIsClosed(bmc.port)).toBe(true);
    await t.sim.stop();
    await t.agent.destroy();
  });

  it('stop() does not hang on a request waiting out its latency or a body being trickled', async () => {
    const t = await startTestSim({ bmcs: 2 });
    const [slow, trickle] = t.sim.bmcs as [SimBmc, SimBmc];
    slow.faults.latencyMs = 10_000;
    trickle.faults.slowBodyMs = 10_000;
    const settling = Promise.allSettled([
      request(`${slow.url}/redfish/v1/`, { dispatcher: t.agent }),
      request(`${trickle.url}/redfish/v1/`, { dispatcher: t.agent }).then((r) => r.body.text()),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await t.sim.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    const settled = await settling;
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    await t.agent.destroy();
  });

  it('listens on basePort + i with the given names and profiles, and runs the initial hook', async () => {
    const { sim, basePort: free } = await startOnFreeBasePort({
      bmcs: ['node-a', 'node-b'],
      profile: 'idrac',
      initial: (bmc) => {
        bmc.state.powerState = 'Off';
        bmc.state.assetTag = `tag-${bmc.name}`;
      },
    });
    try {
      expect(sim.bmcs.map((b) => [b.name, b.port, b.profile, b.url])).toEqual([
        ['node-a', free, 'idrac', `https://127.0.0.1:${free}`],
        ['node-b', free + 1, 'idrac', `https://127.0.0.1:${free + 1}`],
      ]);
      expect(sim.bmc('node-b').state).toMatchObject({ powerState: 'Off', assetTag: 'tag-node-b' });
      expect(() => sim.bmc('node-c')).toThrow(/no simulated BMC/);
    } finally {
      await sim.stop();
    }
  });

  it('rejects bad options before listening', async () => {
    await expect(RedfishSimulator.start({ bmcs: 0 })).rejects.toThrow(/at least one/);
    await expect(RedfishSimulator.start({ bmcs: ['a', 'a'] })).rejects.toThrow(/duplicate/);
    await expect(RedfishSimulator.start({ bmcs: ['../x'] })).rejects.toThrow(/invalid BMC name/);
    await expect(RedfishSimulator.start({ bmcs: 1, profile: 'supermicro' as never })).rejects.toThrow(/unknown Redfish profile/);
    await expect(RedfishSimulator.start({ bmcs: 1, resetDelayMs: -1 })).rejects.toThrow(/resetDelayMs/);
  });
});
