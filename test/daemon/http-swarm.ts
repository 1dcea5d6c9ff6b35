import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * How a client of the swarm misbehaves. None of them ever closes its socket
 * (allowHalfOpen: our FIN does not make it close either): only the server can.
 * - silent: connects and sends nothing;
 * - partial: a request line and one header, then nothing (the case);
 * - trickle-headers: a request line, then one header byte every `gapMs`, never ending the headers;
 * - trickle-body: complete headers of a POST to the hook, then one body byte every `gapMs`;
 * - idle: a complete keep-alive GET /healthz, its answer read, then nothing;
 * - stalled-answer: a complete GET /metrics whose answer never comes (the test's render hangs),
 *   standing for a client that stops reading a large answer;
 * - malformed: a line that is not HTTP, then nothing;
 * - oversized: a header over the 16 KiB limit, then nothing.
 */
export type SwarmKind = 'silent' | 'partial' | 'trickle-headers' | 'trickle-body' | 'idle' | 'stalled-answer' | 'malformed' | 'oversized';

export interface SwarmReport {
  /** Per kind: sockets connected, sockets the server closed, and the first status line each received (or "none"). */
  [kind: string]: { connected: number; closedByServer: number; statuses: Record<string, number> };
}

// Plain JavaScript run by a separate node process, so that its sockets are not in this process's /proc/self/fd.
const CLIENT_SOURCE = String.raw`
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
const { port, plan, gapMs, localAddress } = JSON.parse(process.argv[1]);
const report = {};
const sockets = [];
let pending = 0;
const requests = {
  partial: 'POST /hooks/git HTTP/1.1\r\nHost: plumb\r\n',
  'trickle-headers': 'POST /hooks/git HTTP/1.1\r\nHost: plumb\r\n',
  'trickle-body': 'POST /hooks/git HTTP/1.1\r\nHost: plumb\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
  idle: 'GET /healthz HTTP/1.1\r\nHost: plumb\r\n\r\n',
  'stalled-answer': 'GET /metrics HTTP/1.1\r\nHost: plumb\r\n\r\n',
  malformed: 'HELLO THERE\r\n\r\n',
  oversized: 'GET /healthz HTTP/1.1\r\nHost: plumb\r\nX-Big: ' + 'x'.repeat(17 * 1024) + '\r\n',
};
for (const [kind, count] of Object.entries(plan)) {
  const r = (report[kind] = { connected: 0, closedByServer: 0, statuses: {} });
  for (let i = 0; i < count; i++) {
    pending++;
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) });
    sockets.push(socket);
    let first = '';
    let closed = false;
    let trickle;
    const serverClosed = () => {
      if (closed) return;
      closed = true;
      clearInterval(trickle);
      r.closedByServer++;
      const status = /^HTTP\/1\.1 (\d{3})/.exec(first)?.[1] ?? 'none';
      r.statuses[status] = (r.statuses[status] ?? 0) + 1;
    };
    socket.on('data', (chunk) => { if (first.length < 12) first += chunk.toString('latin1'); });
    socket.on('end', serverClosed);
    socket.on('error', serverClosed);
    socket.on('close', serverClosed);
    socket.on('connect', () => {
      r.connected++;
      if (requests[kind]) socket.write(requests[kind]);
      if (kind === 'trickle-headers' || kind === 'trickle-body') trickle = setInterval(() => socket.write(kind === 'trickle-body' ? ' ' : 'X'), gapMs);
      if (--pending === 0) console.log('connected');
    });
  }
}
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'report') console.log(JSON.stringify(report));
});
`;

/** Open descriptors of this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Samples this process's descriptors every 20 ms; `peak` is the highest count seen. */
export function fdSampler(everyMs = 20): { readonly peak: number; stop(): void } {
  let peak = openFds();
  const timer = setInterval(() => (peak = Math.max(peak, openFds())), everyMs);
  return {
    get peak() {
      return Math.max(peak, openFds());
    },
    stop: () => clearInterval(timer),
  };
}

/** Polls `check` until it holds or `limitMs` passes (a generous bound: the wait is on the state, not the clock). */
export async function until(check: () => boolean, limitMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

/**
 * A swarm of misbehaving clients in a child process. `start()` resolves once
 * every socket is connected; the child keeps them all open until `kill()`.
 */
export class Swarm {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiters: Array<() => void> = [];

  constructor(port: number, plan: Partial<Record<SwarmKind, number>>, options: { gapMs?: number; localAddress?: string } = {}) {
    const args = JSON.stringify({ port, plan, gapMs: options.gapMs ?? 100, localAddress: options.localAddress });
    this.#child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT_SOURCE, args], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      this.#lines.push(line);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.#child.once('exit', () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Resolves once every client has connected. */
  connected(): Promise<void> {
    return this.#next((line) => line === 'connected').then(() => undefined);
  }

  /** What each kind of client saw so far. */
  async report(): Promise<SwarmReport> {
    const seen = this.#lines.length;
    this.#child.stdin!.write('report\n');
    return JSON.parse(await this.#next((line, i) => i >= seen && line.startsWith('{'))) as SwarmReport;
  }

  /** The report once the clients saw `total` sockets closed by the server, or after `limitMs` whatever it says. */
  async settled(total: number, limitMs: number): Promise<SwarmReport> {
    const end = Date.now() + limitMs;
    for (;;) {
      const report = await this.report();
      const closed = Object.values(report).reduce((n, r) => n + r.closedByServer, 0);
      if (closed >= total || Date.now() > end) return report;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.kill('SIGKILL');
    await exited;
  }

  #next(match: (line: string, index: number) => boolean): Promise<string> {
    return new Promise((resolve, reject) => {
      const look = (): void => {
        const found = this.#lines.find(match);
        if (found !== undefined) return resolve(found);
        if (this.#child.exitCode !== null) return reject(new Error(`the client swarm exited (${this.#child.exitCode})`));
        this.#waiters.push(look);
      };
      look();
    });
  }
}
