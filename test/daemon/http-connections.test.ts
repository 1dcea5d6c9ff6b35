import { expect, test } from 'vitest';
import { HttpServer } from '../../src/daemon/http.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { captureLog } from './webhook-helpers.js';
import { fdSampler, openFds, Swarm, until } from './http-swarm.js';

// Short deadlines so that the scenario takes seconds; the production ones are 10 s, 30 s and 5 s.
const DEADLINES = { headersTimeoutMs: 2_000, requestTimeoutMs: 3_000, keepAliveTimeoutMs: 1_000, deadlineCheckIntervalMs: 100 };
// Far above the deadlines: the wait is for the descriptors to come back, this only bounds a failure.
const LIMIT_MS = 20_000;

function server(options: { maxConnections?: number } = {}): { server: HttpServer; log: ReturnType<typeof captureLog> } {
  const log = captureLog();
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    log,
    ...DEADLINES,
    ...options,
    // An answer that never comes: stands for a client that stops reading a large one.
    metrics: { render: () => new Promise<string>(() => {}), contentType: 'text/plain', onWebhook: () => {} },
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
  return { server, log };
}

test('300 silent, partial, trickling, idle and stalled clients that never close: every socket is destroyed at its deadline and the descriptors return to the baseline while the clients stay', async () => {
  const { server: http } = server();
  const { port } = await http.listen();
  const plan = { silent: 50, partial: 50, 'trickle-headers': 50, 'trickle-body': 50, idle: 50, 'stalled-answer': 50 } as const;
  const swarm = new Swarm(port, plan);
  // Measured once the child and its pipes exist: from here on, only the server's own sockets change the count.
  const baseline = openFds();
  const fds = fdSampler();
  try {
    await swarm.connected();
    const back = await until(() => openFds() <= baseline, LIMIT_MS);
    const after = openFds();
    const report = await swarm.settled(300, LIMIT_MS);
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
  } finally {
    fds.stop();
    await swarm.kill();
    await http.close();
  }
});
