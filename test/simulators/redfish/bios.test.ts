import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { header, messageIds, paths, startTestSim, waitFor, type BmcClient, type TestSim } from './redfish-client.js';

const DELL_SYSTEM = 'System.Embedded.1';
const ILO_SETTINGS = '/redfish/v1/Systems/1/bios/settings';

describe('redfish simulator: BIOS settings', () => {
  let t: TestSim;
  let bmc: SimBmc;
  let client: BmcClient;

  beforeAll(async () => {
    t = await startTestSim({ bmcs: ['gen', 'dell', 'hpe'], profile: (name) => (name === 'dell' ? 'idrac' : name === 'hpe' ? 'ilo' : 'generic') });
    bmc = t.sim.bmc('gen');
    client = await t.admin('gen');
  });
  beforeEach(() => {
    bmc.state.biosPending = {};
    bmc.state.powerState = 'On';
  });
  afterAll(() => t.dispose());

  it('seeds a realistic attribute set with typed and read-only attributes', async () => {
    const bios = await client.get(paths.bios());
    const attributes = bios.body?.Attributes as Record<string, unknown>;
    expect(Object.keys(attributes).length).toBeGreaterThanOrEqual(20);
    expect(attributes).toMatchObject({ BootMode: 'Uefi', ProcTurboMode: 'Enabled', NumaNodesPerSocket: 1, ErrPrompt: true, BiosVersion: '2.18.1' });
    expect(bios.body?.['@Redfish.Settings']).toMatchObject({ SettingsObject: { '@odata.id': paths.biosSettings() }, SupportedApplyTimes: ['OnReset'] });
    expect((await client.get(paths.biosSettings())).body?.Attributes).toEqual({});
  });

  it('refuses a PATCH of the Bios resource itself with 405', async () => {
    const refused = await client.patch(paths.bios(), { Attributes: { ProcTurboMode: 'Disabled' } });
    expect(refused.status).toBe(405);
    expect(header(refused, 'allow')).toBe('GET, HEAD');
    expect(messageIds(refused.body)).toEqual(['Base.1.19.OperationNotAllowed']);
  });

  it('merges PATCHes of the SettingsObject into the pending attributes, leaving the current ones alone', async () => {
    expect((await client.patch(paths.biosSettings(), { Attributes: { ProcTurboMode: 'Disabled' } })).status).toBe(204);
    expect((await client.patch(paths.biosSettings(), { Attributes: { NumaNodesPerSocket: 2, ErrPrompt: false } })).status).toBe(204);
    expect((await client.get(paths.biosSettings())).body?.Attributes).toEqual({ ProcTurboMode: 'Disabled', NumaNodesPerSocket: 2, ErrPrompt: false });
    expect(bmc.state.biosCurrent.ProcTurboMode).toBe('Enabled');
  });

  it('validates names, types, values and read-only attributes, reporting every problem and applying none', async () => {
    const refused = await client.patch(paths.biosSettings(), {
      Attributes: { NoSuchKnob: 'x', NumaNodesPerSocket: '2', ProcTurboMode: 'Sometimes', BiosVersion: '9.9.9', MemTest: 'Enabled' },
    });
    expect(refused.status).toBe(400);
    expect(messageIds(refused.body)).toEqual([
      'Base.1.19.PropertyUnknown',
      'Base.1.19.PropertyValueTypeError',
      'Base.1.19.PropertyValueNotInList',
      'Base.1.19.PropertyNotWritable',
    ]);
    const infos = (refused.body?.error as Record<string, Array<{ RelatedProperties: string[] }>>)['@Message.ExtendedInfo'];
    expect(infos?.[3]?.RelatedProperties).toEqual(['#/Attributes/BiosVersion']);
    expect(bmc.state.biosPending).toEqual({});
  });

  it('applies pending attributes at a restart and clears them', async () => {
    await client.patch(paths.biosSettings(), { Attributes: { ProcTurboMode: 'Disabled', WorkloadProfile: 'HpcProfile' } });
    expect((await client.post(paths.reset(), { ResetType: 'ForceRestart' })).status).toBe(204);
    await waitFor(() => bmc.state.powerState === 'On');
    const current = (await client.get(paths.bios())).body?.Attributes as Record<string, unknown>;
    expect(current).toMatchObject({ ProcTurboMode: 'Disabled', WorkloadProfile: 'HpcProfile' });
    expect((await client.get(paths.biosSettings())).body?.Attributes).toEqual({});
  });

  it('keeps pending attributes through a power-off and applies them at the next power-on', async () => {
    await client.patch(paths.biosSettings(), { Attributes: { MemTest: 'Enabled' } });
    await client.post(paths.reset(), { ResetType: 'ForceOff' });
    await waitFor(() => bmc.state.powerState === 'Off');
    expect(bmc.state.biosPending).toEqual({ MemTest: 'Enabled' });
    expect(bmc.state.biosCurrent.MemTest).toBe('Disabled');
    await client.post(paths.reset(), { ResetType: 'On' });
    await waitFor(() => bmc.state.powerState === 'On');
    expect(bmc.state.biosCurrent.MemTest).toBe('Enabled');
    expect(bmc.state.biosPending).toEqual({});
  });

  it('idrac: requires @Redfish.SettingsApplyTime OnReset on a settings PATCH', async () => {
    const dell = await t.admin('dell');
    const settings = paths.biosSettings(DELL_SYSTEM);
    const missing = await dell.patch(settings, { Attributes: { SriovGlobalEnable: 'Enabled' } });
    expect(missing.status).toBe(400);
    expect(messageIds(missing.body)).toEqual(['Base.1.19.PropertyMissing']);
    const wrong = await dell.patch(settings, { Attributes: { SriovGlobalEnable: 'Enabled' }, '@Redfish.SettingsApplyTime': { ApplyTime: 'Immediate' } });
    expect(wrong.status).toBe(400);
    const ok = await dell.patch(settings, { Attributes: { SriovGlobalEnable: 'Enabled' }, '@Redfish.SettingsApplyTime': { ApplyTime: 'OnReset' } });
    expect(ok.status).toBe(200);
    expect(t.sim.bmc('dell').state.biosPending).toEqual({ SriovGlobalEnable: 'Enabled' });
  });

  it('ilo: the lowercase SettingsObject answers a PATCH with SystemResetRequired in an error-shaped 200', async () => {
    const hpe = await t.admin('hpe');
    const bios = await hpe.get(paths.bios());
    expect((bios.body?.['@Redfish.Settings'] as Record<string, unknown>).SettingsObject).toEqual({ '@odata.id': ILO_SETTINGS });
    expect((await hpe.patch(ILO_SETTINGS, { Attributes: { LogicalProc: 'Disabled' } })).status).toBe(428);
    const patched = await hpe.patchWithEtag(ILO_SETTINGS, { Attributes: { LogicalProc: 'Disabled' } });
    expect(patched.status).toBe(200);
    expect(messageIds(patched.body)).toEqual(['iLO.2.14.SystemResetRequired']);
    expect((patched.body?.error as Record<string, unknown>).code).toBe('iLO.0.10.ExtendedInfo');
    expect(t.sim.bmc('hpe').state.biosPending).toEqual({ LogicalProc: 'Disabled' });
  });
});
