import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedfishSimulator, type SimBmc } from '../../../fixtures/simulators/redfish/index.js';
import { paths, startTestSim, type TestSim } from './redfish-client.js';

/** The certificate a BMC presents, read without verifying it. */
function peerFingerprint(bmc: SimBmc): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: bmc.port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

describe('redfish simulator: TLS', () => {
  let t: TestSim;
  let bmc: SimBmc;

  beforeAll(async () => {
    t = await startTestSim({ bmcs: 2 });
    bmc = t.sim.bmcs[0] as SimBmc;
  });
  afterAll(() => t.dispose());

  it('serves a certificate for 127.0.0.1 and localhost that the CA validates', async () => {
    const answer = await request(`${bmc.url}/redfish/v1/`, { dispatcher: t.agent });
    expect(answer.statusCode).toBe(200);
    await answer.body.dump();
    const cert = new X509Certificate(execFileSync('cat', [t.sim.certFile]));
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(execFileSync('openssl', ['verify', '-CAfile', t.sim.caFile, t.sim.certFile], { encoding: 'utf8' })).toContain(': OK');
  });

  it('is refused by a client that does not trust the CA', async () => {
    const strict = new Agent();
    try {
      await expect(request(`${bmc.url}/redfish/v1/`, { dispatcher: strict })).rejects.toThrow(/certificate|self[- ]signed|issuer/i);
    } finally {
      await strict.destroy();
    }
  });

  it('exposes the fingerprint exactly as openssl x509 -fingerprint -sha256 prints it', async () => {
    const printed = execFileSync('openssl', ['x509', '-in', t.sim.certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    expect(printed.trim()).toBe(`sha256 Fingerprint=${t.sim.certFingerprint}`);
    expect(t.sim.certFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(await peerFingerprint(bmc)).toBe(t.sim.certFingerprint);
  });

  it('wrongCertificate: that BMC alone presents another self-signed certificate, and no request gets through', async () => {
    const other = t.sim.bmcs[1] as SimBmc;
    const client = await t.admin(bmc);
    bmc.resetCounters();
    bmc.faults.wrongCertificate = true;
    try {
      expect(t.sim.wrongCertFingerprint).not.toBe(t.sim.certFingerprint);
      expect(await peerFingerprint(bmc)).toBe(t.sim.wrongCertFingerprint);
      expect(await peerFingerprint(other)).toBe(t.sim.certFingerprint);
      // The keep-alive connection opened before the switch is gone too.
      await expect(client.get(paths.system())).rejects.toThrow(/certificate|self[- ]signed|issuer/i);
      expect(bmc.counters.authAttempts).toBe(0);
      expect(bmc.counters.requests).toBe(0);
    } finally {
      bmc.faults.wrongCertificate = false;
    }
    expect((await client.get(paths.system())).status).toBe(200);
    expect(await peerFingerprint(bmc)).toBe(t.sim.certFingerprint);
  });

  it('counts TLS handshakes: keep-alive requests share one', async () => {
    const other = t.sim.bmcs[1] as SimBmc;
    other.resetCounters();
    // One connection per origin: undici may otherwise open a second one while the first is still finishing a response.
    const agent = new Agent({ connect: { ca: t.sim.caPem }, connections: 1 });
    try {
      for (let i = 0; i < 5; i += 1) {
        const answer = await request(`${other.url}/redfish/v1/`, { dispatcher: agent });
        await answer.body.dump();
      }
      expect(other.counters.tlsHandshakes).toBe(1);
      expect(other.counters.requests).toBe(5);
    } finally {
      await agent.destroy();
    }
  });
});

describe('redfish simulator: certificate directory', () => {
  it('writes the PEMs into certDir, reuses them on the next start, and leaves the directory in place', async () => {
    const certDir = await mkdtemp(path.join(tmpdir(), 'plumb-redfish-certs-'));
    try {
      const first = await RedfishSimulator.start({ bmcs: 1, certDir });
      const fingerprint = first.certFingerprint;
      expect(first.caFile).toBe(path.join(certDir, 'ca.pem'));
      await first.stop();
      expect(existsSync(path.join(certDir, 'ca.pem'))).toBe(true);
      const second = await RedfishSimulator.start({ bmcs: 1, certDir });
      expect(second.certFingerprint).toBe(fingerprint);
      await second.stop();
    } finally {
      await rm(certDir, { recursive: true, force: true });
    }
  });

  it('removes its own temp directory at stop', async () => {
    const sim = await RedfishSimulator.start({ bmcs: 1 });
    const dir = sim.certDir;
    expect(existsSync(sim.caFile)).toBe(true);
    await sim.stop();
    expect(existsSync(dir)).toBe(false);
  });
});
