/**
 * The Redfish client against scripted local HTTPS stubs: sessions and re-login,
 * ETag/If-Match, 412/428, success classification (incl. iLO's error-shaped
 * success), error mapping with @Message.ExtendedInfo, ActionInfo discovery, and
 * the transport's bounds (size cap, redirects, timeouts, aborts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { action, systemUri } from '../../../providers/redfish/discovery.js';
import { outcomeUnknownAfterSend, retryAfterMs } from '../../../providers/redfish/http.js';
import { redfishProvider } from '../../../providers/redfish/index.js';
import { classifySuccess, extractMessages, httpError } from '../../../providers/redfish/messages.js';
import { chooseResetType, resetAction } from '../../../providers/redfish/power.js';
import type { RedfishSession } from '../../../providers/redfish/session.js';
import { AuthError, CancelledError, ProviderError, retryAfterOf, SessionLostError, SpecError, TimeoutError, UnreachableError } from '../../../src/errors.js';
import type { Target } from '../../../src/provider.js';
import { SecretResolver } from '../../../src/secrets/resolve.js';
import { testLog } from '../../helpers/provider-contract.js';
import type { Certs, StubRequest } from './stub-bmc.js';
import { basicRoutes, makeCerts, removeCerts, StubBmc } from './stub-bmc.js';

const secrets = new SecretResolver({ env: { BMC_PW: 'secret-pw', WRONG_PW: 'nope-nope' } });
let certs: Certs;

beforeAll(() => {
  certs = makeCerts();
});
afterAll(() => removeCerts(certs));

function target(stub: StubBmc, extra: Record<string, unknown> = {}): Target {
  return { name: 'bmc1', spec: { provider: 'redfish', address: stub.url, user: 'admin', password: 'env:BMC_PW', certFingerprint: certs.leafFingerprint, timeouts: { pollInterval: '20ms', request: '2s' }, ...extra } };
}

function open(stub: StubBmc, extra: Record<string, unknown> = {}, signal: AbortSignal = AbortSignal.timeout(10_000)): Promise<RedfishSession> {
  return redfishProvider.open(target(stub, extra), { secrets, signal, log: testLog(), connectTimeoutMs: 5_000 });
}

const signal = (): AbortSignal => AbortSignal.timeout(10_000);

describe('redfish client: sessions', () => {
  let stub: StubBmc;
  let state: Parameters<typeof basicRoutes>[0];
  beforeAll(async () => {
    stub = await new StubBmc({ certs }).listen();
  });
  afterAll(() => stub.close());
  afterEach(() => {
    stub.requests.length = 0;
  });
  const reset = (): void => {
    state = { etag: 1, system: { PowerState: 'On', AssetTag: 'a' }, logins: 0, sessionsDeleted: 0 };
    stub.handler = basicRoutes(state);
  };

  it('logs in once, reuses the token for every request, and deletes the session on close', async () => {
    reset();
    const s = await open(stub);
    for (let i = 0; i < 3; i++) await s.getJson('/redfish/v1/Systems/1', signal());
    expect(state.logins).toBe(1);
    expect(stub.requests.filter((r) => r.path === '/redfish/v1/Systems/1').every((r) => r.headers['x-auth-token'] === 'tok-1')).toBe(true);
    expect(stub.requests.some((r) => r.headers.authorization !== undefined)).toBe(false);
    await s.close();
    expect(state.sessionsDeleted).toBe(1);
    expect(s.alive).toBe(false);
    await s.close(); // twice is fine
    expect(state.sessionsDeleted).toBe(1);
  });

  it('an expired token: logs in again once and repeats the request', async () => {
    reset();
    const s = await open(stub);
    state.token = 'expired-by-bmc';
    const body = await s.getJson('/redfish/v1/Systems/1', signal());
    expect(body.PowerState).toBe('On');
    expect(state.logins).toBe(2);
    await s.close();
  });

  it('401 again after logging in again is an AuthError, not retried', async () => {
    reset();
    const s = await open(stub);
    const base = stub.handler;
    stub.handler = (req) => (req.path === '/redfish/v1/Systems/1' ? { status: 401, body: { error: { code: 'x', message: 'no' } } } : base(req));
    const err = await s.getJson('/redfish/v1/Systems/1', signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).retryable).toBe(false);
    expect(state.logins).toBe(2); // exactly one re-login
    await s.close();
  });

  it('refused credentials at open are an AuthError and never contain the password', async () => {
    reset();
    const err = await redfishProvider
      .open({ name: 'bmc1', spec: { ...target(stub).spec, password: 'env:WRONG_PW' } }, { secrets, signal: signal(), log: testLog(), connectTimeoutMs: 5_000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).not.toContain('nope-nope');
  });

  it('basic auth: no session, an Authorization header on every request', async () => {
    reset();
    const s = await open(stub, { auth: 'basic' });
    await s.getJson('/redfish/v1/Systems/1', signal());
    expect(state.logins).toBe(0);
    const sys = stub.requests.find((r) => r.path === '/redfish/v1/Systems/1')!;
    expect(sys.headers.authorization).toBe(`Basic ${Buffer.from('admin:secret-pw').toString('base64')}`);
    await s.close();
    expect(state.sessionsDeleted).toBe(0);
  });

  it('an already aborted signal: CancelledError or TimeoutError, nothing sent', async () => {
    reset();
    const before = stub.requests.length;
    await expect(open(stub, {}, AbortSignal.abort())).rejects.toBeInstanceOf(CancelledError);
    await expect(open(stub, {}, AbortSignal.abort(new DOMException('t', 'TimeoutError')))).rejects.toBeInstanceOf(TimeoutError);
    expect(stub.requests.length).toBe(before);
  });
});

describe('redfish client: writes', () => {
  let stub: StubBmc;
  let s: RedfishSession;
  let state: Parameters<typeof basicRoutes>[0];
  let patch: (req: StubRequest) => { status: number; body?: unknown; headers?: Record<string, string> };
  const patches = (): StubRequest[] => stub.requests.filter((r) => r.method === 'PATCH');

  beforeAll(async () => {
    stub = await new StubBmc({ certs }).listen();
    state = { etag: 1, system: { PowerState: 'On', AssetTag: 'a' }, logins: 0, sessionsDeleted: 0 };
    const base = basicRoutes(state);
    stub.handler = (req) => {
      if (req.method === 'PATCH' && req.path === '/redfish/v1/Systems/1') return patch(req);
      return base(req);
    };
    s = await open(stub);
  });
  afterAll(async () => {
    await s.close();
    await stub.close();
  });
  afterEach(() => {
    stub.requests.length = 0;
  });

  const writeTag = (tag: string) => s.patch('/redfish/v1/Systems/1', (cur) => (cur.AssetTag === tag ? undefined : { AssetTag: tag }), signal());

  it('PATCH carries If-Match with the ETag of the last read', async () => {
    patch = (req) => {
      if (req.headers['if-match'] !== `"${state.etag}"`) return { status: 412, body: {} };
      state.system.AssetTag = (req.body as { AssetTag: string }).AssetTag;
      state.etag++;
      return { status: 204 };
    };
    await s.getJson('/redfish/v1/Systems/1', signal());
    await writeTag('b');
    expect(patches()).toHaveLength(1);
    expect(patches()[0]!.headers['if-match']).toBe('"1"');
    expect(state.system.AssetTag).toBe('b');
  });

  it('412: re-read and re-plan once; a second 412 is retryable', async () => {
    let storm = 1;
    patch = (req) => {
      if (storm > 0) {
        storm--;
        return { status: 412, body: { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PreconditionFailed', Message: 'ETag mismatch' }] } } };
      }
      state.system.AssetTag = (req.body as { AssetTag: string }).AssetTag;
      state.etag++;
      return { status: 200, body: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.Success' }] } };
    };
    await writeTag('c');
    expect(patches()).toHaveLength(2);
    expect(stub.requests.filter((r) => r.method === 'GET' && r.path === '/redfish/v1/Systems/1')).toHaveLength(2); // no cached read, then the re-read
    expect(state.system.AssetTag).toBe('c');

    stub.requests.length = 0;
    storm = 2;
    const err = await writeTag('d').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).retryable).toBe(true);
    expect(patches()).toHaveLength(2);
  });

  it('412 and the re-read shows someone already wrote the same: no second PATCH', async () => {
    patch = () => {
      state.system.AssetTag = 'e';
      state.etag++;
      return { status: 412, body: {} };
    };
    await s.getJson('/redfish/v1/Systems/1', signal());
    await writeTag('e');
    expect(patches()).toHaveLength(1);
  });

  it('428 without an ETag: reads one and sends If-Match', async () => {
    patch = (req) => {
      if (req.headers['if-match'] === undefined) return { status: 428, body: { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PreconditionRequired' }] } } };
      state.system.AssetTag = (req.body as { AssetTag: string }).AssetTag;
      state.etag++;
      return { status: 204 };
    };
    // A resource read without an ETag: the first PATCH goes without If-Match.
    const base = stub.handler;
    stub.handler = (req) => {
      if (req.method === 'GET' && req.path === '/redfish/v1/Systems/1' && stub.requests.filter((r) => r.method === 'GET' && r.path === req.path).length === 1) {
        return { status: 200, body: { PowerState: 'On', AssetTag: state.system.AssetTag } };
      }
      return base(req);
    };
    try {
      await s.getJson('/redfish/v1/Systems/1', signal());
      await writeTag('f');
    } finally {
      stub.handler = base;
    }
    expect(patches().map((p) => p.headers['if-match'])).toEqual([undefined, `"${state.etag - 1}"`]);
    expect(state.system.AssetTag).toBe('f');
  });

  it('a PATCH that succeeds with 200 + iLO error-shaped body, 202 or 204 is a success', async () => {
    const bodies: Array<{ status: number; body?: unknown }> = [
      { status: 200, body: { error: { code: 'iLO.0.10.ExtendedInfo', message: 'See @Message.ExtendedInfo for more information.', '@Message.ExtendedInfo': [{ MessageId: 'iLO.2.14.SystemResetRequired' }] } } },
      { status: 202, body: undefined },
      { status: 204, body: undefined },
      { status: 200, body: { PowerState: 'On', AssetTag: 'full' } },
    ];
    for (const [i, reply] of bodies.entries()) {
      patch = () => {
        state.etag++;
        return reply;
      };
      const verdict = await writeTag(`g${i}`);
      expect(verdict).toBeDefined();
      expect(verdict!.failures).toEqual([]);
      if (i === 0) expect(verdict!.resetRequired).toBe(true);
    }
  });

  it('200 naming refused properties is a SpecError with the BMC text', async () => {
    patch = () => ({
      status: 200,
      body: { 'AssetTag@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PropertyValueFormatError', Message: 'The value x for AssetTag has a bad format.', RelatedProperties: ['#/AssetTag'] }] },
    });
    const err = await writeTag('zz').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as Error).message).toContain('The value x for AssetTag has a bad format.');
  });

  it('errors: 400 with ExtendedInfo is a SpecError, 503 is retryable, 500 too; 405 is not', async () => {
    const cases: Array<[number, unknown, new (...a: never[]) => Error, boolean]> = [
      [400, { error: { code: 'Base.1.8.GeneralError', message: 'bad', '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PropertyValueNotInList', Message: 'The value Purple for IndicatorLED is not in the list.', RelatedProperties: ['#/IndicatorLED'] }] } }, SpecError, false],
      [503, { error: { code: 'Base.1.8.ServiceTemporarilyUnavailable', message: 'busy' } }, ProviderError, true],
      [500, { error: { code: 'Base.1.8.InternalError', message: 'oops' } }, ProviderError, true],
      [405, undefined, ProviderError, false],
    ];
    for (const [status, body, type, retryable] of cases) {
      patch = () => ({ status, body });
      const err = await writeTag(`h${status}`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(type);
      expect((err as { retryable: boolean }).retryable).toBe(retryable);
      if (status === 400) expect((err as Error).message).toContain('The value Purple for IndicatorLED is not in the list. [#/IndicatorLED] (Base.1.8.PropertyValueNotInList)');
    }
  });

  it('action POSTs carry no If-Match (some BMCs refuse it)', async () => {
    const base = stub.handler;
    stub.handler = (req) => (req.method === 'POST' && req.path.endsWith('ComputerSystem.Reset') ? { status: req.headers['if-match'] ? 412 : 204 } : base(req));
    try {
      const sys = await s.getJson('/redfish/v1/Systems/1', signal());
      const reset = await resetAction(s, sys, signal());
      await s.post(reset.target, { ResetType: 'ForceRestart' }, signal());
      const post = stub.requests.find((r) => r.method === 'POST')!;
      expect(post.headers['if-match']).toBeUndefined();
      expect(post.body).toEqual({ ResetType: 'ForceRestart' });
    } finally {
      stub.handler = base;
    }
  });
});

describe('redfish client: discovery', () => {
  it('reset allowable values inline, or behind @Redfish.ActionInfo (read once per session)', async () => {
    const stub = await new StubBmc({ certs }).listen();
    const state = { etag: 1, system: { PowerState: 'On' }, logins: 0, sessionsDeleted: 0, resetActionInfo: false };
    stub.handler = basicRoutes(state);
    try {
      let s = await open(stub);
      const uri = await systemUri(s, signal());
      expect(uri).toBe('/redfish/v1/Systems/1');
      const inline = await resetAction(s, await s.getJson(uri, signal()), signal());
      expect(inline.allowed).toEqual(['On', 'ForceOff', 'ForceRestart']);
      expect(chooseResetType(inline.allowed, ['ForceRestart', 'PowerCycle'], 'x')).toBe('ForceRestart');
      await s.close();

      state.resetActionInfo = true;
      s = await open(stub);
      const sys = await s.getJson(uri, signal());
      const viaInfo = await resetAction(s, sys, signal());
      expect(viaInfo.allowed).toEqual(['On', 'GracefulShutdown', 'PowerCycle']);
      expect(chooseResetType(viaInfo.allowed, ['ForceRestart', 'PowerCycle', 'GracefulRestart'], 'x')).toBe('PowerCycle');
      expect(() => chooseResetType(viaInfo.allowed, ['ForceOff'], 'power off')).toThrow(SpecError);
      await resetAction(s, sys, signal());
      expect(stub.requests.filter((r) => r.path.endsWith('ResetActionInfo'))).toHaveLength(1);
      expect(await action(s, sys, '#ComputerSystem.Nothing', undefined, signal())).toBeUndefined();
      await s.close();
    } finally {
      await stub.close();
    }
  });

  it('systemId picks that member; an unknown one is a SpecError', async () => {
    const stub = await new StubBmc({ certs }).listen();
    stub.handler = basicRoutes({ etag: 1, system: {}, logins: 0, sessionsDeleted: 0 });
    try {
      const s = await open(stub, { systemId: 'Nope' });
      await expect(systemUri(s, signal())).rejects.toBeInstanceOf(SpecError);
      await s.close();
    } finally {
      await stub.close();
    }
  });
});

describe('redfish client: transport bounds', () => {
  let stub: StubBmc;
  let s: RedfishSession;
  beforeAll(async () => {
    stub = await new StubBmc({ certs }).listen();
    const base = basicRoutes({ etag: 1, system: {}, logins: 0, sessionsDeleted: 0 });
    stub.handler = (req) => {
      if (req.path === '/big') return { status: 200, raw: Buffer.alloc(5 * 1024 * 1024, 0x20) };
      if (req.path === '/moved') return { status: 302, headers: { Location: 'https://example.invalid/' } };
      if (req.path === '/slow') return { status: 200, body: {}, delayMs: 3_000 };
      if (req.path === '/echo-secret') return { status: 400, body: { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PropertyValueFormatError', Message: 'The value secret-pw for Password is invalid.' }] } } };
      return base(req);
    };
    s = await open(stub);
  });
  afterAll(async () => {
    await s.close();
    await stub.close();
  });

  it('a body over 4 MiB is refused', async () => {
    const err = await s.getJson('/big', signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/larger than/);
  });

  it('redirects are not followed', async () => {
    const err = await s.getJson('/moved', signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/redirects are not followed/);
    expect(stub.requests.filter((r) => r.path === '/moved')).toHaveLength(1);
  });

  it('no headers within the request timeout: TimeoutError; an aborted request: the signal decides', async () => {
    const err = await s.getJson('/slow', signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    const c = new AbortController();
    setTimeout(() => c.abort(), 50);
    await expect(s.getJson('/slow', c.signal)).rejects.toBeInstanceOf(CancelledError);
    await expect(s.getJson('/slow', AbortSignal.timeout(50))).rejects.toBeInstanceOf(TimeoutError);
  });

  it('a BMC message that echoes the password is scrubbed', async () => {
    const err = await s.getJson('/echo-secret', signal()).catch((e: unknown) => e);
    expect((err as Error).message).not.toContain('secret-pw');
    expect((err as Error).message).toContain('[REDACTED]');
  });

  it('a refused connection is a retryable UnreachableError', async () => {
    const dead = await new StubBmc({ certs }).listen();
    await dead.close();
    const err = await open(dead).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect((err as UnreachableError).retryable).toBe(true);
  });
});

describe('redfish client: was the request sent?', () => {
  let stub: StubBmc;
  let s: RedfishSession;
  let state: Parameters<typeof basicRoutes>[0];
  let release: () => void = () => undefined;
  beforeAll(async () => {
    stub = await new StubBmc({ certs }).listen();
    state = { etag: 1, system: {}, logins: 0, sessionsDeleted: 0 };
    const base = basicRoutes(state);
    const held = new Promise<void>((resolve) => (release = resolve));
    stub.handler = (req) => {
      if (req.path === '/drop') return { status: 200, drop: true };
      if (req.path === '/slow') return { status: 200, body: {}, delayMs: 3_000 };
      if (req.path === '/held') return { status: 200, body: {}, hold: held };
      return base(req);
    };
    s = await open(stub);
  });
  afterAll(async () => {
    release();
    await s.close();
    await stub.close();
  });

  it('the BMC got the request and dropped the connection: SessionLostError, outcome unknown, retryable', async () => {
    const err = await s.post('/drop', { ResetType: 'On' }, signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionLostError);
    expect(err).toMatchObject({ retryable: true });
    expect(outcomeUnknownAfterSend(err)).toBe(true);
    expect(stub.requests.filter((r) => r.path === '/drop')).toHaveLength(1);
  });

  it('sent, then no answer within the request timeout: TimeoutError, outcome unknown', async () => {
    const err = await s.post('/slow', {}, signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(outcomeUnknownAfterSend(err)).toBe(true);
  });

  it('a signal that aborted before the request: never sent, whatever the kind of abort', async () => {
    const before = stub.requests.length;
    for (const aborted of [AbortSignal.abort(), AbortSignal.abort(new TimeoutError('the deadline passed'))]) {
      const err = await s.post('/redfish/v1/Systems/1', {}, aborted).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(aborted.reason instanceof TimeoutError ? TimeoutError : CancelledError);
      expect(outcomeUnknownAfterSend(err)).toBe(false);
      // The signal's own reason is shared by every request on it: it is never marked.
      expect((aborted.reason as { requestSent?: boolean }).requestSent).toBeUndefined();
    }
    expect(stub.requests.length).toBe(before);
  });

  it('aborted while queued behind busy connections: never sent', async () => {
    // Both pooled connections wait on the stub, which has seen both requests.
    const holding = [s.post('/held', {}, signal()), s.post('/held', {}, signal())];
    while (stub.requests.filter((r) => r.path === '/held').length < 2) await new Promise((r) => setImmediate(r));
    const queued = new AbortController();
    const waiting = s.post('/queued', {}, queued.signal).catch((e: unknown) => e);
    queued.abort();
    // undici acts on the abort when a connection frees up, and then writes nothing.
    release();
    await Promise.all(holding);
    const err = await waiting;
    expect(err).toBeInstanceOf(CancelledError);
    expect(outcomeUnknownAfterSend(err)).toBe(false);
    expect(stub.requests.some((r) => r.path === '/queued')).toBe(false);
  });

  it('aborted after the BMC got the request: outcome unknown', async () => {
    const c = new AbortController();
    const before = stub.requests.filter((r) => r.path === '/slow').length;
    const pending = s.post('/slow', {}, c.signal).catch((e: unknown) => e);
    while (stub.requests.filter((r) => r.path === '/slow').length === before) await new Promise((r) => setImmediate(r));
    c.abort();
    const err = await pending;
    expect(err).toBeInstanceOf(CancelledError);
    expect(outcomeUnknownAfterSend(err)).toBe(true);
  });

  it('a refused connection: UnreachableError, never sent', async () => {
    const dead = await new StubBmc({ certs }).listen();
    dead.handler = basicRoutes({ etag: 1, system: {}, logins: 0, sessionsDeleted: 0 });
    const live = await open(dead);
    await dead.close();
    // The kept-alive connection may still look open to the client until it is used once: a request
    // written onto it as the BMC closes it is a drop after sending (unknown). The one after needs a new one.
    await live.getJson('/redfish/v1/Systems/1', signal()).catch(() => undefined);
    const err = await live.post('/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { ResetType: 'On' }, signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect(outcomeUnknownAfterSend(err)).toBe(false);
    await live.close();
  });

  it('an expired token whose log-in again is dropped: the action itself was never sent', async () => {
    const actions = stub.requests.filter((r) => r.path === '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset').length;
    const base = stub.handler;
    state.token = 'expired-by-bmc';
    stub.handler = (req) => (req.method === 'POST' && req.path === '/redfish/v1/SessionService/Sessions' ? { status: 200, drop: true } : base(req));
    try {
      const err = await s.post('/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', { ResetType: 'On' }, signal()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnreachableError);
      expect(outcomeUnknownAfterSend(err)).toBe(false);
      // Only the first try, refused with 401, reached the BMC.
      expect(stub.requests.filter((r) => r.path === '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset').length).toBe(actions + 1);
    } finally {
      stub.handler = base;
    }
  });
});

describe('redfish messages', () => {
  it('classifies by message id, not by the presence of a body', () => {
    expect(classifySuccess(undefined)).toMatchObject({ failures: [], resetRequired: false });
    expect(classifySuccess({ error: { '@Message.ExtendedInfo': [{ MessageId: 'iLO.2.14.SystemResetRequired' }] } })).toMatchObject({ failures: [], resetRequired: true });
    expect(classifySuccess({ '@Message.ExtendedInfo': [{ MessageId: 'Base.1.12.Success', Message: 'ok' }] }).failures).toEqual([]);
    expect(classifySuccess({ error: { '@Message.ExtendedInfo': [{ MessageId: 'iLO.2.14.Success' }] } }).failures).toEqual([]);
    expect(classifySuccess({ 'X@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PropertyNotWritable', Message: 'no' }] }).failures).toHaveLength(1);
  });

  it('error text comes from @Message.ExtendedInfo, falling back to error.message', () => {
    expect(extractMessages({ error: { code: 'Base.1.8.GeneralError', message: 'A general error has occurred.' } })).toEqual([{ id: 'Base.1.8.GeneralError', message: 'A general error has occurred.', related: [] }]);
    const e = httpError({ what: 'redfish x: PATCH /a', status: 400, body: { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PropertyUnknown', Message: 'The property Foo is not in the list of valid properties.' }] } } });
    expect(e).toBeInstanceOf(SpecError);
    expect(e.message).toBe('redfish x: PATCH /a -> 400: The property Foo is not in the list of valid properties. (Base.1.8.PropertyUnknown)');
    expect(httpError({ what: 'w', status: 429, body: undefined, retryAfterMs: 2000 }).retryable).toBe(true);
    expect(httpError({ what: 'w', status: 403, body: undefined })).toBeInstanceOf(AuthError);
  });

  it('a message sent without its text (iLO) reads as its id and arguments', () => {
    const body = { error: { code: 'iLO.0.10.ExtendedInfo', message: 'See @Message.ExtendedInfo for more information.', '@Message.ExtendedInfo': [{ MessageId: 'iLO.2.14.InvalidOperationForSystemState', MessageArgs: ['Power is off'] }] } };
    expect(httpError({ what: 'redfish x: POST /r', status: 400, body }).message).toBe('redfish x: POST /r -> 400: iLO.2.14.InvalidOperationForSystemState (Power is off)');
    expect(extractMessages({ error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.19.PropertyUnknown', Message: 'no', MessageSeverity: 'Warning', Severity: 'Critical' }] } })[0]).toMatchObject({ severity: 'Warning' });
  });

  it('Retry-After in seconds or as an HTTP-date, relative to now; garbage is no Retry-After', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs('Wednesday, 21-Oct-15 07:28:07 GMT', now)).toBe(7_000);
    expect(retryAfterMs('Wed Oct 21 07:28:09 2015', now)).toBe(9_000);
    // A date already past: retry at once, not a negative wait.
    expect(retryAfterMs('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
    for (const junk of [undefined, '', 'soon', '1.5', '-3', '2 seconds']) expect(retryAfterMs(junk, now)).toBeUndefined();
  });

  it('a 429 or 503 carries its Retry-After on the error (retryAfterMs, and in the message); a 500 with one does not', () => {
    const busy = httpError({ what: 'redfish x: GET /a', status: 503, body: undefined, retryAfterMs: 3_000 });
    expect(busy).toBeInstanceOf(ProviderError);
    expect(busy).toMatchObject({ retryable: true, retryAfterMs: 3_000 });
    expect(busy.message).toBe('redfish x: GET /a -> 503: the BMC is busy or failing (Retry-After 3 s)');
    expect(retryAfterOf(httpError({ what: 'w', status: 429, body: undefined, retryAfterMs: 1_500 }))).toBe(1_500);
    expect(retryAfterOf(httpError({ what: 'w', status: 500, body: undefined, retryAfterMs: 1_500 }))).toBeUndefined();
    expect(retryAfterOf(httpError({ what: 'w', status: 503, body: undefined }))).toBeUndefined();
  });
});
