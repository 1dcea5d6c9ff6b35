import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { header, messageIds, paths, startTestSim, waitFor, type BmcClient, type TestSim } from './redfish-client.js';

const TASK_MS = 200;

describe('redfish simulator: SimpleUpdate, tasks and task monitors', () => {
  let t: TestSim;
  let bmc: SimBmc;
  let client: BmcClient;

  beforeAll(async () => {
    t = await startTestSim({ taskDurationMs: TASK_MS });
    bmc = t.sim.bmcs[0] as SimBmc;
    client = await t.admin();
  });
  beforeEach(() => bmc.resetCounters());
  afterAll(() => t.dispose());

  it('lists BMC, BIOS and NIC1 in the firmware inventory', async () => {
    const inventory = await client.get('/redfish/v1/UpdateService/FirmwareInventory');
    expect(inventory.body?.Members).toEqual(['BMC', 'BIOS', 'NIC1'].map((id) => ({ '@odata.id': paths.firmware(id) })));
    expect((await client.get(paths.firmware('BIOS'))).body).toMatchObject({ Id: 'BIOS', Version: '2.18.1', Updateable: true });
  });

  it('answers SimpleUpdate with 202 and a monitor that says 202 while running and 200 when done', async () => {
    const started = await client.post(paths.simpleUpdate, { ImageURI: 'http://repo.example/fw/BIOS-2.19.1.bin', TransferProtocol: 'HTTP' });
    expect(started.status).toBe(202);
    const monitor = header(started, 'location') ?? '';
    expect(monitor).toMatch(/^\/redfish\/v1\/TaskService\/TaskMonitors\/\d+$/);
    expect(started.body).toMatchObject({ TaskState: 'New', PercentComplete: 0 });
    const running = await client.get(monitor);
    expect(running.status).toBe(202);
    expect(header(running, 'retry-after')).toBe('1');
    expect(running.body?.TaskState).toBe('Running');
    expect(bmc.counters).toMatchObject({ updates: 1, writes: 1 });
    await waitFor(async () => (await client.get(monitor)).status === 200, 3000, 20);
    const done = await client.get(monitor);
    expect(done.body).toMatchObject({ TaskState: 'Completed', PercentComplete: 100, TaskStatus: 'OK' });
    const task = await client.get(`/redfish/v1/TaskService/Tasks/${String(done.body?.Id)}`);
    expect(task.body).toMatchObject({ TaskState: 'Completed', TaskMonitor: monitor });
    expect((await client.get(paths.firmware('BIOS'))).body?.Version).toBe('2.19.1');
    expect(((await client.get(paths.bios())).body?.Attributes as Record<string, unknown>).BiosVersion).toBe('2.19.1');
  });

  it('updates the BMC firmware shown by the Manager', async () => {
    const started = await client.post(paths.simpleUpdate, { ImageURI: 'https://repo.example/fw/BMC-7.00.00.00.d9' });
    await waitFor(async () => (await client.get(header(started, 'location') ?? '')).status === 200, 3000, 20);
    expect((await client.get(paths.manager())).body?.FirmwareVersion).toBe('7.00.00.00');
  });

  it('ends in Exception with a message when the image names no component or not the targeted one', async () => {
    const unknown = await client.post(paths.simpleUpdate, { ImageURI: 'http://repo.example/fw/GPU-1.0.bin' });
    const mismatch = await client.post(paths.simpleUpdate, { ImageURI: 'http://repo.example/fw/NIC1-23.0.1.bin', Targets: [paths.firmware('BIOS')] });
    for (const started of [unknown, mismatch]) {
      const monitor = header(started, 'location') ?? '';
      await waitFor(async () => (await client.get(monitor)).status === 200, 3000, 20);
      const done = await client.get(monitor);
      expect(done.body).toMatchObject({ TaskState: 'Exception', TaskStatus: 'Critical' });
      expect((done.body?.Messages as Array<{ MessageId: string }>).map((m) => m.MessageId)).toContain('Update.1.0.NoTargetsDetermined');
    }
    expect(bmc.state.firmware.find((c) => c.id === 'NIC1')?.version).toBe('22.31.6');
  });

  it('refuses a SimpleUpdate without ImageURI or with an unknown protocol', async () => {
    expect(messageIds((await client.post(paths.simpleUpdate, {})).body)).toEqual(['Base.1.19.ActionParameterMissing']);
    expect(messageIds((await client.post(paths.simpleUpdate, { ImageURI: 'x', TransferProtocol: 'Pigeon' })).body)).toEqual(['Base.1.19.ActionParameterValueNotInList']);
    expect(bmc.counters.updates).toBe(0);
  });
});
