import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { describeError } from '../errors.js';
import type { Log, Secrets } from '../provider.js';
import { verifyWebhook, type WebhookProvider } from '../source/webhook.js';
import { closeNow, listen } from '../util/http-server.js';
import { BoundedLog, type LogBudget } from './bounded-log.js';
import type { PassReport } from './engine.js';

/** What a webhook request came to, for `plumb_webhooks_total{provider,outcome}`. */
export type WebhookOutcome = 'accepted' | 'duplicate' | 'unauthorized' | 'bad_request' | 'rate_limited' | 'too_large' | 'secret_unavailable';

export interface WebhookReceiverOptions {
  /** URL path the Git server posts to (default in config: /hooks/git). */
  path: string;
  /** Secret reference (file:/path, env:NAME), resolved for each request so a rotated file is picked up. */
  secret: string;
  secrets: Secrets;
  maxBodyBytes: number;
  /** At most one trigger per interval; 0: every valid webhook triggers (the daemon still merges requests). */
  minFetchIntervalMs: number;
  dedupeWindowMs: number;
  /** Failed verifications per remote address per minute before further failures get 429. */
  maxFailuresPerMinute: number;
  /** Failed verifications from all addresses together per minute before further failures get 429 (default 100). */
  maxFailuresPerMinuteTotal?: number;
  /** Asks for a fetch: wired to `daemon.request('delta')`. Takes nothing: no payload reaches it (invariant 8). */
  trigger: () => void;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port (tests); `listen()` returns the one taken. */
  port: number;
  log: Log;
  /** `GET /metrics` and the webhook counters; without it /metrics is 404. */
  metrics?: { render(): Promise<string>; readonly contentType: string; onWebhook(provider: WebhookProvider | 'unknown', outcome: WebhookOutcome): void; onConnectionDropped?(): void };
  /** The webhook receiver; without it the hook path is 404. */
  webhook?: WebhookReceiverOptions;
  now?: () => number;
  /** Deadline for a request's headers, from its first byte (default 10 s). */
  headersTimeoutMs?: number;
  /** Deadline for a whole request, and for its answer once the headers are in (default 30 s). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (default 5 s; Node adds 1 s of grace). */
  keepAliveTimeoutMs?: number;
  /** How often the header and request deadlines are checked (default 1 s; tests use less). */
  deadlineCheckIntervalMs?: number;
  /** Connections open at once; one more is closed as soon as it is accepted (default 256, `http.maxConnections`). */
  maxConnections?: number;
  /** Warnings strangers can cause (refusals, dropped connections): lines written per interval before one summary (default 5 per 60 s). */
  logBudget?: LogBudget;
}

export const DEFAULT_MAX_CONNECTIONS = 256;
export const DEFAULT_MAX_FAILURES_TOTAL = 100;

/** How long an error answer (400, 408, 431) may take to leave before the socket is destroyed anyway. */
const LINGER_MS = 1_000;

/** What Node's parser and deadlines report (`clientError`), as the status line answered before the socket is destroyed. */
const CLIENT_ERROR_STATUS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Content Too Large',
};

/**
 * The daemon's HTTP listener: the webhook receiver, `GET /metrics`, `/healthz`
 * and `/readyz`. A webhook is verified over its raw body and then only *asks*
 * for a fetch of the configured remote (coalesced); nothing in it is read.
 */
export class HttpServer {
  readonly #options: HttpServerOptions;
  readonly #server: Server;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #coalescer: Coalescer | undefined;
  readonly #deliveries: DeliveryCache | undefined;
  readonly #failures: FailureLimiter | undefined;
  readonly #readiness = new Readiness();
  readonly #requestTimeoutMs: number;
  /** The answer in progress on each socket: an error answer must not be written into the middle of it. */
  readonly #answering = new WeakMap<Duplex, ServerResponse>();
  readonly #drops: BoundedLog;
  /** Refused webhooks (401, 400, 429, 413) and unavailable secrets: anyone can cause them, so their lines are bounded. */
  readonly #refusals: BoundedLog;
  readonly #secretErrors: BoundedLog;

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    const hook = options.webhook;
    if (hook) {
      this.#coalescer = new Coalescer(
        () => {
          this.#log.info({}, 'webhook: fetch requested');
          try {
            hook.trigger();
          } catch (err) {
            this.#log.error({ error: describeError(err).message, code: describeError(err).code }, 'webhook trigger failed');
          }
        },
        hook.minFetchIntervalMs,
        this.#now,
      );
      this.#deliveries = new DeliveryCache(hook.dedupeWindowMs, this.#now);
      this.#failures = new FailureLimiter(hook.maxFailuresPerMinute, hook.maxFailuresPerMinuteTotal ?? DEFAULT_MAX_FAILURES_TOTAL, this.#now);
    }
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#server = createServer({
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      requestTimeout: this.#requestTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
      connectionsCheckingInterval: options.deadlineCheckIntervalMs ?? 1_000,
      maxHeaderSize: 16 * 1024,
    });
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#request(req, res, false));
    // Expect: 100-continue: decide on the headers alone, so an oversized body is never even invited.
    this.#server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.#request(req, res, true));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(err, socket));
    // Past the cap Node closes each new connection as soon as it is accepted: the descriptors stay bounded whoever connects.
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#server.maxConnections = maxConnections;
    this.#drops = new BoundedLog(this.#log, 'warn', 'more http connections dropped at http.maxConnections', options.logBudget, this.#now);
    this.#refusals = new BoundedLog(this.#log, 'warn', 'more webhook requests refused', options.logBudget, this.#now);
    this.#secretErrors = new BoundedLog(this.#log, 'error', 'more webhook requests found the secret unavailable', options.logBudget, this.#now);
    this.#server.on('drop', (data?: { remoteAddress?: string }) => {
      this.#options.metrics?.onConnectionDropped?.();
      const remote = data?.remoteAddress ?? 'unknown';
      this.#drops.write(remote, { remote, max: maxConnections }, 'http connection dropped: http.maxConnections are open');
    });
  }

  #request(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const socket = req.socket;
    this.#answering.set(socket, res);
    // The answer has a deadline too: a client that stops reading it would hold the socket, and the answer in memory, for good.
    // A request still arriving by then is answered 408, as Node's own request deadline (which this one may beat) would.
    const deadline = setTimeout(() => (req.complete ? socket.destroy() : this.#clientError(requestTimeout(), socket)), this.#requestTimeoutMs);
    deadline.unref();
    res.once('close', () => {
      clearTimeout(deadline);
      if (this.#answering.get(socket) === res) this.#answering.delete(socket);
    });
    void this.#handle(req, res, expectContinue);
  }

  /**
   * A malformed request or a missed deadline (headers, whole request): answer it
   * if no answer has begun, then destroy the socket. Ending it is not enough:
   * Node's HTTP sockets allow half-open connections, so after our FIN a client
   * that never closes its side would keep the descriptor until it leaves.
   */
  #clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'EPIPE' || this.#answering.get(socket)?.headersSent) {
      socket.destroy();
      return;
    }
    const linger = setTimeout(() => socket.destroy(), LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
    socket.end(`HTTP/1.1 ${CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
  }

  /** Starts listening; resolves with the address actually bound. */
  async listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.#options;
    await listen(this.#server, port, host);
    const address = this.#server.address() as AddressInfo;
    this.#log.info({ host: address.address, port: address.port, webhook: this.#options.webhook?.path ?? null }, 'http listener started');
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    this.#coalescer?.close();
    await closeNow(this.#server);
    this.#drops.close();
    this.#refusals.close();
    this.#secretErrors.close();
  }

  /** Feed every finished pass (daemon.onPass): /readyz follows it. */
  onPass(report: PassReport): void {
    this.#readiness.onPass(report);
  }

  async #handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?', 1)[0];
      const hook = this.#options.webhook;
      if (hook && path === hook.path) return await this.#webhook(req, res, hook, expectContinue);
      const get = (handler: () => Promise<void> | void): Promise<void> | void => (req.method === 'GET' ? handler() : reply(res, 405, { error: 'method not allowed' }, { allow: 'GET' }));
      switch (path) {
        case '/healthz':
          return await get(() => reply(res, 200, { ok: true }));
        case '/readyz':
          return await get(() => {
            const state = this.#readiness.check();
            reply(res, state.ready ? 200 : 503, state);
          });
        case '/metrics':
          if (this.#options.metrics) {
            const metrics = this.#options.metrics;
            return await get(async () => {
              const text = await metrics.render();
              res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
              res.end(text);
            });
          }
          break;
      }
      reply(res, 404, { error: 'not found' }, expectContinue ? { connection: 'close' } : {});
    } catch (err) {
      this.#log.error({ error: describeError(err).message, code: describeError(err).code, path: req.url?.slice(0, 200) }, 'http request failed');
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  }

  async #webhook(req: IncomingMessage, res: ServerResponse, hook: WebhookReceiverOptions, expectContinue: boolean): Promise<void> {
    const remote = req.socket.remoteAddress ?? 'unknown';
    const count = (provider: WebhookProvider | 'unknown', outcome: WebhookOutcome): void => this.#options.metrics?.onWebhook(provider, outcome);
    if (req.method !== 'POST') {
      reply(res, 405, { error: 'method not allowed' }, { allow: 'POST', ...(expectContinue ? { connection: 'close' } : {}) });
      return;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > hook.maxBodyBytes) {
      // Refused on the headers alone: not a byte of the body is read.
      count('unknown', 'too_large');
      this.#refusals.write(remote, { remote, bytes: Number(declared), max: hook.maxBodyBytes }, 'webhook refused: body too large', 'too_large');
      tooLarge(req, res);
      return;
    }
    if (expectContinue) res.writeContinue();
    const body = await readCapped(req, hook.maxBodyBytes);
    if (body === 'aborted') return;
    if (body === 'too-large') {
      count('unknown', 'too_large');
      this.#refusals.write(remote, { remote, max: hook.maxBodyBytes }, 'webhook refused: body too large', 'too_large');
      tooLarge(req, res);
      return;
    }

    let secret: Buffer;
    try {
      secret = (await hook.secrets.resolve(hook.secret)).reveal();
    } catch (err) {
      // The Git server retries on 5xx; the operator fixes the reference.
      count('unknown', 'secret_unavailable');
      this.#secretErrors.write(remote, { error: describeError(err).message, code: describeError(err).code }, 'webhook secret unavailable');
      reply(res, 503, { error: 'webhook secret unavailable' });
      return;
    }
    const verdict = verifyWebhook(req.headers, body, secret);
    if (!verdict.ok) {
      const limited = this.#failures!.fail(remote);
      const outcome: WebhookOutcome = limited ? 'rate_limited' : verdict.status === 400 ? 'bad_request' : 'unauthorized';
      count(verdict.provider, outcome);
      // Details go to the log, never to the sender; a few lines a minute, then a summary with the count.
      if (!limited) this.#refusals.write(remote, { remote, provider: verdict.provider, reason: verdict.reason }, 'webhook refused', outcome);
      else if (limited.crossed && limited.by === 'total') this.#log.warn({ limit: limited.limit }, 'webhook failures from all addresses over the limit: answering 429 to every failed verification for the rest of the minute');
      else if (limited.crossed) this.#refusals.write(remote, { remote, limit: limited.limit }, 'webhook failures over the limit: answering 429 for the rest of the minute', outcome);
      else this.#refusals.count(remote, outcome);
      if (limited) reply(res, 429, { error: 'too many failed webhook verifications' }, { 'retry-after': String(limited.retryAfterSeconds) });
      else if (verdict.status === 400) reply(res, 400, { error: 'bad request' });
      else reply(res, 401, { error: 'unauthorized' });
      return;
    }
    if (verdict.deliveryId !== undefined && !this.#deliveries!.add(`${verdict.provider}:${verdict.deliveryId}`)) {
      count(verdict.provider, 'duplicate');
      this.#log.debug({ provider: verdict.provider, delivery: verdict.deliveryId }, 'webhook: duplicate delivery ignored');
      reply(res, 200, { duplicate: true });
      return;
    }
    count(verdict.provider, 'accepted');
    this.#log.debug({ provider: verdict.provider, delivery: verdict.deliveryId ?? null }, 'webhook accepted');
    reply(res, 202, { accepted: true });
    this.#coalescer!.poke();
  }
}

function requestTimeout(): NodeJS.ErrnoException {
  return Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** 413 and close: whatever the sender still has in flight is not buffered, and the connection ends. */
function tooLarge(req: IncomingMessage, res: ServerResponse): void {
  reply(res, 413, { error: 'body too large' }, { connection: 'close' });
  res.once('finish', () => setTimeout(() => req.socket.destroy(), 1_000).unref());
}

/** The body, up to `max` bytes; past that, counting stops buffering and the rest is discarded. */
function readCapped(req: IncomingMessage, max: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (value: Buffer | 'too-large' | 'aborted'): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      // Left flowing with no listener: anything still arriving is dropped, not kept.
      if (value === 'too-large') req.on('error', () => {});
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        chunks.length = 0;
        settle('too-large');
      } else chunks.push(chunk);
    };
    const onEnd = (): void => settle(Buffer.concat(chunks, size));
    const onAbort = (): void => settle('aborted');
    const onClose = (): void => {
      if (!req.complete) settle('aborted');
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

/**
 * At most one `fire` per interval, on the leading edge when the interval has
 * passed, else once at its end (trailing edge); never more than one pending.
 */
export class Coalescer {
  readonly #fire: () => void;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #last = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;

  constructor(fire: () => void, intervalMs: number, now: () => number = Date.now) {
    this.#fire = fire;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  poke(): void {
    if (this.#timer) return; // one already pending: this request rides on it
    const wait = this.#last + this.#intervalMs - this.#now();
    if (wait <= 0) {
      this.#last = this.#now();
      this.#fire();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#last = this.#now();
      this.#fire();
    }, wait);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Delivery ids seen within the window. Bounded: the oldest go first (insertion order is expiry order). */
class DeliveryCache {
  static readonly MAX = 100_000;
  readonly #seen = new Map<string, number>();
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(windowMs: number, now: () => number) {
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** False when the id was already seen within the window. */
  add(key: string): boolean {
    const now = this.#now();
    for (const [k, expires] of this.#seen) {
      if (expires > now && this.#seen.size < DeliveryCache.MAX) break;
      this.#seen.delete(k);
    }
    const expires = this.#seen.get(key);
    if (expires !== undefined && expires > now) return false;
    this.#seen.delete(key);
    this.#seen.set(key, now + this.#windowMs);
    return true;
  }
}

/** A failure past a limit: whose limit, whether this one crossed it, and when to come back. */
interface Limited {
  by: 'address' | 'total';
  limit: number;
  crossed: boolean;
  retryAfterSeconds: number;
}

/**
 * Failed verifications per minute, per remote address and from all addresses
 * together. A 256-bit HMAC cannot be guessed, so this guards the log and the
 * CPU, and tells a misconfigured sender to back off; a valid webhook is always
 * verified and always accepted. The total counts only failures an address's
 * own limit let through, so one noisy address cannot push the others into 429;
 * it bounds the 401s answered to many addresses (an IPv6 prefix, a botnet).
 */
class FailureLimiter {
  static readonly WINDOW_MS = 60_000;
  static readonly MAX_ADDRESSES = 10_000;
  readonly #perAddress: number;
  readonly #total: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, { start: number; count: number }>();
  #all = { start: Number.NEGATIVE_INFINITY, count: 0 };

  constructor(perAddress: number, total: number, now: () => number) {
    this.#perAddress = perAddress;
    this.#total = total;
    this.#now = now;
  }

  /** Records a failure; undefined while it is within both limits. */
  fail(address: string): Limited | undefined {
    const now = this.#now();
    let w = this.#windows.get(address);
    if (!w || now - w.start >= FailureLimiter.WINDOW_MS) {
      this.#windows.delete(address);
      if (this.#windows.size >= FailureLimiter.MAX_ADDRESSES) this.#prune(now);
      this.#windows.set(address, (w = { start: now, count: 0 }));
    }
    w.count++;
    if (w.count > this.#perAddress) return { by: 'address', limit: this.#perAddress, crossed: w.count === this.#perAddress + 1, retryAfterSeconds: retryAfter(w.start, now) };
    if (now - this.#all.start >= FailureLimiter.WINDOW_MS) this.#all = { start: now, count: 0 };
    this.#all.count++;
    if (this.#all.count > this.#total) return { by: 'total', limit: this.#total, crossed: this.#all.count === this.#total + 1, retryAfterSeconds: retryAfter(this.#all.start, now) };
    return undefined;
  }

  #prune(now: number): void {
    for (const [k, w] of this.#windows) if (now - w.start >= FailureLimiter.WINDOW_MS) this.#windows.delete(k);
    // Still full (a flood from many addresses): forget the oldest windows.
    for (const k of this.#windows.keys()) {
      if (this.#windows.size < FailureLimiter.MAX_ADDRESSES) break;
      this.#windows.delete(k);
    }
  }
}

function retryAfter(windowStart: number, now: number): number {
  return Math.max(1, Math.ceil((windowStart + FailureLimiter.WINDOW_MS - now) / 1_000));
}

/** /readyz: ready once a pass has finished and the last fetch worked. */
class Readiness {
  #passes = 0;
  #fetchFailed = false;

  onPass(report: PassReport): void {
    this.#passes++;
    this.#fetchFailed = report.fetchError !== undefined;
  }

  check(): { ready: boolean; reason?: string } {
    if (this.#passes === 0) return { ready: false, reason: 'the first pass has not finished' };
    // The fetch error itself (hosts, paths) stays in the log and `plumb status`: this endpoint is unauthenticated.
    if (this.#fetchFailed) return { ready: false, reason: 'the last fetch failed; see the log or plumb status' };
    return { ready: true };
  }
}
