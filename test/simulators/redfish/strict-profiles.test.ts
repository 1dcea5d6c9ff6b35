/**
 * The simulator is as strict as the DMTF schemas and the BMCs it imitates: each
 * profile's AllowableValues (ResetType, BootSourceOverrideTarget) are enforced,
 * a reset the power state makes pointless is answered the way that vendor does,
 * string limits say StringValueTooLong, and iLO wraps its errors in its own code.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Profile, SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { profileSpec } from '../../../fixtures/simulators/redfish/index.js';
import { messageIds, startTestSim, waitFor, type BmcClient, type JsonObject, type TestSim } from './redfish-client.js';

const PROFILE_OF: Record<string, Profile> = { gen: 'generic', dell: 'idrac', hpe: 'ilo', old: 'legacy' };
const NAMES = Object.keys(PROFILE_OF);

function extendedInfo(body: JsonObject | undefined): JsonObject[] {
  return ((body?.error as JsonObject | undefined)?.['@Message.ExtendedInfo'] as JsonObject[] | undefined) ?? [];
}

describe('redfish simulator: strict like the schemas and the BMCs', () => {
  let t: TestSim;
  const clients: Record<string, BmcClient> = {};
  const bmc = (name: string): SimBmc => t.sim.bmc(name);
  const paths = (name: string) => profileSpec(PROFILE_OF[name]!).paths;
  const reset = (name: string, type: string) => clients[name]!.post(paths(name).resetAction, { ResetType: type });
  /** ilo answers a PATCH without If-Match with 428; the others take either. */
  const patchSystem = (name: string, body: JsonObject) => clients[name]!.patchWithEtag(paths(name).system, body);

  beforeAll(async () => {
    t = await startTestSim({ bmcs: NAMES, profile: (name) => PROFILE_OF[name] ?? 'generic', resetDelayMs: 30, gracefulDelayMs: 30 });
    for (const name of NAMES) clients[name] = await t.admin(name);
  });
  beforeEach(async () => {
    for (const name of NAMES) {
      await waitFor(() => bmc(name).state.powerState === 'On' || bmc(name).state.powerState === 'Off');
      bmc(name).state.powerState = 'On';
      bmc(name).resetCounters();
    }
  });
  afterAll(() => t.dispose());

  it('each profile shows its own ResetType AllowableValues and refuses the rest, DMTF values included, with ActionParameterValueNotInList', async () => {
    const shown: Record<string, unknown> = {};
    for (const name of NAMES) {
      const system = (await clients[name]!.get(paths(name).system)).body!;
      const action = (system.Actions as Record<string, JsonObject>)['#ComputerSystem.Reset']!;
      shown[name] = action['ResetType@Redfish.AllowableValues'] ?? ((await clients[name]!.get(action['@Redfish.ActionInfo'] as string)).body!.Parameters as JsonObject[])[0]!.AllowableValues;
    }
    expect(shown).toEqual({
      gen: ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle'],
      dell: ['On', 'ForceOff', 'ForceRestart', 'GracefulRestart', 'GracefulShutdown', 'PushPowerButton', 'Nmi', 'PowerCycle'],
      hpe: ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'Nmi', 'PushPowerButton', 'GracefulRestart'],
      old: ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart'],
    });
    for (const [name, type] of [['gen', 'Nmi'], ['hpe', 'PowerCycle'], ['old', 'GracefulRestart'], ['dell', 'Reboot']] as const) {
      const refused = await reset(name, type);
      expect(refused.status, `${name} ${type}`).toBe(400);
      expect(extendedInfo(refused.body)).toEqual([
        expect.objectContaining({
          MessageId: 'Base.1.19.ActionParameterValueNotInList',
          MessageArgs: [type, 'ResetType', 'ComputerSystem.Reset'],
          Message: `The value '${type}' for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values.`,
          RelatedProperties: ['#/ResetType'],
        }),
      ]);
      expect(bmc(name).counters.resets).toBe(0);
    }
  });

  it('BootSourceOverrideTarget is checked against the AllowableValues the profile shows', async () => {
    for (const name of NAMES) {
      const boot = (await clients[name]!.get(paths(name).system)).body!.Boot as JsonObject;
      expect(boot['BootSourceOverrideTarget@Redfish.AllowableValues'], name).toEqual(profileSpec(PROFILE_OF[name]!).bootTargets);
    }
    // Usb is a DMTF boot source: ilo offers it, generic does not; legacy has no HTTP boot.
    expect((await patchSystem('hpe', { Boot: { BootSourceOverrideTarget: 'Usb' } })).status).toBe(200);
    expect(bmc('hpe').state.boot.target).toBe('Usb');
    for (const [name, target] of [['gen', 'Usb'], ['old', 'UefiHttp'], ['dell', 'pxe']] as const) {
      const refused = await patchSystem(name, { Boot: { BootSourceOverrideTarget: target, BootSourceOverrideEnabled: 'Once' } });
      expect(refused.status, name).toBe(400);
      expect(extendedInfo(refused.body)).toEqual([
        expect.objectContaining({ MessageId: 'Base.1.19.PropertyValueNotInList', MessageArgs: [target, 'BootSourceOverrideTarget'], RelatedProperties: ['#/Boot/BootSourceOverrideTarget'] }),
      ]);
      // Nothing of the refused PATCH is applied, the valid Enabled neither.
      expect(bmc(name).state.boot).toMatchObject({ target: 'None', enabled: 'Disabled' });
    }
  });

  it('a reset the power state makes pointless: a no-op on generic and legacy, 409 on iDRAC, 400 InvalidOperationForSystemState on iLO', async () => {
    for (const name of ['gen', 'old']) {
      expect((await reset(name, 'On')).status).toBe(204);
      expect(bmc(name).counters.resetsByType).toEqual({ On: 1 });
    }
    const on = await reset('dell', 'On');
    expect(on.status).toBe(409);
    expect(on.body?.error).toMatchObject({ code: 'Base.1.19.GeneralError' });
    expect(extendedInfo(on.body)).toEqual([expect.objectContaining({ MessageId: 'IDRAC.2.8.PSU501', Message: 'Server is already powered ON.', Severity: 'Informational' })]);
    const hpeOn = await reset('hpe', 'On');
    expect(hpeOn.status).toBe(400);
    expect(hpeOn.body).toEqual({
      error: { code: 'iLO.0.10.ExtendedInfo', message: 'See @Message.ExtendedInfo for more information.', '@Message.ExtendedInfo': [{ MessageId: 'iLO.2.14.InvalidOperationForSystemState', MessageArgs: ['Power is on'] }] },
    });
    expect([bmc('dell').counters.resets, bmc('hpe').counters.resets]).toEqual([0, 0]);

    for (const name of NAMES) bmc(name).state.powerState = 'Off';
    const dellOff = await reset('dell', 'ForceOff');
    expect(dellOff.status).toBe(409);
    expect(messageIds(dellOff.body)).toEqual(['IDRAC.2.8.PSU502']);
    expect((await reset('dell', 'GracefulShutdown')).status).toBe(409);
    // iLO: nothing but On (or the button) for a server that is off.
    for (const type of ['ForceOff', 'GracefulShutdown', 'ForceRestart', 'GracefulRestart', 'Nmi']) {
      const refused = await reset('hpe', type);
      expect(refused.status, type).toBe(400);
      expect(extendedInfo(refused.body)).toEqual([{ MessageId: 'iLO.2.14.InvalidOperationForSystemState', MessageArgs: ['Power is off'] }]);
    }
    expect((await reset('gen', 'ForceOff')).status).toBe(204);
    expect(bmc('gen').state.powerState).toBe('Off');
    expect((await reset('hpe', 'On')).status).toBe(204);
    await waitFor(() => bmc('hpe').state.powerState === 'On');
  });

  it('Nmi leaves the power as it is; PushPowerButton shuts an on server down and powers an off one on', async () => {
    expect((await reset('dell', 'Nmi')).status).toBe(204);
    expect(bmc('dell').state.powerState).toBe('On');
    expect((await reset('dell', 'PushPowerButton')).status).toBe(204);
    await waitFor(() => bmc('dell').state.powerState === 'Off');
    expect((await reset('dell', 'PushPowerButton')).status).toBe(204);
    await waitFor(() => bmc('dell').state.powerState === 'On');
    expect(bmc('dell').counters.resetsByType).toEqual({ Nmi: 1, PushPowerButton: 2 });
  });

  it('AssetTag over 32 characters: StringValueTooLong with the limit', async () => {
    const long = 'x'.repeat(33);
    const refused = await patchSystem('gen', { AssetTag: long });
    expect(refused.status).toBe(400);
    expect(extendedInfo(refused.body)).toEqual([
      expect.objectContaining({ MessageId: 'Base.1.19.StringValueTooLong', MessageArgs: [long, '32'], Message: `The string '${long}' exceeds the length limit 32.`, RelatedProperties: ['#/AssetTag'] }),
    ]);
    expect((await patchSystem('gen', { AssetTag: 'x'.repeat(32) })).status).toBe(204);
  });

  it('read-only and unknown properties are refused, every one in one 400, on every profile; iLO with its own error code', async () => {
    for (const name of NAMES) {
      const refused = await patchSystem(name, { PowerState: 'Off', UUID: 'x', Colour: 'red', Boot: { BootOrder: [] } });
      expect(refused.status, name).toBe(400);
      expect(extendedInfo(refused.body).map((m) => [m.MessageId, m.RelatedProperties])).toEqual([
        ['Base.1.19.PropertyNotWritable', ['#/PowerState']],
        ['Base.1.19.PropertyNotWritable', ['#/UUID']],
        ['Base.1.19.PropertyUnknown', ['#/Colour']],
        ['Base.1.19.PropertyNotWritable', ['#/Boot/BootOrder']],
      ]);
      expect((refused.body?.error as JsonObject).code, name).toBe(name === 'hpe' ? 'iLO.0.10.ExtendedInfo' : 'Base.1.19.GeneralError');
    }
  });
});
