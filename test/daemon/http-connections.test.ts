import { request } from 'undici';
import { expect, test } from 'vitest';
import { HttpServer } from '../../src/daemon/http.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { captureLog } from './webhook-helpers.js';
import { fdSampler, openFds, Swarm, until } from './http-swarm.js';

// Short deadlines so that the scenario takes seconds; the production ones are 10 s, 30 s and 5 s.
const DEADLINES = { headersTimeoutMs: 2_000, requestTimeoutMs: 3_000, keepAliveTimeoutMs: 1_000, deadlineCheckIntervalMs: 100 };
// Far above the deadlines: the wait is for the descriptors to come back, this only bounds a failure.
const LIMIT_MS = 20_000;

function server(options: { maxConnections?: number; logBudget?: { lines: number; intervalMs: number } } = {}): { server: HttpServer; log: ReturnType<typeof captureLog>; dropped: () => number } {
  const log = captureLog();
  let dropped = 0;
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    log,
    ...DEADLINES,
    ...options,
    // An answer that never comes: stands for a client that stops reading a large one.
    metrics: { render: () => new Promise<string>(() => {}), contentType: 'text/plain', onWebhook: () => {}, onConnectionDropped: () => void dropped++ },
    webhook: {
      path: '/hooks/git',
      secret: 'env:HOOK',
      secrets: new SecretResolver({ env: { HOOK: 'swarm-secret' } }),
      maxBodyBytes: 1 << 20,
      minFetchIntervalMs: 0,
      dedupeWindowMs: 60_000,
      maxFailuresPerMinute: 10,
      trigger: () => {},
    },
  });
  return { server, log, dropped: () => dropped };
}

test('350 silent, partial, trickling, idle, stalled, malformed and oversized clients that never close: every socket is destroyed at its deadline and the descriptors return to the baseline while the clients stay', async () => {
  // The cap (256 by default) is above the swarm here: this is about deadlines alone, no connection is dropped.
  const { server: http, dropped } = server({ maxConnections: 1_000 });
  const { port } = await http.listen();
  const plan = { silent: 50, partial: 50, 'trickle-headers': 50, 'trickle-body': 50, idle: 50, 'stalled-answer': 50, malformed: 25, oversized: 25 } as const;
  const swarm = new Swarm(port, plan);
  // Measured once the child and its pipes exist: from here on, only the server's own sockets change the count.
  const baseline = openFds();
  const fds = fdSampler();
  try {
    await swarm.connected();
    const back = await until(() => openFds() <= baseline, LIMIT_MS);
    const after = openFds();
    const report = await swarm.settled(350, LIMIT_MS);
    console.log(`fds: baseline ${baseline}, peak ${fds.peak}, after ${after}; ${JSON.stringify(report)}`);
    // Each accepted connection is a descriptor here until the server destroys it; under load the child connects
    // more slowly than the first deadlines pass, so how many are open at once varies (300 on a quiet machine).
    expect(fds.peak).toBeGreaterThan(baseline + 100);
    expect(back, `descriptors stayed at ${after} (baseline ${baseline})`).toBe(true);
    for (const [kind, count] of Object.entries(plan)) {
      expect(report[kind]!.connected, kind).toBe(count);
      expect(report[kind]!.closedByServer, kind).toBe(count);
    }
    // Answered before being destroyed: 408 for a missed header or request deadline, the /healthz answer for the idle ones.
    expect(report.silent!.statuses).toEqual({ 408: 50 });
    expect(report.partial!.statuses).toEqual({ 408: 50 });
    expect(report['trickle-headers']!.statuses).toEqual({ 408: 50 });
    expect(report['trickle-body']!.statuses).toEqual({ 408: 50 });
    expect(report.idle!.statuses).toEqual({ 200: 50 });
    expect(report['stalled-answer']!.statuses).toEqual({ none: 50 });
    expect(report.malformed!.statuses).toEqual({ 400: 25 });
    expect(report.oversized!.statuses).toEqual({ 431: 25 });
    expect(dropped()).toBe(0);
  } finally {
    fds.stop();
    await swarm.kill();
    await http.close();
  }
});

test('past http.maxConnections a connection is closed as soon as it is accepted: 300 silent clients hold at most the cap, the drops are counted and logged a few times, then a summary', async () => {
  const MAX = 50;
  const { server: http, log, dropped } = server({ maxConnections: MAX, logBudget: { lines: 3, intervalMs: 60_000 } });
  const { port } = await http.listen();
  const swarm = new Swarm(port, { silent: 300 });
  const baseline = openFds();
  const fds = fdSampler(5);
  try {
    await swarm.connected();
    const report = await swarm.settled(300, LIMIT_MS);
    expect(await until(() => openFds() <= baseline, LIMIT_MS)).toBe(true);
    const peak = fds.peak;
    fds.stop();
    const { statuses, closedByServer } = report.silent!;
    console.log(`cap ${MAX}: fds baseline ${baseline}, peak ${peak}, after ${openFds()}; dropped ${dropped()}; ${JSON.stringify(statuses)}`);
    // At most the cap at once (one more for the instant a connection is accepted and closed again).
    expect(peak).toBeLessThanOrEqual(baseline + MAX + 1);
    expect(closedByServer).toBe(300);
    // Those let in waited for the header deadline (408); the others were closed without a byte.
    expect((statuses['408'] ?? 0) + (statuses.none ?? 0)).toBe(300);
    expect(statuses['408']).toBeGreaterThanOrEqual(MAX);
    expect(dropped()).toBe(statuses.none);
    expect(dropped()).toBeGreaterThan(0);

    // The listener serves again once the silent ones are gone.
    const health = await request(`http://127.0.0.1:${port}/healthz`, { reset: true });
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  } finally {
    fds.stop();
    await swarm.kill();
    await http.close();
  }
  // close() flushes the summary: a few lines as they came, then one line with the rest.
  const lines = log.lines.map((l) => JSON.parse(l) as { msg: string; count?: number; addresses?: number; max?: number });
  const each = lines.filter((l) => l.msg === 'http connection dropped: http.maxConnections are open');
  const summary = lines.filter((l) => l.msg === 'more http connections dropped at http.maxConnections');
  expect(each).toHaveLength(3);
  expect(each[0]!.max).toBe(MAX);
  expect(summary).toHaveLength(1);
  expect(summary[0]).toMatchObject({ count: dropped() - 3, addresses: 1 });
});
