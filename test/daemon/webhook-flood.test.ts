import { Client } from 'undici';
import { expect, test, vi } from 'vitest';
import { BoundedLog } from '../../src/daemon/bounded-log.js';
import { HttpServer } from '../../src/daemon/http.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { captureLog, SENDERS } from './webhook-helpers.js';

const SECRET = 'flood-secret-77a1';
const PUSH = JSON.stringify({ ref: 'refs/heads/main' });
const github = SENDERS.find((s) => s.name === 'github')!;
let deliveries = 0;

interface Line {
  level: string;
  msg: string;
  count?: number;
  addresses?: number;
  seconds?: number;
  by?: Record<string, number>;
  limit?: number;
}

async function start(logBudget: { lines: number; intervalMs: number }): Promise<{ server: HttpServer; port: number; log: ReturnType<typeof captureLog>; lines: () => Line[] }> {
  const log = captureLog();
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    log,
    logBudget,
    webhook: {
      path: '/hooks/git',
      secret: 'env:HOOK',
      secrets: new SecretResolver({ env: { HOOK: SECRET } }),
      maxBodyBytes: 1 << 20,
      minFetchIntervalMs: 0,
      dedupeWindowMs: 60_000,
      maxFailuresPerMinute: 10,
      maxFailuresPerMinuteTotal: 100,
      trigger: () => {},
    },
  });
  const { port } = await server.listen();
  return { server, port, log, lines: () => log.lines.map((l) => JSON.parse(l) as Line) };
}

/** One keep-alive client per loopback address (Linux routes all of 127/8 to lo): 127.0.0.<first> and up. */
function clients(port: number, count: number, first = 2): Client[] {
  return Array.from({ length: count }, (_, i) => new Client(`http://127.0.0.1:${port}`, { localAddress: `127.0.0.${first + i}` }));
}

async function send(client: Client, secret: string): Promise<number> {
  const res = await client.request({ path: '/hooks/git', method: 'POST', headers: { 'content-type': 'application/json', ...github.headers(PUSH, secret, `flood-${++deliveries}`) }, body: PUSH });
  await res.body.dump();
  return res.statusCode;
}

test('1,000 failed verifications from 250 addresses: 100 answered 401 then 429 for all (the total limit), a valid webhook still passes, and the log has a few lines and one summary instead of 1,000', async () => {
  const h = await start({ lines: 5, intervalMs: 60_000 });
  const flood = clients(h.port, 250);
  const honest = clients(h.port, 1, 252)[0]!;
  const statuses = new Map<number, number>();
  try {
    // Four rounds; in each, every address sends one bad request, all at once.
    for (let round = 0; round < 4; round++) {
      for (const status of await Promise.all(flood.map((c) => send(c, `guess-${round}`)))) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (round === 1) expect(await send(honest, SECRET)).toBe(202); // the flood never holds up a real push
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 100, 429: 900 });
  } finally {
    await Promise.all([...flood, honest].map((c) => c.close()));
    await h.server.close(); // flushes the summary of the interval in progress
  }
  const lines = h.lines();
  const refused = lines.filter((l) => l.msg === 'webhook refused');
  const total = lines.filter((l) => l.msg.startsWith('webhook failures from all addresses over the limit'));
  const summary = lines.filter((l) => l.msg === 'more webhook requests refused');
  console.log(`1,000 refused webhooks from 250 addresses -> ${lines.filter((l) => l.level === 'warn').length} warnings: ${refused.length} refused, ${total.length} over the total limit, ${summary.length} summary ${JSON.stringify(summary[0])}`);
  expect(refused).toHaveLength(5);
  expect(total).toEqual([expect.objectContaining({ limit: 100 })]);
  expect(summary).toHaveLength(1);
  // 1,000 = 5 lines + the one that crossed the total limit + 994 in the summary.
  expect(summary[0]).toMatchObject({ count: 994, addresses: 250, by: { unauthorized: 95, rate_limited: 899 } });
  expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toHaveLength(7);
});

test('BoundedLog: a few lines per interval, the summary at its end by itself (once, with the count of that interval), then a fresh interval', () => {
  vi.useFakeTimers();
  try {
    const log = captureLog();
    const lines = (): Line[] => log.lines.map((l) => JSON.parse(l) as Line);
    const bounded = new BoundedLog(log, 'warn', 'more webhook requests refused', { lines: 2, intervalMs: 60_000 }, () => Date.now());
    for (let i = 0; i < 20; i++) bounded.write(`127.0.0.${2 + (i % 10)}`, { remote: i }, 'webhook refused', 'unauthorized');
    bounded.count('127.0.0.99', 'rate_limited');
    expect(lines().map((l) => l.msg)).toEqual(['webhook refused', 'webhook refused']);
    vi.advanceTimersByTime(59_999);
    expect(lines()).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(lines()[2]).toEqual({ level: 'warn', msg: 'more webhook requests refused', count: 19, addresses: 11, seconds: 60, by: { unauthorized: 18, rate_limited: 1 } });
    vi.advanceTimersByTime(10 * 60_000);
    expect(lines()).toHaveLength(3); // quiet: no more summaries

    // The next interval starts with the next line: two written again, then its own summary.
    for (let i = 0; i < 5; i++) bounded.write('127.0.0.2', { remote: i }, 'webhook refused', 'unauthorized');
    expect(lines()).toHaveLength(5);
    vi.advanceTimersByTime(30_000);
    bounded.close(); // at shutdown the pending count is said at once
    expect(lines()[5]).toMatchObject({ msg: 'more webhook requests refused', count: 3, addresses: 1, seconds: 30 });
    vi.advanceTimersByTime(60_000);
    expect(lines()).toHaveLength(6);
  } finally {
    vi.useRealTimers();
  }
});

test('BoundedLog: distinct addresses are counted up to a cap, and the summary says when it was reached', () => {
  const log = captureLog();
  const bounded = new BoundedLog(log, 'warn', 'summary', { lines: 0, intervalMs: 60_000 });
  for (let i = 0; i < BoundedLog.MAX_ADDRESSES + 500; i++) bounded.write(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, {}, 'line');
  bounded.close();
  expect(log.lines.map((l) => JSON.parse(l) as Line)).toEqual([expect.objectContaining({ msg: 'summary', count: BoundedLog.MAX_ADDRESSES + 500, addresses: BoundedLog.MAX_ADDRESSES, addressesCapped: true })]);
});
