/**
 * The HTTP transport to one BMC: one small undici Pool (keep-alive), TLS trust
 * enforced in the connector, no redirects followed, bounded header/body waits and
 * response size, every request abortable. Network failures become typed errors;
 * HTTP statuses are left to the caller (session.ts) to interpret.
 *
 * A failed request is one of two things, told apart here where it is known:
 * never sent (no byte of it was written: the connect, the TLS handshake or the
 * pool queue failed, or the signal aborted first), or sent without an answer
 * (written, then the connection dropped, the answer timed out, or the signal
 * aborted). The first is UnreachableError, or a TimeoutError/CancelledError
 * marked `requestSent: false`; the second is SessionLostError, TimeoutError or
 * CancelledError, whose outcome nobody knows.
 */
import type * as Undici from 'undici';
import { abortError, type Json } from '../../src/provider.js';
import type { Dispatcher, Pool } from 'undici';
import { lazyRequire } from '../../src/util/lazy-require.js';
import { CancelledError, HostKeyError, PlumbError, ProviderError, SessionLostError, TimeoutError, UnreachableError } from '../../src/errors.js';
import { redactText } from '../../src/secrets/redact.js';
import type { TlsTrust } from './tls.js';
import { isUntrustedCertificate, trustedConnector } from './tls.js';

const undici = lazyRequire<typeof Undici>('undici');

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
const CLOSE_GRACE_MS = 1_000;

export interface HttpOptions {
  connectTimeoutMs: number;
  /** Wait for response headers, and between body chunks; default 30s. */
  requestTimeoutMs: number;
  /** Largest response body read; default 4 MiB. */
  maxBodyBytes?: number;
  /** Keep-alive connections to the BMC; default 2 (BMCs have little to spare). */
  connections?: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | undefined>;
  /** Parsed JSON body; undefined when empty or not JSON. */
  json: Json | undefined;
  /** Raw text, for error messages when the body is not JSON (truncated). */
  text: string;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** Socket-level failures: before the request was written they mean "could not connect", after it "dropped". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** Set by the dispatcher once undici starts writing the request to a socket. */
class Delivery {
  written = false;
}

/**
 * Marks a request's Delivery when undici hands it to a socket: onRequestStart
 * comes right before the first write, unless the request is aborted in it (a
 * signal that fired while the request waited in the pool's queue takes effect
 * there, and undici then writes nothing).
 */
const trackWrites: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
  // request() hands its options, `opaque` included, down to dispatch.
  const opaque = (opts as { opaque?: unknown }).opaque;
  const delivery = opaque instanceof Delivery ? opaque : undefined;
  if (!delivery) return dispatch(opts, handler);
  return dispatch(opts, {
    onRequestStart: (controller, context: unknown) => {
      handler.onRequestStart?.(controller, context);
      if (!controller.aborted) delivery.written = true;
    },
    onRequestUpgrade: (controller, statusCode, headers, socket) => handler.onRequestUpgrade?.(controller, statusCode, headers, socket),
    onResponseStart: (controller, statusCode, headers, statusMessage) => handler.onResponseStart?.(controller, statusCode, headers, statusMessage),
    onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
    onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
    onResponseError: (controller, error) => handler.onResponseError?.(controller, error),
  });
};

/**
 * The failure of a request none of which reached the BMC, as a fresh error of
 * the same kind marked `requestSent: false` (never the shared abort reason of a
 * signal, which other requests may throw too).
 */
export function notSent(err: PlumbError): PlumbError {
  let fresh: PlumbError;
  if (err instanceof TimeoutError) fresh = new TimeoutError(err.message, { cause: err });
  else if (err instanceof CancelledError) fresh = new CancelledError(err.message, { cause: err });
  else if (err instanceof SessionLostError) fresh = new UnreachableError(err.message, { cause: err });
  else return err;
  return Object.assign(fresh, { requestSent: false });
}

/**
 * Whether a failed request may have been performed by the BMC: it was written
 * and no answer came (a drop, a timeout, a cancellation mid-request). An HTTP
 * error status, a connection that never opened, a certificate refused in the
 * handshake, or an abort before the first byte: the request was not performed.
 */
export function outcomeUnknownAfterSend(err: unknown): boolean {
  if ((err as { requestSent?: unknown } | null)?.requestSent === false) return false;
  return err instanceof TimeoutError || err instanceof SessionLostError || err instanceof CancelledError;
}

function headerMap(raw: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(raw)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export class RedfishHttp {
  readonly origin: string;
  readonly #target: string;
  readonly #pool: Pool;
  /** The pool, with each request's Delivery tracked. */
  readonly #dispatcher: Dispatcher;
  readonly #maxBody: number;
  readonly #trust: TlsTrust;
  #closed = false;

  constructor(targetName: string, origin: string, trust: TlsTrust, options: HttpOptions) {
    this.#target = targetName;
    this.origin = origin;
    this.#trust = trust;
    this.#maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#pool = new (undici().Pool)(origin, {
      connections: options.connections ?? 2,
      connect: trustedConnector(targetName, trust, options.connectTimeoutMs),
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
      keepAliveTimeout: 10_000,
      maxResponseSize: this.#maxBody,
    });
    this.#dispatcher = this.#pool.compose(trackWrites);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** One request; the answer whatever its status. Network failures throw typed errors. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const what = `redfish ${this.#target}: ${req.method} ${req.path}`;
    if (req.signal.aborted) throw notSent(abortError(req.signal, what));
    if (this.#closed) throw new UnreachableError(`${what}: the session is closed`);
    const delivery = new Delivery();
    try {
      const res = await this.#dispatcher.request({
        method: req.method,
        path: req.path,
        headers: req.headers ?? {},
        ...(req.body !== undefined ? { body: req.body } : {}),
        signal: req.signal,
        opaque: delivery,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > this.#maxBody) {
          res.body.destroy();
          throw new ProviderError(`${what}: the response body is larger than ${this.#maxBody} bytes; refused`);
        }
        chunks.push(buf);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let json: Json | undefined;
      if (text.trim() !== '') {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      return { status: res.statusCode, headers: headerMap(res.headers), json, text: text.slice(0, 2_000) };
    } catch (err) {
      const failure = this.#networkError(err, req.signal, what, delivery.written);
      throw delivery.written ? failure : notSent(failure);
    }
  }

  /** `written`: undici had started writing the request, so a lost connection may have delivered it. */
  #networkError(err: unknown, signal: AbortSignal, what: string, written: boolean): PlumbError {
    if (signal.aborted) return abortError(signal, what);
    if (err instanceof PlumbError) return err;
    const e = err as (Error & { code?: string; cause?: unknown }) | undefined;
    const cause = e?.cause as (Error & { code?: string }) | undefined;
    // undici may wrap the connector's error; our pin error travels as the cause.
    if (cause instanceof PlumbError) return cause;
    const code = e?.code ?? cause?.code;
    const detail = redactText(e?.message ?? String(err));
    if (isUntrustedCertificate(e) || isUntrustedCertificate(cause)) {
      const by = this.#trust.kind === 'ca' ? `the CA in ${this.#trust.path}` : 'the configured trust';
      return new HostKeyError(`${what}: the BMC's certificate is not trusted by ${by} (${code}); no credentials were sent`, { cause: err });
    }
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new TimeoutError(`${what}: the BMC stopped answering (${code})`, { cause: err });
    if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return new ProviderError(`${what}: the response body is larger than ${this.#maxBody} bytes; refused`, { cause: err });
    if (code === 'UND_ERR_ABORTED') {
      const message = `${what}: the request was aborted by the transport (${detail})`;
      return written ? new SessionLostError(message, { cause: err }) : new UnreachableError(message, { cause: err });
    }
    const reason = code !== undefined && NETWORK_CODES.has(code) ? `${code} (${detail})` : detail;
    // Written: the BMC may have received it and acted; only the answer is lost.
    if (written) return new SessionLostError(`${what}: the connection dropped after the request was sent, no answer: ${reason}`, { cause: err });
    return new UnreachableError(`${what}: ${reason}`, { cause: err });
  }

  /** Lets requests in flight finish briefly, then destroys the sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const graceful = this.#pool.close().catch(() => {});
    await Promise.race([graceful, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    await this.#pool.destroy().catch(() => {});
  }
}

/**
 * `Retry-After: 5` (delay-seconds) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`,
 * or the obsolete RFC 850 and asctime forms) -> ms from `now` (0 for a date
 * already past); undefined when absent or unparsable.
 */
export function retryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  const text = value?.trim() ?? '';
  if (text === '') return undefined;
  if (/^[0-9]+$/.test(text)) return Number(text) * 1_000;
  // Every HTTP-date form names its day and month: this keeps Date.parse from reading "2" or "soon".
  if (!/^[A-Za-z]{3}/.test(text)) return undefined;
  // asctime names no zone, and HTTP-dates are always GMT (Date.parse would take it as local time).
  const at = Date.parse(/^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.test(text) ? `${text} GMT` : text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
