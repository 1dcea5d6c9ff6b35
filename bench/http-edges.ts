/**
 * bench/http-edges: the HTTP listener's edges with the production defaults
 * (headers 10 s, request 30 s, keep-alive 5 s, http.maxConnections 256,
 * 5 log lines a minute), on loopback.
 *
 *   npm run bench:http-edges     (PLUMB_BENCH_CLIENTS=200, PLUMB_BENCH_ADDRESSES=250)
 *
 * 1. Descriptors: CLIENTS connections from a child process that send a partial
 *    request and never close. Prints this process's /proc/self/fd count before,
 *    at its peak and after, and when it came back (about 11 s: the header
 *    deadline plus the 1 s check). The child's IPC channel is one descriptor,
 *    counted in the baseline.
 * 2. Refusals: ADDRESSES loopback addresses (127.0.0.x) send 4 badly signed
 *    webhooks each. Prints the answers and how many lines the log got.
 */
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { HttpServer } from '../src/daemon/http.js';
import { silentLog } from '../src/daemon/log.js';
import type { Log } from '../src/provider.js';
import { SecretResolver } from '../src/secrets/resolve.js';

const CLIENTS = Number(process.env.PLUMB_BENCH_CLIENTS ?? 200);
const ADDRESSES = Math.min(253, Number(process.env.PLUMB_BENCH_ADDRESSES ?? 250));
const fds = (): number => readdirSync('/proc/self/fd').length;

/** The child: partial requests on sockets it never closes (allowHalfOpen: our FIN does not close them either). */
function clients(port: number, count: number): void {
  let connected = 0;
  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => {});
    socket.on('connect', () => {
      socket.write('POST /hooks/git HTTP/1.1\r\nHost: plumb\r\n');
      if (++connected === count) process.send!('connected');
    });
  }
}

async function descriptors(): Promise<void> {
  const server = new HttpServer({ host: '127.0.0.1', port: 0, log: silentLog });
  const { port } = await server.listen();
  const child = fork(fileURLToPath(import.meta.url), ['clients', String(port), String(CLIENTS)]);
  const baseline = fds();
  const started = Date.now();
  let peak = baseline;
  await new Promise((resolve) => child.once('message', resolve));
  // Sampled until the count is back, or for 45 s (well past the 10 s header deadline).
  while (Date.now() - started < 45_000) {
    peak = Math.max(peak, fds());
    if (peak > baseline && fds() <= baseline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const after = fds();
  console.log(`${CLIENTS} partial requests that never close: fds baseline ${baseline}, peak ${peak}, after ${after}${after <= baseline ? ` (back after ${((Date.now() - started) / 1_000).toFixed(1)} s)` : ' (not back after 45 s)'}`);
  child.kill('SIGKILL');
  await server.close();
}

async function refusals(): Promise<void> {
  const lines: string[] = [];
  const log: Log = { debug() {}, info() {}, warn: (_f, msg) => void lines.push(msg), error: (_f, msg) => void lines.push(msg), child: () => log };
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    log,
    webhook: { path: '/hooks/git', secret: 'env:HOOK', secrets: new SecretResolver({ env: { HOOK: 'bench-secret' } }), maxBodyBytes: 1 << 20, minFetchIntervalMs: 0, dedupeWindowMs: 60_000, maxFailuresPerMinute: 10, trigger: () => {} },
  });
  const { port } = await server.listen();
  const flood = Array.from({ length: ADDRESSES }, (_, i) => new Client(`http://127.0.0.1:${port}`, { localAddress: `127.0.0.${2 + i}` }));
  const statuses: Record<number, number> = {};
  for (let round = 0; round < 4; round++) {
    await Promise.all(
      flood.map(async (client) => {
        const res = await client.request({ path: '/hooks/git', method: 'POST', headers: { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, body: '{}' });
        await res.body.dump();
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      }),
    );
  }
  await Promise.all(flood.map((c) => c.close()));
  await server.close();
  const counts: Record<string, number> = {};
  for (const msg of lines) counts[msg] = (counts[msg] ?? 0) + 1;
  console.log(`${ADDRESSES * 4} badly signed webhooks from ${ADDRESSES} addresses: answers ${JSON.stringify(statuses)}; ${lines.length} log lines ${JSON.stringify(counts)}`);
}

if (process.argv[2] === 'clients') clients(Number(process.argv[3]), Number(process.argv[4]));
else {
  await descriptors();
  await refusals();
}
