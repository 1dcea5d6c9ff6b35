import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { messageIds, paths, startTestSim, type BmcClient, type TestSim } from './redfish-client.js';

const ISO = 'http://repo.example/iso/rescue.iso';

describe('redfish simulator: manager, network protocols, virtual media', () => {
  let t: TestSim;
  let bmc: SimBmc;
  let client: BmcClient;

  beforeAll(async () => {
    t = await startTestSim({ bmcs: ['gen', 'hpe'], profile: (name) => (name === 'hpe' ? 'ilo' : 'generic') });
    bmc = t.sim.bmc('gen');
    client = await t.admin('gen');
  });
  afterAll(() => t.dispose());

  it('seeds NTP off with no servers, and the five protocols', async () => {
    const protocols = await client.get(paths.networkProtocol());
    expect(protocols.body).toMatchObject({
      NTP: { ProtocolEnabled: false, NTPServers: [] },
      HTTP: { ProtocolEnabled: true, Port: 80 },
      HTTPS: { ProtocolEnabled: true, Port: 443 },
      SSH: { ProtocolEnabled: true, Port: 22 },
      IPMI: { ProtocolEnabled: true, Port: 623 },
      SNMP: { ProtocolEnabled: false, Port: 161 },
    });
  });

  it('PATCHes NTP and protocols', async () => {
    const patched = await client.patch(paths.networkProtocol(), { NTP: { ProtocolEnabled: true, NTPServers: ['0.pool.ntp.org', '1.pool.ntp.org'] }, IPMI: { ProtocolEnabled: false } });
    expect(patched.status).toBe(204);
    expect(bmc.state.ntp).toEqual({ enabled: true, servers: ['0.pool.ntp.org', '1.pool.ntp.org'] });
    expect(bmc.state.protocols.IPMI).toEqual({ enabled: false, port: 623 });
  });

  it('follows Redfish array PATCH rules for NTPServers: {} keeps, null removes, the tail goes', async () => {
    bmc.state.ntp.servers = ['a', 'b', 'c'];
    await client.patch(paths.networkProtocol(), { NTP: { NTPServers: [{}, null] } });
    expect(bmc.state.ntp.servers).toEqual(['a']);
  });

  it('refuses bad protocol values', async () => {
    const bad = await client.patch(paths.networkProtocol(), { SSH: { Port: 70000 }, NTP: { ProtocolEnabled: 'yes' }, HostName: 'x' });
    expect(bad.status).toBe(400);
    expect(messageIds(bad.body).sort()).toEqual(['Base.1.19.PropertyNotWritable', 'Base.1.19.PropertyValueOutOfRange', 'Base.1.19.PropertyValueTypeError']);
  });

  it('sets the time zone through the Manager DateTimeLocalOffset, with its format checked', async () => {
    expect((await client.get(paths.manager())).body).toMatchObject({ DateTimeLocalOffset: '+00:00', FirmwareVersion: '6.10.30.00' });
    expect((await client.patch(paths.manager(), { DateTimeLocalOffset: '-05:00' })).status).toBe(204);
    expect(bmc.state.timeZone).toBe('-05:00');
    const bad = await client.patch(paths.manager(), { DateTimeLocalOffset: 'Europe/Paris' });
    expect(messageIds(bad.body)).toEqual(['Base.1.19.PropertyValueFormatError']);
  });

  it('refuses a DateTimeLocalOffset outside the DMTF pattern ^([-+][0-1][0-9]:[0-5][0-9])$ (UTC, Z, +1:00) with a 400 PropertyValueFormatError', async () => {
    await client.patch(paths.manager(), { DateTimeLocalOffset: '+00:00' });
    for (const value of ['UTC', 'Z', '+1:00', '01:00', '+01:60', '+20:00']) {
      const bad = await client.patch(paths.manager(), { DateTimeLocalOffset: value });
      expect(bad.status, value).toBe(400);
      const error = bad.body?.error as Record<string, unknown>;
      expect(error.code).toBe('Base.1.19.GeneralError');
      expect(error['@Message.ExtendedInfo']).toEqual([
        expect.objectContaining({
          MessageId: 'Base.1.19.PropertyValueFormatError',
          MessageArgs: [value, 'DateTimeLocalOffset'],
          RelatedProperties: ['#/DateTimeLocalOffset'],
          MessageSeverity: 'Warning',
          Severity: 'Warning',
          Message: `The value '${value}' for the property DateTimeLocalOffset is not a format that the property can accept.`,
        }),
      ]);
    }
    expect(bmc.state.timeZone).toBe('+00:00');
    // The pattern allows any hour 00-19 with either sign.
    expect((await client.patch(paths.manager(), { DateTimeLocalOffset: '-00:00' })).status).toBe(204);
    expect((await client.patch(paths.manager(), { DateTimeLocalOffset: '+14:00' })).status).toBe(204);
  });

  it('inserts and ejects virtual media through the actions', async () => {
    const media = paths.virtualMedia();
    expect((await client.get(media)).body).toMatchObject({ Image: null, Inserted: false, MediaTypes: ['CD', 'DVD'] });
    const insert = await client.post(`${media}/Actions/VirtualMedia.InsertMedia`, { Image: ISO, Inserted: true, WriteProtected: true });
    expect(insert.status).toBe(204);
    expect((await client.get(media)).body).toMatchObject({ Image: ISO, Inserted: true, WriteProtected: true, ConnectedVia: 'URI' });
    const again = await client.post(`${media}/Actions/VirtualMedia.InsertMedia`, { Image: ISO });
    expect(again.status).toBe(409);
    expect(messageIds(again.body)).toEqual(['Base.1.19.ResourceInUse']);
    expect((await client.post(`${media}/Actions/VirtualMedia.EjectMedia`, {})).status).toBe(204);
    expect(bmc.state.virtualMedia).toEqual({ image: null, inserted: false, writeProtected: true });
    expect((await client.post(`${media}/Actions/VirtualMedia.InsertMedia`, {})).status).toBe(400);
    expect((await client.patch(media, { Image: ISO })).status).toBe(405);
  });

  it('ilo: the virtual media slot is 2', async () => {
    const hpe = await t.admin('hpe');
    const media = paths.virtualMedia('1', '2');
    expect((await hpe.get(media)).body).toMatchObject({ Id: '2' });
    expect((await hpe.post(`${media}/Actions/VirtualMedia.InsertMedia`, { Image: ISO })).status).toBe(204);
    expect(t.sim.bmc('hpe').state.virtualMedia.image).toBe(ISO);
  });
});
