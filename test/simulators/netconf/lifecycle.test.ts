import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { generateEd25519Key, NetconfSimulator } from '../../../fixtures/simulators/netconf/index.js';
import { freePortRange } from '../../helpers/ports.js';
import { SW, TestNetconfClient, connectSsh, firstDevice, isOk, settlesWithin, sleep, startSim } from './netconf-test-client.js';

describe('netconf simulator: lifecycle', () => {
  it('starts 200 devices, each answering a hello, quickly', async () => {
    let begin = Date.now();
    const sim = await NetconfSimulator.start({ devices: 200 });
    const startMs = Date.now() - begin;
    try {
      expect(new Set(sim.devices.map((d) => d.port)).size).toBe(200);
      expect(sim.devices[199]?.name).toBe('dev200');
      begin = Date.now();
      const clients = await Promise.all(sim.devices.map((d) => TestNetconfClient.open(d)));
      const helloMs = Date.now() - begin;
      expect(clients.every((c) => c.sessionId === 1)).toBe(true);
      const replies = await Promise.all(clients.map((c) => c.rpc('<get-config><source><running/></source></get-config>')));
      replies.forEach((r, i) => expect(r).toContain(`<hostname>dev${String(i + 1).padStart(3, '0')}</hostname>`));
      expect(startMs).toBeLessThan(3000);
      expect(helloMs).toBeLessThan(15000);
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      await sim.stop();
    }
  });

  it('stop() resolves quickly with busy sessions open (hung rpc, latency wait, pending confirmed commit)', async () => {
    const sim = await startSim({ devices: 2 });
    const [a, b] = sim.devices;
    if (a === undefined || b === undefined) throw new Error('devices');
    const hung = await TestNetconfClient.open(a);
    a.faults.hangRpc = 'get-config';
    void hung.rpc('<get-config><source><running/></source></get-config>', 10_000).catch(() => undefined);
    const slow = await TestNetconfClient.open(b);
    await slow.ok(`<edit-config><target><candidate/></target><config><vlans xmlns="${SW}"><vlan><id>90</id></vlan></vlans></config></edit-config>`);
    await slow.ok('<commit><confirmed/><persist>keep</persist></commit>');
    b.faults.latencyMs = 60_000;
    void slow.rpc('<get-config><source><running/></source></get-config>', 10_000).catch(() => undefined);
    const idle = await TestNetconfClient.open(b);
    await sleep(50);
    const begin = Date.now();
    expect(await settlesWithin(sim.stop(), 2000)).toBe(true);
    expect(Date.now() - begin).toBeLessThan(1000);
    for (const c of [hung, slow, idle]) expect(await settlesWithin(c.connectionClosed, 2000)).toBe(true);
    expect(a.openSessions + b.openSessions).toBe(0);
    await expect(TestNetconfClient.open(a)).rejects.toThrow(/ECONNREFUSED/);
    // Safe to call twice.
    await sim.stop();
  });

  it('listens on basePort + i when given, and fails cleanly when a port is taken', async () => {
    const base = await freePortRange(3);
    const sim = await NetconfSimulator.start({ devices: ['sw1', 'sw2', 'sw3'], basePort: base });
    try {
      expect(sim.devices.map((d) => [d.name, d.port])).toEqual([
        ['sw1', base],
        ['sw2', base + 1],
        ['sw3', base + 2],
      ]);
      await expect(NetconfSimulator.start({ devices: 1, basePort: base + 1 })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await sim.stop();
    }
  });

  it('refuses bad options', async () => {
    await expect(NetconfSimulator.start({ devices: 0 })).rejects.toThrow(/at least one/);
    await expect(NetconfSimulator.start({ devices: ['a', 'a'] })).rejects.toThrow(/duplicate/);
    await expect(NetconfSimulator.start({ devices: ['../x'] })).rejects.toThrow(/invalid device name/);
    await expect(NetconfSimulator.start({ devices: 1, profile: 'weird' as never })).rejects.toThrow(/profile/);
    await expect(NetconfSimulator.start({ devices: 1, initialRunning: () => '<config><unclosed></config>' })).rejects.toThrow();
  });

  it('serves the host key that knownHostsLines and hostKeyFingerprint describe', async () => {
    const sim = await startSim();
    try {
      const device = firstDevice(sim);
      expect(sim.knownHostsLines()).toBe(`[127.0.0.1]:${device.port} ${sim.hostPublicKey}\n`);
      let seen = '';
      const client = await connectSsh(device, {
        username: 'admin',
        password: 'admin',
        hostVerifier: (key: Buffer) => {
          seen = `ssh-ed25519 ${key.toString('base64')}`;
          return true;
        },
      });
      client.end();
      expect(seen).toBe(sim.hostPublicKey);
      expect(sim.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    } finally {
      await sim.stop();
    }
  });

  it('authenticates by password (default admin/admin) or authorized key, for the configured user only', async () => {
    const key = generateEd25519Key();
    const byKey = await NetconfSimulator.start({ devices: 1, username: 'netops', authorizedKeys: [key.public] });
    const byPassword = await startSim();
    try {
      const d1 = firstDevice(byKey);
      const withKey = await TestNetconfClient.open(d1, { username: 'netops', privateKey: key.private, password: '' });
      await withKey.close();
      await expect(connectSsh(d1, { username: 'netops', password: 'admin' })).rejects.toThrow(/authentication/i);
      await expect(connectSsh(d1, { username: 'admin', privateKey: key.private })).rejects.toThrow(/authentication/i);

      const d2 = firstDevice(byPassword);
      const ok = await TestNetconfClient.open(d2);
      await ok.close();
      await expect(connectSsh(d2, { username: 'admin', password: 'wrong' })).rejects.toThrow(/authentication/i);
    } finally {
      await byKey.stop();
      await byPassword.stop();
    }
  });

  it('refuses other subsystems and exec', async () => {
    const sim = await startSim();
    try {
      const client = await connectSsh(firstDevice(sim), { username: 'admin', password: 'admin' });
      await expect(new Promise((resolve, reject) => client.subsys('sftp', (err) => (err ? reject(err) : resolve(undefined))))).rejects.toThrow();
      await expect(new Promise((resolve, reject) => client.exec('show run', (err) => (err ? reject(err) : resolve(undefined))))).rejects.toThrow();
      client.end();
    } finally {
      await sim.stop();
    }
  });

  it('survives clients that misbehave: garbage instead of SSH, a dropped connection mid-message', async () => {
    const sim = await startSim();
    try {
      const device = firstDevice(sim);
      const socket = net.connect(device.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('GET / HTTP/1.1\r\n\r\n');
      socket.write(Buffer.from([0, 0, 0, 255, 1, 2, 3]));
      await sleep(50);
      socket.destroy();

      const nc = await TestNetconfClient.open(device);
      nc.write('\n#500\n<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get-con');
      await sleep(20);
      (nc.client as unknown as { _sock: net.Socket })._sock.destroy();
      for (let i = 0; i < 50 && device.openSessions > 0; i += 1) await sleep(10);
      expect(device.openSessions).toBe(0);

      const fine = await TestNetconfClient.open(device);
      expect(isOk(await fine.rpc('<lock><target><running/></target></lock>'))).toBe(true);
      await fine.close();
    } finally {
      await sim.stop();
    }
  });

  it('reports events to the log option, and takes an initialRunning per device', async () => {
    const events: string[] = [];
    const sim = await NetconfSimulator.start({
      devices: ['r1'],
      log: (event) => events.push(event),
      initialRunning: (name) => `<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>${name}.lab</hostname></system></config>`,
    });
    try {
      const device = firstDevice(sim);
      expect(device.running()).toBe(
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>r1.lab</hostname></system></config>',
      );
      const nc = await TestNetconfClient.open(device);
      await nc.close();
      expect(events).toEqual(expect.arrayContaining(['authenticated', 'session-start', 'hello']));
      const tree = device.runningTree();
      expect(tree.children[0]?.name).toBe('system');
      const hostname = tree.children[0]?.children[0];
      if (hostname === undefined) throw new Error('no hostname');
      hostname.text = 'edited-copy';
      expect(device.running()).toContain('<hostname>r1.lab</hostname>');
      device.setRunningTree(tree);
      expect(device.running()).toContain('<hostname>edited-copy</hostname>');
      device.setRunning('<config><system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>changed</hostname></system></config>');
      expect(device.candidate()).toContain('<hostname>changed</hostname>');
    } finally {
      await sim.stop();
    }
  });
});

