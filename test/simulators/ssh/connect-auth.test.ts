import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'ssh2';
import { fingerprintOf } from '../../../fixtures/simulators/ssh/index.js';
import { connect, exec, generateClientKey, startTestSimulator, type TestSimulator } from './ssh-client.js';

describe('ssh simulator: connecting and authenticating', () => {
  let t: TestSimulator;

  beforeAll(async () => {
    t = await startTestSimulator({ hosts: ['web1', 'web2'], password: 's3cret' });
  });
  afterAll(async () => t.dispose());

  it('presents the host key whose fingerprint it advertises', async () => {
    const seen: string[] = [];
    const client = await connect(t.sim.host('web1'), {
      privateKey: t.clientKey.private,
      hostVerifier: (key: Buffer) => {
        seen.push(fingerprintOf(key));
        return true;
      },
    });
    client.end();
    expect(seen).toEqual([t.sim.hostKeyFingerprint]);
    expect(t.sim.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('lists one known_hosts line per host, bracketed with the port', () => {
    const lines = t.sim.knownHostsLines().trim().split('\n');
    expect(lines).toEqual(t.sim.hosts.map((h) => `[127.0.0.1]:${h.port} ${t.sim.hostPublicKey}`));
    expect(t.sim.hostPublicKey).toMatch(/^ssh-ed25519 AAAA/);
  });

  it('gives every host its own port and sandbox', () => {
    const [a, b] = t.sim.hosts;
    expect(a?.port).not.toBe(b?.port);
    expect(a?.root.endsWith('/web1')).toBe(true);
    expect(b?.root.endsWith('/web2')).toBe(true);
  });

  it('logs in with the authorized key as any user in the sandbox passwd', async () => {
    const client = await connect(t.sim.host('web1'), { username: 'root', privateKey: t.clientKey.private });
    const result = await exec(client, 'id -u; whoami; hostname');
    client.end();
    expect(result).toMatchObject({ stdout: '0\nroot\nweb1\n', code: 0 });
  });

  it('rejects a key that is not authorized and counts the failure', async () => {
    const host = t.sim.host('web2');
    host.resetCounters();
    const stranger = generateClientKey();
    await expect(connect(host, { privateKey: stranger.private })).rejects.toThrow(/authentication methods failed/);
    expect(host.counters.authFailures).toBeGreaterThanOrEqual(1);
    expect(host.counters.connections).toBe(1);
  });

  it('rejects users missing from the sandbox passwd, as sshd does', async () => {
    await expect(connect(t.sim.host('web1'), { username: 'mallory', privateKey: t.clientKey.private })).rejects.toThrow(
      /authentication methods failed/,
    );
  });

  it('accepts the configured password and refuses a wrong one', async () => {
    const client = await connect(t.sim.host('web1'), { password: 's3cret' });
    client.end();
    await expect(connect(t.sim.host('web1'), { password: 'nope' })).rejects.toThrow(/authentication methods failed/);
  });

  it('refuses every login while the authFailure fault is set', async () => {
    const host = t.sim.host('web2');
    host.faults.authFailure = true;
    try {
      await expect(connect(host, { privateKey: t.clientKey.private })).rejects.toThrow(/authentication methods failed/);
    } finally {
      host.faults.authFailure = false;
    }
    const client: Client = await connect(host, { privateKey: t.clientKey.private });
    client.end();
  });

  it('drops connections before the handshake while dropConnections is set', async () => {
    const host = t.sim.host('web2');
    host.resetCounters();
    host.faults.dropConnections = true;
    try {
      await expect(connect(host, { privateKey: t.clientKey.private })).rejects.toThrow();
    } finally {
      host.faults.dropConnections = false;
    }
    expect(host.counters.connections).toBe(1);
    expect(host.counters.authFailures).toBe(0);
  });
});
