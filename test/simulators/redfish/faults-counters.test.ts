import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { header, messageIds, paths, startTestSim, type BmcClient, type TestSim } from './redfish-client.js';

describe('redfish simulator: faults', () => {
  let t: TestSim;
  let bmc: SimBmc;
  let client: BmcClient;

  beforeAll(async () => {
    t = await startTestSim({ latencyMs: 0 });
    bmc = t.sim.bmcs[0] as SimBmc;
    client = await t.admin();
  });
  afterEach(() => {
    const faults = bmc.faults;
    delete faults.latencyMs;
    delete faults.errorRate;
    delete faults.errorStatus;
    delete faults.preconditionStorm;
    delete faults.dropConnections;
    delete faults.slowBodyMs;
  });
  afterAll(() => t.dispose());

  it('latencyMs delays every answer by about that much', async () => {
    bmc.faults.latencyMs = 120;
    const started = Date.now();
    expect((await client.get(paths.system())).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('latency runs on timers: concurrent requests wait side by side, not one after another', async () => {
    // Warm keep-alive connections first, so the timed requests need no handshake.
    await Promise.all(Array.from({ length: 10 }, () => client.get('/redfish/v1/')));
    bmc.faults.latencyMs = 300;
    bmc.resetCounters();
    let firstAnswer = Infinity;
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        client.get('/redfish/v1/').then((a) => {
          firstAnswer = Math.min(firstAnswer, Date.now());
          return a;
        }),
      ),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    // A BMC that slept in line would not even read the second request before answering the first.
    expect(bmc.requests('GET', '/redfish/v1/').filter((r) => r.at <= firstAnswer).length).toBeGreaterThanOrEqual(2);
  });

  it('errorRate 1 answers every request with 503 (Retry-After) and a GeneralError body; errorStatus picks 500', async () => {
    bmc.faults.errorRate = 1;
    const answer = await client.get(paths.system());
    expect(answer.status).toBe(503);
    expect(header(answer, 'retry-after')).toBe('1');
    expect((answer.body?.error as Record<string, unknown>).code).toBe('Base.1.19.GeneralError');
    expect(messageIds(answer.body)).toEqual(['Base.1.19.ServiceTemporarilyUnavailable']);
    bmc.faults.errorStatus = 500;
    const patched = await client.patch(paths.system(), { AssetTag: 'never' });
    expect(patched.status).toBe(500);
    expect(messageIds(patched.body)).toEqual(['Base.1.19.InternalError']);
    expect(bmc.state.assetTag).toBe('');
  });

  it('errorRate 0.5 fails about half of the requests', async () => {
    bmc.faults.errorRate = 0.5;
    const answers = await Promise.all(Array.from({ length: 200 }, () => client.get('/redfish/v1/')));
    const failed = answers.filter((a) => a.status === 503).length;
    expect(failed).toBeGreaterThan(50);
    expect(failed).toBeLessThan(150);
  });

  it('preconditionStorm n: the next n PATCHes get 412 even with the right ETag, then PATCHes work', async () => {
    bmc.faults.preconditionStorm = 2;
    for (let i = 0; i < 2; i += 1) {
      const refused = await client.patchWithEtag(paths.system(), { AssetTag: 'storm' });
      expect(refused.status).toBe(412);
      expect(messageIds(refused.body)).toEqual(['Base.1.19.PreconditionFailed']);
    }
    expect(bmc.state.assetTag).toBe('');
    expect((await client.patchWithEtag(paths.system(), { AssetTag: 'storm' })).status).toBe(204);
    expect(bmc.faults.preconditionStorm).toBe(0);
  });

  it('dropConnections n: the next n requests lose their connection without an answer', async () => {
    bmc.faults.dropConnections = 2;
    const before = bmc.counters.requests;
    for (let i = 0; i < 2; i += 1) {
      await expect(request(`${bmc.url}/redfish/v1/`, { dispatcher: t.agent })).rejects.toThrow();
    }
    expect((await client.get('/redfish/v1/')).status).toBe(200);
    expect(bmc.counters.requests - before).toBe(3);
  });

  it('failNext: the next n requests with that method and path get the status, counted, and nothing is applied', async () => {
    const rule = bmc.faults.failNext('POST', `${paths.reset()}/`, 503, { count: 2 });
    bmc.resetCounters();
    for (let i = 0; i < 2; i += 1) {
      // Another method or path on the same BMC is not matched.
      expect((await client.get(paths.system())).status).toBe(200);
      const refused = await client.post(paths.reset(), { ResetType: 'ForceRestart' });
      expect(refused.status).toBe(503);
      expect(header(refused, 'retry-after')).toBe('1');
      expect((refused.body?.error as Record<string, unknown>).code).toBe('Base.1.19.GeneralError');
      expect(messageIds(refused.body)).toEqual(['Base.1.19.ServiceTemporarilyUnavailable']);
    }
    expect(rule).toMatchObject({ remaining: 0, fired: 2 });
    expect(bmc.counters).toMatchObject({ resets: 0, resetsByType: {}, writesByPath: { [`POST ${paths.reset()}`]: 2 } });
    expect(bmc.state.powerState).toBe('On');
    // Spent: the third one goes through.
    expect((await client.post(paths.reset(), { ResetType: 'On' })).status).toBe(204);
    expect(rule.fired).toBe(2);
    expect(bmc.counters).toMatchObject({ resets: 1, resetsByType: { On: 1 }, writesByPath: { [`POST ${paths.reset()}`]: 3 } });
  });

  it('failNext: any status, with a chosen Base message or with no body at all', async () => {
    bmc.state.assetTag = '';
    bmc.faults.failNext('PATCH', paths.system(), 400, { messageId: 'PropertyValueFormatError' });
    bmc.faults.failNext('PATCH', paths.system(), 500, { bare: true });
    const first = await client.patch(paths.system(), { AssetTag: 'x' });
    expect(first.status).toBe(400);
    expect(messageIds(first.body)).toEqual(['Base.1.19.PropertyValueFormatError']);
    const second = await client.patch(paths.system(), { AssetTag: 'x' });
    expect([second.status, second.text]).toEqual([500, '']);
    expect(bmc.state.assetTag).toBe('');
    expect(bmc.faults.failing.map((r) => r.fired)).toEqual(expect.arrayContaining([1, 1]));
  });

  it('failNext with a body: only requests whose JSON body has those values', async () => {
    const rule = bmc.faults.failNext('POST', paths.reset(), 503, { body: { ResetType: 'ForceOff' } });
    expect((await client.post(paths.reset(), { ResetType: 'On' })).status).toBe(204);
    expect((await client.post(paths.reset(), { ResetType: 'ForceOff' })).status).toBe(503);
    expect(rule.fired).toBe(1);
    expect(bmc.state.powerState).toBe('On');
  });

  it('failNext retryAfter: whole seconds, an HTTP-date, or none; the 503 message names the same seconds', async () => {
    const date = new Date(Date.now() + 90_000);
    bmc.faults.failNext('GET', paths.manager(), 503, { retryAfter: 7 });
    bmc.faults.failNext('GET', paths.manager(), 429, { retryAfter: date });
    bmc.faults.failNext('GET', paths.manager(), 503, { retryAfter: null });
    bmc.faults.failNext('GET', paths.manager(), 429);
    const seconds = await client.get(paths.manager());
    expect([seconds.status, header(seconds, 'retry-after')]).toEqual([503, '7']);
    expect(((seconds.body?.error as Record<string, unknown>)['@Message.ExtendedInfo'] as Array<Record<string, unknown>>)[0]?.MessageArgs).toEqual(['7']);
    const dated = await client.get(paths.manager());
    expect([dated.status, header(dated, 'retry-after')]).toEqual([429, date.toUTCString()]);
    const none = await client.get(paths.manager());
    expect([none.status, header(none, 'retry-after')]).toEqual([503, undefined]);
    const plain = await client.get(paths.manager());
    expect([plain.status, header(plain, 'retry-after')]).toEqual([429, undefined]);
    expect(() => bmc.faults.failNext('GET', paths.manager(), 503, { retryAfter: 1.5 })).toThrow(/whole seconds/);
  });

  it('requests(): each request with its arrival time and status, by method and routed path', async () => {
    bmc.resetCounters();
    const before = Date.now();
    bmc.faults.failNext('PATCH', paths.system(), 503);
    await client.patch(`${paths.system()}/`, { AssetTag: 'x' });
    await client.patch(paths.system(), { AssetTag: 'x' });
    await client.get(paths.system());
    const patches = bmc.requests('patch', `${paths.system()}?$select=AssetTag`);
    expect(patches.map((r) => [r.method, r.path, r.status])).toEqual([
      ['PATCH', paths.system(), 503],
      ['PATCH', paths.system(), 204],
    ]);
    expect(patches[0]!.at).toBeGreaterThanOrEqual(before);
    expect(patches[1]!.at).toBeGreaterThanOrEqual(patches[0]!.at);
    expect(bmc.requests().map((r) => r.method)).toEqual(['PATCH', 'PATCH', 'GET']);
    bmc.resetCounters();
    expect(bmc.requests()).toEqual([]);
  });

  it('dropNext: the connection is lost with the request unapplied, or (afterApplying) applied', async () => {
    bmc.state.assetTag = '';
    const before = bmc.faults.dropNext('PATCH', paths.system());
    await expect(client.patch(paths.system(), { AssetTag: 'lost' })).rejects.toThrow();
    expect([before.fired, bmc.state.assetTag]).toEqual([1, '']);
    const after = bmc.faults.dropNext('PATCH', paths.system(), { afterApplying: true });
    await expect(client.patch(paths.system(), { AssetTag: 'kept' })).rejects.toThrow();
    expect([after.fired, bmc.state.assetTag]).toEqual([1, 'kept']);
    expect((await client.get(paths.system())).body?.AssetTag).toBe('kept');
  });

  it('slowBodyMs sends the headers at once and the body in chunks over that time', async () => {
    bmc.faults.slowBodyMs = 600;
    const started = Date.now();
    const res = await request(`${bmc.url}${paths.system()}`, { dispatcher: t.agent, headers: { 'X-Auth-Token': client.auth.token ?? '' } });
    const headersAfter = Date.now() - started;
    const body = JSON.parse(await res.body.text()) as Record<string, unknown>;
    const bodyAfter = Date.now() - started;
    expect(res.statusCode).toBe(200);
    expect(body.PowerState).toBe('On');
    // The body trickles in after the headers, over (about) the whole slowBodyMs.
    expect(bodyAfter - headersAfter).toBeGreaterThanOrEqual(400);
    expect(bodyAfter).toBeGreaterThanOrEqual(540);
  });
});

describe('redfish simulator: counters', () => {
  let t: TestSim;
  let bmc: SimBmc;
  let client: BmcClient;

  beforeAll(async () => {
    t = await startTestSim();
    bmc = t.sim.bmcs[0] as SimBmc;
    client = await t.admin();
  });
  beforeEach(() => bmc.resetCounters());
  afterAll(() => t.dispose());

  it('counts GET-only traffic as requests and gets, never as writes', async () => {
    for (const path of ['/redfish/v1/', paths.system(), paths.bios(), paths.biosSettings(), paths.manager(), paths.networkProtocol(), paths.virtualMedia(), paths.accounts]) {
      await client.get(path);
    }
    expect(bmc.counters).toMatchObject({ requests: 8, gets: 8, writes: 0, resets: 0, updates: 0, authAttempts: 0 });
  });

  it('counts each PATCH, POST and DELETE as a write, whatever its outcome', async () => {
    await client.patch(paths.system(), { AssetTag: 'a' });
    await client.patch(paths.system(), { AssetTag: 12 });
    await client.post(paths.reset(), { ResetType: 'On' });
    await client.post(paths.accounts, { UserName: 'w', Password: 'p', RoleId: 'ReadOnly' });
    await client.delete(`${paths.accounts}/2`);
    expect(bmc.counters).toMatchObject({ writes: 5, gets: 0, resets: 1, resetsByType: { On: 1 } });
    expect(bmc.counters.writesByPath).toEqual({ [`PATCH ${paths.system()}`]: 2, [`POST ${paths.reset()}`]: 1, [`POST ${paths.accounts}`]: 1, [`DELETE ${paths.accounts}/2`]: 1 });
  });

  it('resetCounters zeroes every counter but activeSessions, which stays live', () => {
    bmc.counters.requests = 7;
    bmc.counters.resetsByType.On = 2;
    bmc.counters.writesByPath['POST /x'] = 1;
    bmc.resetCounters();
    expect(bmc.counters).toEqual({
      requests: 0,
      gets: 0,
      writes: 0,
      sessionsCreated: 0,
      sessionsDeleted: 0,
      resets: 0,
      resetsByType: {},
      writesByPath: {},
      updates: 0,
      authAttempts: 0,
      tlsHandshakes: 0,
      activeSessions: 1,
    });
  });
});
