import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { header, messageIds, PASSWORD, paths, startTestSim, USER, waitFor, type TestSim } from './redfish-client.js';

describe('redfish simulator: sessions and authentication', () => {
  let t: TestSim;
  let bmc: SimBmc;

  beforeAll(async () => {
    t = await startTestSim({ sessionTimeoutMs: 500 });
    bmc = t.sim.bmcs[0] as SimBmc;
  });
  beforeEach(() => {
    bmc.expireSessions();
    bmc.resetCounters();
  });
  afterAll(() => t.dispose());

  it('serves the ServiceRoot without credentials, and nothing else', async () => {
    const client = t.client();
    const root = await client.get('/redfish/v1/');
    expect(root.status).toBe(200);
    expect(root.body).toMatchObject({ Links: { Sessions: { '@odata.id': paths.sessions } }, Systems: { '@odata.id': '/redfish/v1/Systems' } });
    expect(header(root, 'odata-version')).toBe('4.0');
    expect(header(root, 'content-type')).toMatch(/^application\/json/);
    const system = await client.get(paths.system());
    expect(system.status).toBe(401);
    expect(messageIds(system.body)).toEqual(['Base.1.19.NoValidSession']);
    expect(bmc.counters.authAttempts).toBe(0);
  });

  it('logs in with a session: 201, X-Auth-Token and Location; the token then opens every resource', async () => {
    const client = t.client();
    const login = await client.login();
    expect(login.status).toBe(201);
    const location = header(login, 'location');
    expect(location).toMatch(/^\/redfish\/v1\/SessionService\/Sessions\/\d+$/);
    expect(login.body).toMatchObject({ UserName: USER, '@odata.id': location });
    expect((await client.get(paths.system())).status).toBe(200);
    expect((await client.get(location ?? '')).body).toMatchObject({ UserName: USER, Password: null });
    expect(bmc.counters).toMatchObject({ sessionsCreated: 1, activeSessions: 1, authAttempts: 1, writes: 0 });
  });

  it('refuses a wrong password with 401 and counts the attempt', async () => {
    const client = t.client();
    const login = await client.login(USER, 'wrong');
    expect(login.status).toBe(401);
    expect(header(login, 'x-auth-token')).toBeUndefined();
    expect(messageIds(login.body)).toEqual(['Base.1.19.ResourceAtUriUnauthorized']);
    expect(bmc.counters).toMatchObject({ authAttempts: 1, sessionsCreated: 0, activeSessions: 0 });
  });

  it('answers a login without credentials in the body with 400 PropertyMissing', async () => {
    const login = await t.client().post(paths.sessions, { UserName: USER });
    expect(login.status).toBe(400);
    expect(messageIds(login.body)).toEqual(['Base.1.19.PropertyMissing']);
  });

  it('accepts HTTP Basic as a fallback and counts every Basic request as an auth attempt', async () => {
    const client = t.client();
    client.auth = { basic: { user: USER, password: PASSWORD } };
    expect((await client.get(paths.system())).status).toBe(200);
    expect((await client.get(paths.manager())).status).toBe(200);
    client.auth = { basic: { user: USER, password: 'nope' } };
    const refused = await client.get(paths.system());
    expect(refused.status).toBe(401);
    expect(messageIds(refused.body)).toEqual(['Base.1.19.NoValidSession']);
    expect(bmc.counters.authAttempts).toBe(3);
  });

  it('refuses every token after expireSessions()', async () => {
    const client = await t.admin();
    expect((await client.get(paths.system())).status).toBe(200);
    bmc.expireSessions();
    const after = await client.get(paths.system());
    expect(after.status).toBe(401);
    expect(messageIds(after.body)).toEqual(['Base.1.19.NoValidSession']);
    expect(bmc.counters.activeSessions).toBe(0);
  });

  it('expires a token after sessionTimeoutMs of inactivity, and use keeps it alive', async () => {
    const client = await t.admin();
    for (let i = 0; i < 4; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await client.get(paths.system())).status).toBe(200);
    }
    await waitFor(() => bmc.counters.activeSessions === 0, 2000);
    expect((await client.get(paths.system())).status).toBe(401);
    expect((await t.client().get('/redfish/v1/SessionService')).status).toBe(401);
  });

  it('logs out with DELETE of the session; logout and login are not writes', async () => {
    const client = t.client();
    const login = await client.login();
    const location = header(login, 'location') ?? '';
    const logout = await client.delete(location);
    expect(logout.status).toBe(204);
    expect((await client.get(paths.system())).status).toBe(401);
    expect(bmc.counters).toMatchObject({ sessionsCreated: 1, sessionsDeleted: 1, activeSessions: 0, writes: 0 });
  });

  it('lists live sessions in the Sessions collection', async () => {
    const a = await t.admin();
    await t.admin();
    const list = await a.get(paths.sessions);
    expect(list.body).toMatchObject({ 'Members@odata.count': 2 });
  });

  it('ends the sessions of an account that is deleted', async () => {
    const admin = await t.admin();
    const created = await admin.post(paths.accounts, { UserName: 'ops', Password: 'ops-pass', RoleId: 'Operator' });
    expect(created.status).toBe(201);
    const ops = t.client();
    expect((await ops.login('ops', 'ops-pass')).status).toBe(201);
    expect((await ops.get(paths.system())).status).toBe(200);
    expect((await admin.delete(header(created, 'location') ?? '')).status).toBe(204);
    expect((await ops.get(paths.system())).status).toBe(401);
  });
});
