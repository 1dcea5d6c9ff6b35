/**
 * One Redfish session per target: a SessionService login (X-Auth-Token) reused by
 * every operation, logged out on close. ETags remembered from reads are sent as
 * If-Match on PATCH; action POSTs never carry one. Nothing is retried here except
 * the two retries the protocol itself calls for: one re-login on 401, and one
 * re-read and re-plan on 412.
 */
import { throwIfAborted } from '../../src/provider.js';
import { AuthError, PlumbError, ProviderError, SpecError } from '../../src/errors.js';
import type { Json, JsonObject, Log, OpenContext, Session, Target } from '../../src/provider.js';
import type { Secret } from '../../src/secrets/secret.js';
import { durationField } from '../../src/util/duration.js';
import { isObject } from '../../src/util/object.js';
import type { HttpResponse } from './http.js';
import { notSent, RedfishHttp, retryAfterMs } from './http.js';
import type { SuccessVerdict } from './messages.js';
import { classifySuccess, extractMessages, httpError, messagesText } from './messages.js';
import { loadTrust } from './tls.js';

/** The fields of a validated `provider: redfish` Target spec. */
export interface RedfishTargetSpec {
  provider: 'redfish';
  /** `https://host[:port]` (or `http://` with insecureHttp). */
  address: string;
  insecureHttp?: boolean;
  user: string;
  password: string;
  caFile?: string;
  certFingerprint?: string;
  auth?: 'session' | 'basic';
  systemId?: string;
  managerId?: string;
  timeouts?: { connect?: string; request?: string; pollInterval?: string; resetStale?: string };
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_POLL_INTERVAL_MS = 5_000;
const DEFAULT_RESET_STALE_MS = 10 * 60_000;
const LOGOUT_TIMEOUT_MS = 5_000;
const SERVICE_ROOT = '/redfish/v1/';


/** `{"@odata.id": "/x"}` -> `/x`. */
export function odataId(v: unknown): string | undefined {
  return isObject(v) && typeof v['@odata.id'] === 'string' ? v['@odata.id'] : undefined;
}

/** A link resolved against the BMC: absolute URLs on the same origin are reduced to their path. */
function pathOf(link: string, origin: string): string {
  if (/^https?:\/\//i.test(link)) {
    const url = new URL(link);
    if (url.origin !== new URL(origin).origin) throw new ProviderError(`the BMC pointed at ${url.origin}, another origin; not followed`);
    return `${url.pathname}${url.search}`;
  }
  return link.startsWith('/') ? link : `/${link}`;
}

/** An answer's Retry-After (seconds or an HTTP-date), as httpError takes it. */
export function retryAfterOf(res: HttpResponse): { retryAfterMs?: number } {
  const later = retryAfterMs(res.headers['retry-after']);
  return later !== undefined ? { retryAfterMs: later } : {};
}

/** A resource as last read: its body and ETag (for If-Match). */
export interface ReadResource {
  uri: string;
  body: JsonObject;
  etag?: string;
}

export interface ResetInfo {
  target: string;
  allowed: string[] | undefined;
}

export class RedfishSession implements Session {
  readonly targetName: string;
  readonly spec: RedfishTargetSpec;
  readonly log: Log;
  readonly http: RedfishHttp;
  /** Longest wait between two polls of a long operation. */
  readonly pollMaxMs: number;
  /** After a crash, a journaled reset with no visible effect for this long is taken as never issued. */
  readonly resetStaleMs: number;
  readonly #password: Secret;
  readonly #basic: boolean;
  #token: string | undefined;
  #sessionUri: string | undefined;
  #login: Promise<void> | undefined;
  /** Set when the credentials were refused mid-session: the pool then opens a new session. */
  #broken = false;
  #closed = false;
  /** The last read of each URI: its ETag feeds If-Match on the next PATCH. */
  readonly #resources = new Map<string, ReadResource>();
  /** The service root, read once per session. */
  #root: JsonObject | undefined;
  /** Discovery, per session: collection members, action targets. */
  readonly discovery = new Map<string, unknown>();

  private constructor(target: Target, spec: RedfishTargetSpec, http: RedfishHttp, password: Secret, log: Log) {
    this.targetName = target.name;
    this.spec = spec;
    this.http = http;
    this.#password = password;
    this.#basic = spec.auth === 'basic';
    this.log = log;
    this.pollMaxMs = Math.max(10, durationField(target.name, 'timeouts.pollInterval', spec.timeouts?.pollInterval, DEFAULT_POLL_INTERVAL_MS));
    this.resetStaleMs = durationField(target.name, 'timeouts.resetStale', spec.timeouts?.resetStale, DEFAULT_RESET_STALE_MS);
  }

  get alive(): boolean {
    return !this.#closed && !this.#broken && !this.http.closed;
  }

  /**
   * Connects (TLS trust checked in the handshake), reads the service root without
   * credentials, then logs in. A certificate that fails the pin never sees the password.
   */
  static async open(target: Target, ctx: OpenContext): Promise<RedfishSession> {
    const spec = target.spec as unknown as RedfishTargetSpec;
    const name = target.name;
    throwIfAborted(ctx.signal, `redfish ${name}: connect`);
    if (typeof spec.address !== 'string' || !/^https?:\/\/[^/?#\s]+\/?$/.test(spec.address)) {
      throw new SpecError(`target ${name}: address must be https://host[:port], not ${JSON.stringify(spec.address)}`);
    }
    if (typeof spec.user !== 'string' || typeof spec.password !== 'string') throw new SpecError(`target ${name}: user and password are required`);
    const trust = loadTrust(name, spec);
    const origin = new URL(spec.address).origin;
    const connectTimeoutMs = durationField(name, 'timeouts.connect', spec.timeouts?.connect, ctx.connectTimeoutMs);
    const requestTimeoutMs = durationField(name, 'timeouts.request', spec.timeouts?.request, DEFAULT_REQUEST_TIMEOUT_MS);
    const password = await ctx.secrets.resolve(spec.password);
    const http = new RedfishHttp(name, origin, trust, { connectTimeoutMs, requestTimeoutMs });
    const session = new RedfishSession(target, spec, http, password, ctx.log);
    try {
      await session.serviceRoot(ctx.signal);
      if (!session.#basic) await session.#logIn(ctx.signal);
      return session;
    } catch (err) {
      await http.close();
      throw err;
    }
  }

  /** The service root, read once per session without credentials (it also proves the TLS trust). */
  async serviceRoot(signal: AbortSignal): Promise<JsonObject> {
    if (this.#root) return this.#root;
    const res = await this.http.send({ method: 'GET', path: SERVICE_ROOT, headers: { Accept: 'application/json', 'OData-Version': '4.0' }, signal });
    if (res.status === 401 && this.#basic) {
      // Some BMCs want credentials even for the root; with basic auth that is a request like any other.
      return this.#cacheRoot(await this.getJson(SERVICE_ROOT, signal));
    }
    if (res.status !== 200 || !isObject(res.json)) throw httpError({ what: `redfish ${this.targetName}: GET ${SERVICE_ROOT}`, status: res.status, body: res.json, ...retryAfterOf(res) });
    return this.#cacheRoot(res.json);
  }

  #cacheRoot(root: JsonObject): JsonObject {
    this.#root = root;
    return root;
  }

  async #logIn(signal: AbortSignal): Promise<void> {
    const root = await this.serviceRoot(signal);
    const links = isObject(root.Links) ? root.Links : {};
    const sessions = odataId(links.Sessions) ?? '/redfish/v1/SessionService/Sessions';
    const path = pathOf(sessions, this.http.origin);
    const what = `redfish ${this.targetName}: log in as ${this.spec.user}`;
    const res = await this.http.send({
      method: 'POST',
      path,
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'OData-Version': '4.0' },
      body: JSON.stringify({ UserName: this.spec.user, Password: this.#password.revealString() }),
      signal,
    });
    if (res.status === 401 || res.status === 403) {
      const text = messagesText(extractMessages(res.json));
      throw new AuthError(`${what}: the BMC refused the credentials (${res.status}${text ? `: ${text}` : ''})`);
    }
    if (res.status < 200 || res.status >= 300) throw httpError({ what: `redfish ${this.targetName}: POST ${path} (log in)`, status: res.status, body: res.json, ...retryAfterOf(res) });
    const token = res.headers['x-auth-token'];
    if (!token) throw new ProviderError(`${what}: the BMC answered ${res.status} without an X-Auth-Token`);
    this.#token = token;
    const location = res.headers.location ?? odataId(res.json);
    this.#sessionUri = location ? pathOf(location, this.http.origin) : undefined;
    this.log.debug({ target: this.targetName }, 'redfish session opened');
  }

  /** One log-in at a time: concurrent 401s share it. */
  async #reLogIn(staleToken: string | undefined, signal: AbortSignal): Promise<void> {
    if (this.#token !== staleToken) return; // someone else already logged in again
    if (!this.#login) {
      this.#token = undefined;
      this.#login = this.#logIn(signal)
        .catch((err: unknown) => {
          if (err instanceof AuthError) this.#broken = true; // a new session re-resolves the password
          throw err;
        })
        .finally(() => (this.#login = undefined));
    }
    await this.#login;
  }

  #authHeaders(): Record<string, string> {
    if (this.#basic) return { Authorization: `Basic ${Buffer.from(`${this.spec.user}:${this.#password.revealString()}`, 'utf8').toString('base64')}` };
    return this.#token ? { 'X-Auth-Token': this.#token } : {};
  }

  /**
   * An authenticated request. A 401 with a session token means the token expired
   * (BMCs drop idle sessions): log in again once and repeat the request once.
   */
  async request(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', uri: string, options: { body?: Json; headers?: Record<string, string>; signal: AbortSignal }): Promise<HttpResponse> {
    const path = pathOf(uri, this.http.origin);
    const send = (): Promise<HttpResponse> =>
      this.http.send({
        method,
        path,
        headers: {
          Accept: 'application/json',
          'OData-Version': '4.0',
          ...(options.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
          ...options.headers,
          ...this.#authHeaders(),
        },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: options.signal,
      });
    // A log-in that fails leaves this request unsent, whatever happened to the log-in's own request.
    const loggedIn = (login: Promise<void>): Promise<void> => login.catch((err: unknown) => Promise.reject(err instanceof PlumbError ? notSent(err) : err));
    if (this.#login) await loggedIn(this.#login);
    const used = this.#token;
    let res = await send();
    if (res.status === 401 && !this.#basic) {
      this.log.info({ target: this.targetName }, 'redfish session expired; logging in again');
      await loggedIn(this.#reLogIn(used, options.signal));
      res = await send();
    }
    if (res.status === 401) {
      this.#broken = true; // the pool opens a new session, re-resolving a rotated password
      throw new AuthError(`redfish ${this.targetName}: ${method} ${path} -> 401 ${this.#basic ? 'with basic auth' : 'again after logging in again'}: the BMC refused the credentials for ${this.spec.user}`);
    }
    return res;
  }

  #fail(method: string, uri: string, res: HttpResponse): PlumbError {
    return httpError({
      what: `redfish ${this.targetName}: ${method} ${uri}`,
      status: res.status,
      body: res.json ?? (res.text ? { error: { message: res.text.slice(0, 200) } } : undefined),
      ...retryAfterOf(res),
    });
  }

  /** GET a resource; remembers its ETag. */
  async read(uri: string, signal: AbortSignal): Promise<ReadResource> {
    const got = await this.readOptional(uri, signal);
    if (!got) throw new ProviderError(`redfish ${this.targetName}: GET ${uri} -> 404: no such resource on the BMC`);
    return got;
  }

  /** GET a resource, or undefined on 404. */
  async readOptional(uri: string, signal: AbortSignal): Promise<ReadResource | undefined> {
    const res = await this.request('GET', uri, { signal });
    if (res.status === 404) {
      this.#resources.delete(uri);
      return undefined;
    }
    if (res.status !== 200) throw this.#fail('GET', uri, res);
    if (!isObject(res.json)) throw new ProviderError(`redfish ${this.targetName}: GET ${uri} answered 200 without a JSON object`);
    const body = res.json;
    const etag = res.headers.etag ?? (typeof body['@odata.etag'] === 'string' ? body['@odata.etag'] : undefined);
    const read: ReadResource = { uri, body, ...(etag ? { etag } : {}) };
    this.#resources.set(uri, read);
    return read;
  }

  async getJson(uri: string, signal: AbortSignal): Promise<JsonObject> {
    return (await this.read(uri, signal)).body;
  }

  /** What the last read of `uri` saw, if any (for If-Match). */
  lastRead(uri: string): ReadResource | undefined {
    return this.#resources.get(uri);
  }

  /**
   * PATCH what `plan` says is still different, with If-Match when the BMC gave an
   * ETag. On 412 (someone changed it since our read) the resource is read again and
   * re-planned, once; a second 412 is a retryable error for the queue. A 428 (the BMC
   * demands If-Match and we had none) reads the ETag, once. Returns undefined when
   * nothing (or nothing any more) needed writing.
   */
  async patch(uri: string, plan: (current: JsonObject) => JsonObject | undefined, signal: AbortSignal): Promise<SuccessVerdict | undefined> {
    let current = this.#resources.get(uri) ?? (await this.read(uri, signal));
    for (let attempt = 0; ; attempt++) {
      const body = plan(current.body);
      if (!body || Object.keys(body).length === 0) return undefined;
      const headers: Record<string, string> = current.etag ? { 'If-Match': current.etag } : {};
      const res = await this.request('PATCH', uri, { body, headers, signal });
      if (res.status >= 200 && res.status < 300) {
        this.#resources.delete(uri); // its ETag changed with the write
        const verdict = classifySuccess(res.json);
        if (verdict.failures.length > 0) {
          throw new SpecError(`redfish ${this.targetName}: PATCH ${uri} -> ${res.status}, but the BMC refused part of it: ${messagesText(verdict.failures)}`);
        }
        return verdict;
      }
      if (attempt === 0 && (res.status === 412 || (res.status === 428 && !current.etag))) {
        this.log.debug({ target: this.targetName, uri, status: res.status }, 're-reading before writing again');
        current = await this.read(uri, signal);
        if (res.status === 428 && !current.etag) throw new ProviderError(`redfish ${this.targetName}: PATCH ${uri} -> 428: the BMC demands If-Match but gives no ETag`);
        continue;
      }
      if (res.status === 412) {
        throw new ProviderError(`redfish ${this.targetName}: PATCH ${uri} -> 412 again after a re-read: the resource keeps changing under Plumb; will retry`, { retryable: true });
      }
      throw this.#fail('PATCH', uri, res);
    }
  }

  /** An action or a create: POST without If-Match (some BMCs answer 412 to it on actions). */
  async post(uri: string, body: Json, signal: AbortSignal): Promise<HttpResponse & { verdict: SuccessVerdict }> {
    const res = await this.request('POST', uri, { body, signal });
    if (res.status < 200 || res.status >= 300) throw this.#fail('POST', uri, res);
    const verdict = classifySuccess(res.json);
    if (verdict.failures.length > 0) throw new SpecError(`redfish ${this.targetName}: POST ${uri} -> ${res.status}, but the BMC refused part of it: ${messagesText(verdict.failures)}`);
    return { ...res, verdict };
  }

  /** DELETE; absent (404) is success. */
  async delete(uri: string, signal: AbortSignal): Promise<void> {
    const res = await this.request('DELETE', uri, { signal });
    this.#resources.delete(uri);
    if (res.status === 404 || (res.status >= 200 && res.status < 300)) return;
    throw this.#fail('DELETE', uri, res);
  }

  /** Resolves a link the BMC gave (absolute or relative) to a path on this BMC. */
  path(link: string): string {
    return pathOf(link, this.http.origin);
  }

  /** Logs out (the BMC has few session slots), then closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sessionUri && this.#token && !this.http.closed) {
      try {
        const res = await this.http.send({ method: 'DELETE', path: this.#sessionUri, headers: { 'X-Auth-Token': this.#token, Accept: 'application/json' }, signal: AbortSignal.timeout(LOGOUT_TIMEOUT_MS) });
        if (res.status >= 300 && res.status !== 404 && res.status !== 401) this.log.warn({ target: this.targetName, status: res.status }, 'redfish logout refused');
      } catch (err) {
        this.log.warn({ target: this.targetName, err: (err as Error).message }, 'redfish logout failed');
      }
    }
    this.#token = undefined;
    await this.http.close();
  }
}
