/**
 * TLS trust: a pinned certificate fingerprint or a CA file, checked in the
 * handshake. A certificate that fails either gets no request at all, so no
 * credentials; plain HTTP only with insecureHttp.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redfishProvider } from '../../../providers/redfish/index.js';
import { fingerprintsEqual, normalizeFingerprint } from '../../../providers/redfish/tls.js';
import { HostKeyError, SpecError } from '../../../src/errors.js';
import type { Target } from '../../../src/provider.js';
import { SecretResolver } from '../../../src/secrets/resolve.js';
import { testLog } from '../../helpers/provider-contract.js';
import type { Certs } from './stub-bmc.js';
import { basicRoutes, makeCerts, removeCerts, StubBmc } from './stub-bmc.js';

const secrets = new SecretResolver({ env: { BMC_PW: 'secret-pw' } });
let certs: Certs;
let good: StubBmc;
let impostor: StubBmc;

beforeAll(async () => {
  certs = makeCerts();
  good = await new StubBmc({ certs }).listen();
  good.handler = basicRoutes({ etag: 1, system: {}, logins: 0, sessionsDeleted: 0 });
  impostor = await new StubBmc({ certs, useOther: true }).listen();
  impostor.handler = basicRoutes({ etag: 1, system: {}, logins: 0, sessionsDeleted: 0 });
});
afterAll(async () => {
  await good.close();
  await impostor.close();
  removeCerts(certs);
});

function open(spec: Record<string, unknown>) {
  const t: Target = { name: 'bmc1', spec: { provider: 'redfish', user: 'admin', password: 'env:BMC_PW', ...spec } as unknown as Target['spec'] };
  return redfishProvider.open(t, { secrets, signal: AbortSignal.timeout(10_000), log: testLog(), connectTimeoutMs: 5_000 });
}

describe('redfish TLS trust', () => {
  it('fingerprints compare in any case and separator style', () => {
    expect(normalizeFingerprint('ab:cd')).toBe('AB:CD');
    expect(fingerprintsEqual(certs.leafFingerprint.toLowerCase(), certs.leafFingerprint)).toBe(true);
    expect(fingerprintsEqual(certs.leafFingerprint, certs.otherFingerprint)).toBe(false);
    expect(fingerprintsEqual('', '')).toBe(false);
  });

  it('the pinned certificate: the session opens', async () => {
    const s = await open({ address: good.url, certFingerprint: certs.leafFingerprint });
    expect(s.alive).toBe(true);
    await s.close();
  });

  it('a certificate that does not match the pin: HostKeyError, not retried, and the server saw no request', async () => {
    const before = impostor.requests.length;
    const err = await open({ address: impostor.url, certFingerprint: certs.leafFingerprint }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyError);
    expect((err as HostKeyError).retryable).toBe(false);
    expect((err as Error).message).toContain('does not match the pinned fingerprint');
    expect((err as Error).message).toContain(certs.otherFingerprint);
    expect(impostor.requests.length).toBe(before);
    expect(impostor.credentialed()).toEqual([]);
    expect(impostor.tcpConnections).toBeGreaterThan(0); // it was reached, and refused in the handshake
  });

  it('caFile: a certificate the CA issued is trusted; another is refused before any request', async () => {
    const s = await open({ address: good.url, caFile: certs.caFile });
    await s.close();
    const before = impostor.requests.length;
    const err = await open({ address: impostor.url, caFile: certs.caFile }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyError);
    expect((err as Error).message).toMatch(/not trusted by the CA in/);
    expect(impostor.requests.length).toBe(before);
  });

  it('caFile: the host name must match the certificate', async () => {
    const err = await open({ address: `https://127.0.0.2:${good.port}`, caFile: certs.caFile }).catch((e: unknown) => e);
    // 127.0.0.2 reaches the same listener only where loopback is a /8; either way no trust and no request.
    expect(err).toBeInstanceOf(Error);
    expect(good.credentialed().filter((r) => r.headers.host?.toString().startsWith('127.0.0.2'))).toEqual([]);
  });

  it('no trust configured, or a bad pin: SpecError; plain http needs insecureHttp', async () => {
    await expect(open({ address: good.url })).rejects.toBeInstanceOf(SpecError);
    await expect(open({ address: good.url, certFingerprint: 'AB:CD' })).rejects.toBeInstanceOf(SpecError);
    await expect(open({ address: 'http://127.0.0.1:1' })).rejects.toBeInstanceOf(SpecError);
    await expect(open({ address: good.url.replace('https', 'http') + '/redfish', insecureHttp: true })).rejects.toBeInstanceOf(SpecError);
  });

  it('insecureHttp: plain HTTP for labs', async () => {
    const plain = await new StubBmc({}).listen();
    plain.handler = basicRoutes({ etag: 1, system: {}, logins: 0, sessionsDeleted: 0 });
    try {
      const s = await open({ address: plain.url, insecureHttp: true });
      await s.close();
      expect(plain.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /redfish/v1/', 'POST /redfish/v1/SessionService/Sessions', 'DELETE /redfish/v1/SessionService/Sessions/1']);
    } finally {
      await plain.close();
    }
  });
});
