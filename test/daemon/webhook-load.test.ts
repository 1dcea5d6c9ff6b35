import { performance } from 'node:perf_hooks';
import { Pool, request } from 'undici';
import { expect, test } from 'vitest';
import { HttpServer } from '../../src/daemon/http.js';
import { silentLog } from '../../src/daemon/log.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { SENDERS } from './webhook-helpers.js';

const SECRET = 'load-secret-5d2e';
const TOTAL = 1_000;
const WAVES = 20; // 50 requests every 50 ms: 1,000 in about a second
const INTERVAL_MS = 250;

test('1,000 valid webhooks in about a second from a keep-alive loopback client coalesce into a handful of fetches, and /healthz stays quick', async () => {
  const fires: number[] = [];
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    log: silentLog,
    webhook: {
      path: '/hooks/git',
      secret: 'env:HOOK',
      secrets: new SecretResolver({ env: { HOOK: SECRET } }),
      maxBodyBytes: 1024 * 1024,
      minFetchIntervalMs: INTERVAL_MS,
      dedupeWindowMs: 24 * 3_600_000,
      maxFailuresPerMinute: 10,
      trigger: () => void fires.push(performance.now()),
    },
  });
  const { port } = await server.listen();
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16, pipelining: 1 });
  const generic = SENDERS.find((s) => s.name === 'generic')!;
  const github = SENDERS.find((s) => s.name === 'github')!;
  try {
    const statuses = new Map<number, number>();
    let lastAnswered = 0;
    const send = async (i: number): Promise<void> => {
      const body = JSON.stringify({ ref: 'refs/heads/main', after: i.toString(16).padStart(40, '0'), seq: i });
      // Mostly generic, some GitHub; every 10th is a redelivery of the one before (same id): 200 duplicate.
      const original = i % 10 === 9 ? i - 1 : i;
      const sender = original % 3 === 0 ? github : generic;
      const delivery = `load-${original}`;
      const res = await pool.request({ path: '/hooks/git', method: 'POST', headers: { 'content-type': 'application/json', ...sender.headers(body, SECRET, delivery) }, body });
      await res.body.dump();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode === 202) lastAnswered = performance.now();
    };

    const started = performance.now();
    const inFlight: Array<Promise<void>> = [];
    const probes: number[] = [];
    for (let wave = 0; wave < WAVES; wave++) {
      for (let j = 0; j < TOTAL / WAVES; j++) inFlight.push(send(wave * (TOTAL / WAVES) + j));
      if (wave === WAVES / 2 || wave === WAVES - 1) {
        // Mid-burst: a probe on its own connection, as a load balancer or systemd would send it.
        const t0 = performance.now();
        inFlight.push(
          request(`http://127.0.0.1:${port}/healthz`, { reset: true }).then(async (res) => {
            await res.body.dump();
            expect(res.statusCode).toBe(200);
            probes.push(performance.now() - t0);
          }),
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(inFlight);
    const elapsedS = (performance.now() - started) / 1_000;

    expect(statuses.get(202)).toBe(900);
    expect(statuses.get(200)).toBe(100);
    expect([...statuses.keys()].sort()).toEqual([200, 202]);
    expect(probes).toHaveLength(2);
    for (const ms of probes) expect(ms).toBeLessThan(200);

    // The trailing edge: the fetch owed to the last webhooks comes at the end of its interval.
    await new Promise((r) => setTimeout(r, INTERVAL_MS + 100));
    const totalS = (performance.now() - started) / 1_000;
    expect(fires.length).toBeGreaterThanOrEqual(2);
    expect(fires.length).toBeLessThanOrEqual(Math.ceil(totalS / (INTERVAL_MS / 1_000)) + 2);
    expect(fires.at(-1)!).toBeGreaterThanOrEqual(lastAnswered - 1);
    for (let i = 1; i < fires.length; i++) expect(fires[i]! - fires[i - 1]!).toBeGreaterThanOrEqual(INTERVAL_MS - 5);
    console.log(`${TOTAL} webhooks in ${elapsedS.toFixed(2)} s -> ${fires.length} fetch triggers; /healthz probes ${probes.map((p) => p.toFixed(1)).join(', ')} ms`);
  } finally {
    await pool.close();
    await server.close();
  }
});
