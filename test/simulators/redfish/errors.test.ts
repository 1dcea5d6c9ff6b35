import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { header, messageIds, paths, startTestSim, type BmcClient, type JsonObject, type TestSim } from './redfish-client.js';

/** Write raw bytes over TLS and collect whatever comes back until the server closes or 1 s passes. */
function rawExchange(bmc: SimBmc, ca: string, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: bmc.port, ca }, () => socket.end(payload));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.on('error', () => resolve(received));
    socket.on('close', () => resolve(received));
    setTimeout(() => {
      socket.destroy();
      resolve(received);
    }, 1000);
  });
}

/** The messages of an error body. */
function extendedInfo(body: JsonObject | undefined): JsonObject[] {
  return ((body?.error as JsonObject | undefined)?.['@Message.ExtendedInfo'] as JsonObject[] | undefined) ?? [];
}

describe('redfish simulator: error shapes and bad input', () => {
  let t: TestSim;
  let client: BmcClient;

  beforeAll(async () => {
    t = await startTestSim();
    client = await t.admin();
  });
  afterAll(() => t.dispose());

  it('uses the Redfish error body: code, message and ExtendedInfo with MessageId, Message, MessageSeverity, Resolution, RelatedProperties (Base.1.19.0 texts)', async () => {
    const bad = await client.patch(paths.system(), { AssetTag: 42 });
    expect(bad.status).toBe(400);
    expect(header(bad, 'content-type')).toMatch(/^application\/json/);
    const error = bad.body?.error as JsonObject;
    expect(error.code).toBe('Base.1.19.GeneralError');
    expect(error.message).toBe('A general error has occurred.  See Resolution for information on how to resolve the error, or @Message.ExtendedInfo if Resolution is not provided.');
    expect(error['@Message.ExtendedInfo']).toEqual([
      expect.objectContaining({
        MessageId: 'Base.1.19.PropertyValueTypeError',
        '@odata.type': '#Message.v1_1_1.Message',
        Message: "The value '42' for the property AssetTag is not a type that the property can accept.",
        MessageArgs: ['42', 'AssetTag'],
        RelatedProperties: ['#/AssetTag'],
        MessageSeverity: 'Warning',
        Severity: 'Warning',
        Resolution: 'Correct the value for the property in the request body and resubmit the request if the operation failed.',
      }),
    ]);
  });

  it('answers malformed JSON, a non-object body and an empty object with 400', async () => {
    const malformed = await client.patch(paths.system(), '{"AssetTag": ');
    expect(malformed.status).toBe(400);
    expect(messageIds(malformed.body)).toEqual(['Base.1.19.MalformedJSON']);
    expect(messageIds((await client.patch(paths.system(), '[1,2]')).body)).toEqual(['Base.1.19.MalformedJSON']);
    expect(messageIds((await client.post(paths.reset(), 'nope')).body)).toEqual(['Base.1.19.MalformedJSON']);
    expect(messageIds((await client.patch(paths.system(), {})).body)).toEqual(['Base.1.19.EmptyJSON']);
  });

  it('answers a missing member with 404 ResourceNotFound (its type and id), any other unknown URI with InvalidURI, and wrong methods with 405 OperationNotAllowed and Allow', async () => {
    const unknown = await client.get('/redfish/v1/Chassis/1');
    expect(unknown.status).toBe(404);
    expect(extendedInfo(unknown.body)).toEqual([expect.objectContaining({ MessageId: 'Base.1.19.InvalidURI', MessageArgs: ['/redfish/v1/Chassis/1'], Message: 'The URI /redfish/v1/Chassis/1 was not found.' })]);
    const system = await client.get('/redfish/v1/Systems/nope');
    expect(system.status).toBe(404);
    expect(extendedInfo(system.body)).toEqual([
      expect.objectContaining({ MessageId: 'Base.1.19.ResourceNotFound', MessageArgs: ['ComputerSystem', 'nope'], Message: "The requested resource of type ComputerSystem named 'nope' was not found." }),
    ]);
    for (const answer of [await client.get(`${paths.accounts}/99`), await client.delete(`${paths.accounts}/99`), await client.patch(`${paths.accounts}/99`, { Enabled: false })]) {
      expect(answer.status).toBe(404);
      expect(extendedInfo(answer.body)).toEqual([expect.objectContaining({ MessageId: 'Base.1.19.ResourceNotFound', MessageArgs: ['ManagerAccount', '99'] })]);
    }
    expect(extendedInfo((await client.get('/redfish/v1/TaskService/Tasks/42')).body)).toEqual([expect.objectContaining({ MessageArgs: ['Task', '42'] })]);
    const put = await client.call('PUT', paths.system(), { AssetTag: 'x' });
    expect(put.status).toBe(405);
    const del = await client.delete(paths.system());
    expect(del.status).toBe(405);
    expect(header(del, 'allow')).toBe('GET, HEAD, PATCH');
    expect(messageIds(del.body)).toEqual(['Base.1.19.OperationNotAllowed']);
    expect((await client.get(paths.reset())).status).toBe(405);
  });

  it('never redirects: trailing slashes and query strings reach the same resource', async () => {
    for (const path of ['/redfish/v1', '/redfish/v1/', '/redfish/v1/Systems/1/', '/redfish/v1/Systems/1?$select=PowerState', '/redfish']) {
      const answer = await client.get(path);
      expect(answer.status, path).toBe(200);
      expect(header(answer, 'location'), path).toBeUndefined();
    }
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const head = await client.call('HEAD', paths.system());
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(header(head, 'etag')).toBe(header(await client.get(paths.system()), 'etag'));
  });

  it('refuses bodies over 1 MiB with 413', async () => {
    const big = await client.patch(paths.system(), { AssetTag: 'x'.repeat(1024 * 1024 + 10) });
    expect(big.status).toBe(413);
    expect(messageIds(big.body)).toEqual(['Base.1.19.PayloadTooLarge']);
  });

  it('survives garbage on the wire and keeps answering', async () => {
    const bmc = t.sim.bmcs[0] as SimBmc;
    const garbage = ['\x00\x01\x02 not http at all\r\n\r\n', 'GET /redfish/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', 'PATCH /redfish/v1/Systems/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"a":'];
    for (const payload of garbage) await rawExchange(bmc, t.sim.caPem, payload);
    const reply = await rawExchange(bmc, t.sim.caPem, 'GET /redfish/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1\.1 200 OK/);
    expect((await client.get(paths.system())).status).toBe(200);
  });
});
