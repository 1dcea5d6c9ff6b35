import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from '../../../fixtures/simulators/redfish/index.js';
import { header, messageIds, paths, startTestSim, waitFor, type BmcClient, type TestSim } from './redfish-client.js';

const PROFILE_OF: Record<string, Profile> = { gen: 'generic', dell: 'idrac', hpe: 'ilo', old: 'legacy' };
const DELL_SYSTEM = 'System.Embedded.1';
const DELL_MANAGER = 'iDRAC.Embedded.1';

describe('redfish simulator: ETags, If-Match and the vendor profiles', () => {
  let t: TestSim;
  let gen: BmcClient;
  let dell: BmcClient;
  let hpe: BmcClient;
  let old: BmcClient;

  beforeAll(async () => {
    t = await startTestSim({ bmcs: Object.keys(PROFILE_OF), profile: (name) => PROFILE_OF[name] ?? 'generic' });
    [gen, dell, hpe, old] = await Promise.all([t.admin('gen'), t.admin('dell'), t.admin('hpe'), t.admin('old')]);
  });
  afterAll(() => t.dispose());

  it('gives every resource an ETag header equal to its @odata.etag', async () => {
    for (const path of ['/redfish/v1/', paths.system(), paths.bios(), paths.biosSettings(), paths.manager(), paths.networkProtocol(), paths.accounts, `${paths.accounts}/1`, paths.firmware('BIOS')]) {
      const answer = await gen.get(path);
      expect(answer.status, path).toBe(200);
      expect(header(answer, 'etag'), path).toMatch(/^W\/"[0-9a-f]+"$/);
      expect(answer.body?.['@odata.etag'], path).toBe(header(answer, 'etag'));
    }
  });

  it('keeps the ETag while nothing changes, and changes it with every write, even one of the same value', async () => {
    const first = header(await gen.get(paths.system()), 'etag');
    expect(header(await gen.get(paths.system()), 'etag')).toBe(first);
    const patched = await gen.patch(paths.system(), { AssetTag: 'rack-1' }, { 'If-Match': first ?? '' });
    expect(patched.status).toBe(204);
    const second = header(await gen.get(paths.system()), 'etag');
    expect(second).not.toBe(first);
    expect(header(patched, 'etag')).toBe(second);
    await gen.patch(paths.system(), { AssetTag: 'rack-1' });
    expect(header(await gen.get(paths.system()), 'etag')).not.toBe(second);
  });

  it('answers a stale If-Match with 412 PreconditionFailed and changes nothing', async () => {
    const stale = header(await gen.get(paths.system()), 'etag') ?? '';
    await gen.patch(paths.system(), { IndicatorLED: 'Blinking' });
    const refused = await gen.patch(paths.system(), { IndicatorLED: 'Lit' }, { 'If-Match': stale });
    expect(refused.status).toBe(412);
    expect(messageIds(refused.body)).toEqual(['Base.1.19.PreconditionFailed']);
    expect(t.sim.bmc('gen').state.indicatorLed).toBe('Blinking');
  });

  it('accepts If-Match: * and the strong form of a weak ETag', async () => {
    expect((await gen.patch(paths.system(), { IndicatorLED: 'Off' }, { 'If-Match': '*' })).status).toBe(204);
    const weak = header(await gen.get(paths.system()), 'etag') ?? '';
    expect((await gen.patch(paths.system(), { IndicatorLED: 'Lit' }, { 'If-Match': weak.slice(2) })).status).toBe(204);
  });

  it('changes the System ETag when a reset changes PowerState, and when a test sets state directly', async () => {
    const bmc = t.sim.bmc('gen');
    const before = header(await gen.get(paths.system()), 'etag');
    expect((await gen.post(paths.reset(), { ResetType: 'ForceOff' })).status).toBe(204);
    await waitFor(() => bmc.state.powerState === 'Off');
    const off = header(await gen.get(paths.system()), 'etag');
    expect(off).not.toBe(before);
    bmc.state.powerState = 'On';
    expect(header(await gen.get(paths.system()), 'etag')).not.toBe(off);
  });

  it('generic: PATCH 204 without a body; actions ignore If-Match', async () => {
    const patched = await gen.patch(paths.manager(), { DateTimeLocalOffset: '+01:00' });
    expect(patched.status).toBe(204);
    expect(patched.text).toBe('');
    const action = await gen.post(paths.reset(), { ResetType: 'On' }, { 'If-Match': 'W/"not-it"' });
    expect(action.status).toBe(204);
  });

  it('idrac: vendor ids, PATCH 200 with a Base Success message, and 412 for any action carrying If-Match', async () => {
    const system = await dell.get(paths.system(DELL_SYSTEM));
    expect(system.body).toMatchObject({ Id: DELL_SYSTEM, Links: { ManagedBy: [{ '@odata.id': paths.manager(DELL_MANAGER) }] } });
    const patched = await dell.patch(paths.system(DELL_SYSTEM), { AssetTag: 'dell-1' });
    expect(patched.status).toBe(200);
    expect(messageIds(patched.body)).toEqual(['Base.1.19.Success']);
    expect(header(patched, 'etag')).toBe(header(await dell.get(paths.system(DELL_SYSTEM)), 'etag'));
    const etag = header(system, 'etag') ?? '';
    for (const ifMatch of [etag, '*']) {
      const action = await dell.post(paths.reset(DELL_SYSTEM), { ResetType: 'On' }, { 'If-Match': ifMatch });
      expect(action.status).toBe(412);
      expect(messageIds(action.body)).toEqual(['Base.1.19.PreconditionFailed']);
    }
    // Without If-Match the action goes through (Nmi: the power state stays as it is).
    expect((await dell.post(paths.reset(DELL_SYSTEM), { ResetType: 'Nmi' })).status).toBe(204);
  });

  it('idrac: reset AllowableValues live behind @Redfish.ActionInfo', async () => {
    const system = await dell.get(paths.system(DELL_SYSTEM));
    const reset = (system.body?.Actions as Record<string, Record<string, unknown>>)['#ComputerSystem.Reset'];
    expect(reset).not.toHaveProperty('ResetType@Redfish.AllowableValues');
    expect(reset?.['@Redfish.ActionInfo']).toBe(`${paths.system(DELL_SYSTEM)}/ResetActionInfo`);
    const info = await dell.get(`${paths.system(DELL_SYSTEM)}/ResetActionInfo`);
    expect(info.body).toMatchObject({ Parameters: [{ Name: 'ResetType', AllowableValues: ['On', 'ForceOff', 'ForceRestart', 'GracefulRestart', 'GracefulShutdown', 'PushPowerButton', 'Nmi', 'PowerCycle'] }] });
    const generic = await gen.get(paths.system());
    expect((generic.body?.Actions as Record<string, Record<string, unknown>>)['#ComputerSystem.Reset']).toHaveProperty('ResetType@Redfish.AllowableValues');
  });

  it('ilo: PATCH without If-Match is 428; with it, 200 with an error-shaped iLO Success body', async () => {
    const refused = await hpe.patch(paths.system(), { AssetTag: 'hpe-1' });
    expect(refused.status).toBe(428);
    expect(messageIds(refused.body)).toEqual(['Base.1.19.PreconditionRequired']);
    expect(t.sim.bmc('hpe').state.assetTag).toBe('');
    const patched = await hpe.patchWithEtag(paths.system(), { AssetTag: 'hpe-1' });
    expect(patched.status).toBe(200);
    expect(patched.body).toEqual({
      error: { code: 'iLO.0.10.ExtendedInfo', message: 'See @Message.ExtendedInfo for more information.', '@Message.ExtendedInfo': [{ MessageId: 'iLO.2.14.Success' }] },
    });
    expect(t.sim.bmc('hpe').state.assetTag).toBe('hpe-1');
    expect((await hpe.post(paths.reset(), { ResetType: 'Nmi' }, { 'If-Match': 'W/"whatever"' })).status).toBe(204);
  });

  it('legacy: no ETag anywhere, If-Match ignored, PATCH answers 200 with the whole resource', async () => {
    const system = await old.get(paths.system());
    expect(header(system, 'etag')).toBeUndefined();
    expect(system.body).not.toHaveProperty('@odata.etag');
    const patched = await old.patch(paths.system(), { AssetTag: 'old-1' }, { 'If-Match': 'W/"bogus"' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ '@odata.id': paths.system(), AssetTag: 'old-1', PowerState: 'On' });
    expect(patched.body).not.toHaveProperty('@odata.etag');
  });

  it('legacy: a precondition storm never fires, since nothing is compared', async () => {
    const bmc = t.sim.bmc('old');
    bmc.faults.preconditionStorm = 1;
    try {
      expect((await old.patch(paths.system(), { AssetTag: 'old-2' })).status).toBe(200);
      expect(bmc.faults.preconditionStorm).toBe(1);
    } finally {
      bmc.faults.preconditionStorm = 0;
    }
  });

  it('gives each profile its own SettingsObject and virtual media slot', async () => {
    const links = async (client: BmcClient, system: string, manager: string): Promise<[unknown, unknown]> => {
      const bios = await client.get(paths.bios(system));
      const media = await client.get(`${paths.manager(manager)}/VirtualMedia`);
      return [(bios.body?.['@Redfish.Settings'] as Record<string, Record<string, unknown>>).SettingsObject?.['@odata.id'], media.body?.Members];
    };
    expect(await links(gen, '1', '1')).toEqual([paths.biosSettings(), [{ '@odata.id': paths.virtualMedia() }]]);
    expect(await links(dell, DELL_SYSTEM, DELL_MANAGER)).toEqual([paths.biosSettings(DELL_SYSTEM), [{ '@odata.id': paths.virtualMedia(DELL_MANAGER, 'CD') }]]);
    expect(await links(hpe, '1', '1')).toEqual(['/redfish/v1/Systems/1/bios/settings', [{ '@odata.id': paths.virtualMedia('1', '2') }]]);
  });
});
