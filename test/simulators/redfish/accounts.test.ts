import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { header, messageIds, paths, startTestSim, USER, type TestSim } from './redfish-client.js';

describe('redfish simulator: accounts', () => {
  let t: TestSim;

  beforeAll(async () => {
    t = await startTestSim({ bmcs: ['gen', 'dell', 'hpe'], profile: (name) => (name === 'dell' ? 'idrac' : name === 'hpe' ? 'ilo' : 'generic') });
  });
  afterAll(() => t.dispose());

  it('generic: seeds one admin; POST creates, the new account logs in, DELETE removes', async () => {
    const admin = await t.admin('gen');
    const list = await admin.get(paths.accounts);
    expect(list.body).toMatchObject({ Members: [{ '@odata.id': `${paths.accounts}/1` }] });
    expect((await admin.get(`${paths.accounts}/1`)).body).toMatchObject({ UserName: USER, RoleId: 'Administrator', Enabled: true, Locked: false, Password: null });
    const created = await admin.post(paths.accounts, { UserName: 'ops', Password: 'ops-secret', RoleId: 'Operator' });
    expect(created.status).toBe(201);
    const location = header(created, 'location') ?? '';
    expect(location).toBe(`${paths.accounts}/2`);
    expect(created.body).toMatchObject({ UserName: 'ops', RoleId: 'Operator', Enabled: true, Password: null });
    expect(created.text).not.toContain('ops-secret');
    const ops = t.client('gen');
    expect((await ops.login('ops', 'ops-secret')).status).toBe(201);
    expect((await admin.delete(location)).status).toBe(204);
    expect((await admin.get(location)).status).toBe(404);
    expect((await t.client('gen').login('ops', 'ops-secret')).status).toBe(401);
  });

  it('generic: refuses a duplicate user name with 409, a missing password with 400, and slots-style PATCH deletes', async () => {
    const admin = await t.admin('gen');
    const duplicate = await admin.post(paths.accounts, { UserName: USER, Password: 'x', RoleId: 'ReadOnly' });
    expect(duplicate.status).toBe(409);
    expect(messageIds(duplicate.body)).toEqual(['Base.1.19.ResourceAlreadyExists']);
    const missing = await admin.post(paths.accounts, { UserName: 'nopass', RoleId: 'ReadOnly' });
    expect(missing.status).toBe(400);
    expect(messageIds(missing.body)).toEqual(['Base.1.19.PropertyMissing']);
    const badRole = await admin.post(paths.accounts, { UserName: 'r', Password: 'p', RoleId: 'God' });
    expect(messageIds(badRole.body)).toEqual(['Base.1.19.PropertyValueNotInList']);
    expect((await admin.patch(`${paths.accounts}/1`, { UserName: '' })).status).toBe(400);
  });

  it('generic: PATCHes an account (role, enabled); a disabled account cannot log in', async () => {
    const admin = await t.admin('gen');
    const created = await admin.post(paths.accounts, { UserName: 'viewer', Password: 'v-pass', RoleId: 'ReadOnly' });
    const location = header(created, 'location') ?? '';
    expect((await admin.patch(location, { Enabled: false })).status).toBe(204);
    expect((await t.client('gen').login('viewer', 'v-pass')).status).toBe(401);
    expect((await admin.patch(location, { Enabled: true, Password: 'v-pass-2' })).status).toBe(204);
    expect((await t.client('gen').login('viewer', 'v-pass-2')).status).toBe(201);
  });

  it('enforces roles: ReadOnly may not write, Operator may not manage accounts', async () => {
    const admin = await t.admin('gen');
    await admin.post(paths.accounts, { UserName: 'ro', Password: 'ro-pass', RoleId: 'ReadOnly' });
    await admin.post(paths.accounts, { UserName: 'op', Password: 'op-pass', RoleId: 'Operator' });
    const ro = t.client('gen');
    await ro.login('ro', 'ro-pass');
    expect((await ro.get(paths.system())).status).toBe(200);
    const refused = await ro.patch(paths.system(), { AssetTag: 'x' });
    expect(refused.status).toBe(403);
    expect(messageIds(refused.body)).toEqual(['Base.1.19.InsufficientPrivilege']);
    const op = t.client('gen');
    await op.login('op', 'op-pass');
    expect((await op.patch(paths.system(), { AssetTag: 'op-was-here' })).status).toBe(204);
    expect((await op.post(paths.accounts, { UserName: 'sneaky', Password: 'p', RoleId: 'Administrator' })).status).toBe(403);
  });

  it('idrac: 16 fixed slots, slot 1 reserved, the admin in slot 2, empty slots named ""', async () => {
    const admin = await t.admin('dell');
    const list = await admin.get(paths.accounts);
    expect(list.body?.['Members@odata.count']).toBe(16);
    expect((await admin.get(`${paths.accounts}/2`)).body).toMatchObject({ UserName: USER, RoleId: 'Administrator', Enabled: true });
    expect((await admin.get(`${paths.accounts}/3`)).body).toMatchObject({ UserName: '', Enabled: false, RoleId: 'None' });
    const reserved = await admin.patch(`${paths.accounts}/1`, { UserName: 'root', Password: 'x' });
    expect(reserved.status).toBe(400);
    expect(messageIds(reserved.body)).toContain('Base.1.19.PropertyNotWritable');
  });

  it('idrac: creates by PATCHing an empty slot and deletes by PATCHing it back to empty; POST and DELETE are 405', async () => {
    const admin = await t.admin('dell');
    const post = await admin.post(paths.accounts, { UserName: 'ops', Password: 'p', RoleId: 'Operator' });
    expect(post.status).toBe(405);
    const noPassword = await admin.patch(`${paths.accounts}/3`, { UserName: 'ops', RoleId: 'Operator', Enabled: true });
    expect(noPassword.status).toBe(400);
    expect(messageIds(noPassword.body)).toEqual(['Base.1.19.PropertyMissing']);
    const created = await admin.patch(`${paths.accounts}/3`, { UserName: 'ops', Password: 'ops-pass', RoleId: 'Operator', Enabled: true });
    expect(created.status).toBe(200);
    expect(messageIds(created.body)).toEqual(['Base.1.19.Success']);
    expect((await t.client('dell').login('ops', 'ops-pass')).status).toBe(201);
    expect((await admin.delete(`${paths.accounts}/3`)).status).toBe(405);
    const emptied = await admin.patch(`${paths.accounts}/3`, { UserName: '', Enabled: false, RoleId: 'None' });
    expect(emptied.status).toBe(200);
    expect(t.sim.bmc('dell').state.accounts[2]).toEqual({ id: '3', userName: '', password: '', roleId: 'None', enabled: false, locked: false });
    expect((await t.client('dell').login('ops', 'ops-pass')).status).toBe(401);
    const clash = await admin.patch(`${paths.accounts}/4`, { UserName: USER, Password: 'x' });
    expect(clash.status).toBe(409);
  });

  it('ilo: POST and DELETE like generic (PATCH needs If-Match)', async () => {
    const admin = await t.admin('hpe');
    const created = await admin.post(paths.accounts, { UserName: 'ops', Password: 'ops-pass', RoleId: 'Operator' });
    expect(created.status).toBe(201);
    const location = header(created, 'location') ?? '';
    expect((await admin.patch(location, { RoleId: 'ReadOnly' })).status).toBe(428);
    expect((await admin.patchWithEtag(location, { RoleId: 'ReadOnly' })).status).toBe(200);
    expect((await admin.delete(location)).status).toBe(204);
  });
});
