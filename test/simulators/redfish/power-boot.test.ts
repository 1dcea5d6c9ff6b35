import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PowerState, SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { messageIds, paths, startTestSim, waitFor, type BmcClient, type TestSim } from './redfish-client.js';

const RESET_MS = 100;
const GRACEFUL_MS = 150;

/** Sample PowerState every few ms until it settles on `until`; returns the distinct states seen, in order. */
async function watchPower(bmc: SimBmc, until: PowerState, timeoutMs = 2000): Promise<{ seen: PowerState[]; ms: number }> {
  const started = Date.now();
  const seen: PowerState[] = [bmc.state.powerState];
  await waitFor(
    () => {
      const now = bmc.state.powerState;
      if (seen[seen.length - 1] !== now) seen.push(now);
      return now === until && seen.length > 1;
    },
    timeoutMs,
    2,
  );
  return { seen, ms: Date.now() - started };
}

describe('redfish simulator: power and boot', () => {
  let t: TestSim;
  let bmc: SimBmc;
  let client: BmcClient;

  beforeAll(async () => {
    t = await startTestSim({ resetDelayMs: RESET_MS, gracefulDelayMs: GRACEFUL_MS });
    bmc = t.sim.bmcs[0] as SimBmc;
    client = await t.admin();
  });
  beforeEach(async () => {
    await waitFor(() => bmc.state.powerState === 'On' || bmc.state.powerState === 'Off');
    bmc.state.powerState = 'On';
    bmc.state.boot = { target: 'None', enabled: 'Disabled', mode: 'UEFI' };
    bmc.faults.ignoreGracefulShutdown = false;
    bmc.resetCounters();
  });
  afterAll(() => t.dispose());

  const reset = (type: string) => client.post(paths.reset(), { ResetType: type });

  it('ForceRestart passes through PoweringOff and PoweringOn and takes resetDelayMs', async () => {
    expect((await reset('ForceRestart')).status).toBe(204);
    expect((await client.get(paths.system())).body?.PowerState).toBe('PoweringOff');
    const { seen, ms } = await watchPower(bmc, 'On');
    expect(seen).toEqual(['PoweringOff', 'PoweringOn', 'On']);
    expect(ms).toBeGreaterThanOrEqual(RESET_MS * 0.8);
    expect(bmc.counters.resets).toBe(1);
  });

  it('holdPower keeps a transition in its phase until cleared, then it goes on from there', async () => {
    bmc.faults.holdPower = true;
    try {
      expect((await reset('ForceRestart')).status).toBe(204);
      expect(bmc.state.powerState).toBe('PoweringOff');
      // Longer than the whole restart: it is still in its first phase (not a race: shorter would see the same).
      await new Promise((resolve) => setTimeout(resolve, RESET_MS * 2));
      expect(bmc.state.powerState).toBe('PoweringOff');
      // Held counts as in progress: another reset is refused.
      expect((await reset('On')).status).toBe(409);
    } finally {
      bmc.faults.holdPower = false;
    }
    // Released: the held phase ends at once and the next one runs on its timer.
    expect((await watchPower(bmc, 'On')).seen).toEqual(['PoweringOn', 'On']);
    expect(bmc.counters.resetsByType).toEqual({ ForceRestart: 1 });
  });

  it('ForceOff then On go through PoweringOff and PoweringOn', async () => {
    await reset('ForceOff');
    expect((await watchPower(bmc, 'Off')).seen).toEqual(['PoweringOff', 'Off']);
    await reset('On');
    expect((await watchPower(bmc, 'On')).seen).toEqual(['PoweringOn', 'On']);
    expect(bmc.counters.resets).toBe(2);
  });

  it('honours GracefulShutdown after gracefulDelayMs', async () => {
    const started = Date.now();
    await reset('GracefulShutdown');
    expect((await watchPower(bmc, 'Off')).seen).toEqual(['PoweringOff', 'Off']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(GRACEFUL_MS * 0.8);
  });

  it('with ignoreGracefulShutdown accepts GracefulShutdown but stays On; only ForceOff works', async () => {
    bmc.faults.ignoreGracefulShutdown = true;
    expect((await reset('GracefulShutdown')).status).toBe(204);
    await new Promise((resolve) => setTimeout(resolve, GRACEFUL_MS * 2));
    expect(bmc.state.powerState).toBe('On');
    expect((await reset('GracefulRestart')).status).toBe(204);
    expect(bmc.state.powerState).toBe('On');
    await reset('ForceOff');
    await waitFor(() => bmc.state.powerState === 'Off');
  });

  it('refuses a reset while one is in progress with 409 ResourceInUse, but ForceOff may cut a graceful shutdown short', async () => {
    await reset('ForceRestart');
    const busy = await reset('ForceRestart');
    expect(busy.status).toBe(409);
    expect(messageIds(busy.body)).toEqual(['Base.1.19.ResourceInUse']);
    await waitFor(() => bmc.state.powerState === 'On');
    expect(bmc.counters.resets).toBe(1);
    await reset('GracefulShutdown');
    expect((await reset('ForceOff')).status).toBe(204);
    await waitFor(() => bmc.state.powerState === 'Off');
  });

  it('refuses unknown or missing ResetType and unknown parameters with 400', async () => {
    const bad = await reset('Explode');
    expect(bad.status).toBe(400);
    expect(messageIds(bad.body)).toEqual(['Base.1.19.ActionParameterValueNotInList']);
    const missing = await client.post(paths.reset(), {});
    expect(messageIds(missing.body)).toEqual(['Base.1.19.ActionParameterMissing']);
    const extra = await client.post(paths.reset(), { ResetType: 'On', Force: true });
    expect(messageIds(extra.body)).toEqual(['Base.1.19.ActionParameterUnknown']);
    expect(bmc.counters.resets).toBe(0);
  });

  it('consumes a one-shot boot override at the next boot', async () => {
    const patched = await client.patch(paths.system(), { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });
    expect(patched.status).toBe(204);
    expect((await client.get(paths.system())).body?.Boot).toMatchObject({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' });
    await reset('PowerCycle');
    await watchPower(bmc, 'On');
    expect(bmc.state.lastBootTarget).toBe('Pxe');
    expect((await client.get(paths.system())).body?.Boot).toMatchObject({ BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' });
  });

  it('keeps a Continuous override across boots', async () => {
    await client.patch(paths.system(), { Boot: { BootSourceOverrideTarget: 'Hdd', BootSourceOverrideEnabled: 'Continuous' } });
    await reset('ForceRestart');
    await watchPower(bmc, 'On');
    expect(bmc.state.boot).toMatchObject({ target: 'Hdd', enabled: 'Continuous' });
    expect(bmc.state.lastBootTarget).toBe('Hdd');
  });

  it('PATCHes AssetTag and IndicatorLED, and refuses bad values and read-only properties', async () => {
    expect((await client.patch(paths.system(), { AssetTag: 'rack-7', IndicatorLED: 'Blinking' })).status).toBe(204);
    expect((await client.get(paths.system())).body).toMatchObject({ AssetTag: 'rack-7', IndicatorLED: 'Blinking' });
    const bad = await client.patch(paths.system(), { IndicatorLED: 'Disco', Boot: { BootSourceOverrideTarget: 'Floppy' }, PowerState: 'Off', Colour: 'red' });
    expect(bad.status).toBe(400);
    expect(messageIds(bad.body).sort()).toEqual(['Base.1.19.PropertyNotWritable', 'Base.1.19.PropertyUnknown', 'Base.1.19.PropertyValueNotInList', 'Base.1.19.PropertyValueNotInList']);
    expect(bmc.state.indicatorLed).toBe('Blinking');
    expect(bmc.state.powerState).toBe('On');
  });
});
