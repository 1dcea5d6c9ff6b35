/**
 * The ssh provider against the SSH host simulator (fixtures/simulators/ssh): the
 * provider contract, then the faults a real fleet produces.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshSimulator, type SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { sshProvider } from '../../../providers/ssh/index.js';
import type { CommandSpec, DirectorySpec, FileSpec, SshSession } from '../../../providers/ssh/index.js';
import { commandKind } from '../../../providers/ssh/kinds/command.js';
import { directoryKind } from '../../../providers/ssh/kinds/directory.js';
import { fileKind } from '../../../providers/ssh/kinds/file.js';
import { AuthError, CancelledError, CommandFailedError, HostKeyError, SessionLostError, SpecError, TimeoutError, UnreachableError } from '../../../src/errors.js';
import type { KindHandler, Resource } from '../../../src/provider.js';
import type { Target } from '../../../src/provider.js';
import { SecretResolver } from '../../../src/secrets/resolve.js';
import { keygen } from '../../helpers/openssh.js';
import { describeProviderContract, opContext, testLog } from '../../helpers/provider-contract.js';
import { makeResource } from '../../helpers/resources.js';
import { waitUntil } from '../../helpers/cli.js';

const secrets = new SecretResolver({ env: {} });

async function startSim(): Promise<{ sim: SshSimulator; dir: string; keyRef: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'plumb-sim-'));
  const key = join(dir, 'client_ed25519');
  await keygen(key);
  const sim = await SshSimulator.start({ hosts: ['web1'], rootDir: join(dir, 'hosts'), authorizedKeys: [await readFile(`${key}.pub`, 'utf8')] });
  return { sim, dir, keyRef: `file:${key}` };
}

function simTarget(sim: SshSimulator, keyRef: string, extra: Record<string, unknown> = {}): Target {
  const host = sim.hosts[0] as SimHost;
  return {
    name: host.name,
    spec: { provider: 'ssh', address: '127.0.0.1', port: host.port, user: 'root', privateKey: keyRef, hostKey: sim.hostKeyFingerprint, connectTimeout: '5s', ...extra },
  };
}

function open(target: Target, signal: AbortSignal = AbortSignal.timeout(10_000)): Promise<SshSession> {
  return sshProvider.open(target, { secrets, signal, log: testLog(), connectTimeoutMs: 5_000 });
}

describeProviderContract('ssh against the simulator', async () => {
  const { sim, dir, keyRef } = await startSim();
  return {
    provider: sshProvider,
    target: simTarget(sim, keyRef),
    secrets,
    cases: [
      {
        kind: 'ssh.File',
        create: makeResource<FileSpec>('ssh.File', 'motd', { path: '/etc/motd', content: 'managed by plumb\n', mode: '0644', owner: 'root' }),
        update: makeResource<FileSpec>('ssh.File', 'motd', { path: '/etc/motd', content: 'still managed by plumb\n', mode: '0640', owner: 'deploy' }),
      },
      {
        kind: 'ssh.Directory',
        create: makeResource<DirectorySpec>('ssh.Directory', 'app', { path: '/srv/app/releases', mode: '0755' }),
        update: makeResource<DirectorySpec>('ssh.Directory', 'app', { path: '/srv/app/releases', mode: '0750', group: 'www-data' }),
      },
      {
        kind: 'ssh.Command',
        create: makeResource<CommandSpec>('ssh.Command', 'init', { run: 'touch /var/tmp/initialised', creates: '/var/tmp/initialised' }),
        update: makeResource<CommandSpec>('ssh.Command', 'init', { run: 'touch /var/tmp/initialised-2', creates: '/var/tmp/initialised-2' }),
      },
    ],
    writes: () => (sim.hosts[0] as SimHost).counters.writes,
    async teardown() {
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('ssh provider against the simulator: faults', () => {
  let sim: SshSimulator;
  let dir: string;
  let keyRef: string;
  beforeAll(async () => {
    ({ sim, dir, keyRef } = await startSim());
  });
  afterAll(async () => {
    await sim?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const host = (): SimHost => sim.hosts[0] as SimHost;
  const motd = makeResource<FileSpec>('ssh.File', 'motd', { path: '/etc/motd', content: 'x\n' });

  it('one connection serves many operations', async () => {
    const before = host().counters.connections;
    const s = await open(simTarget(sim, keyRef));
    for (let i = 0; i < 10; i++) await fileKind.read(s, motd, opContext());
    await s.close();
    expect(host().counters.connections - before).toBe(1);
  });

  it('dropped connections are a retryable UnreachableError', async () => {
    host().faults.dropConnections = true;
    try {
      const err = await open(simTarget(sim, keyRef)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnreachableError);
    } finally {
      host().faults.dropConnections = false;
    }
  });

  it('refused credentials are an AuthError, not retried', async () => {
    host().faults.authFailure = true;
    try {
      const err = await open(simTarget(sim, keyRef)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).retryable).toBe(false);
    } finally {
      host().faults.authFailure = false;
    }
  });

  it('password authentication from an env: secret reference', async () => {
    const pwSim = await SshSimulator.start({ hosts: ['pw1'], rootDir: join(dir, 'pw-hosts'), authorizedKeys: [], password: 'correct horse battery' });
    try {
      const target = simTarget(pwSim, keyRef, { privateKey: undefined, password: 'env:SIM_PASSWORD' });
      delete target.spec.privateKey;
      const withPw = new SecretResolver({ env: { SIM_PASSWORD: 'correct horse battery' } });
      const s = await sshProvider.open(target, { secrets: withPw, signal: AbortSignal.timeout(10_000), log: testLog(), connectTimeoutMs: 5_000 });
      expect(s.alive).toBe(true);
      await s.close();
      const wrong = new SecretResolver({ env: { SIM_PASSWORD: 'wrong password' } });
      const err = await sshProvider.open(target, { secrets: wrong, signal: AbortSignal.timeout(10_000), log: testLog(), connectTimeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect((err as Error).message).not.toContain('wrong password');
    } finally {
      await pwSim.stop();
    }
  });

  it('a hung host: the deadline cancels the call with TimeoutError', async () => {
    const s = await open(simTarget(sim, keyRef));
    host().faults.hang = true;
    try {
      const started = Date.now();
      await expect(fileKind.read(s, motd, opContext(AbortSignal.timeout(300)))).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      host().faults.hang = false;
      await s.close();
    }
  });

  it('known_hosts from the simulator is accepted; a wrong pin is refused before any authentication', async () => {
    const kh = join(dir, 'known_hosts');
    await writeFile(kh, sim.knownHostsLines());
    const s = await open(simTarget(sim, keyRef, { hostKey: undefined, knownHosts: kh }));
    await s.close();
    const failures = host().counters.authFailures;
    const err = await open(simTarget(sim, keyRef, { hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyError);
    expect((err as Error).message).toContain(sim.hostKeyFingerprint);
    expect(host().counters.authFailures).toBe(failures);
  });

  it('a converged pass over a set of resources writes nothing (invariant 1)', async () => {
    const s = await open(simTarget(sim, keyRef));
    try {
      const set: Array<[KindHandler<unknown, unknown, SshSession>, Resource]> = [
        [directoryKind as KindHandler<unknown, unknown, SshSession>, makeResource<DirectorySpec>('ssh.Directory', 'www', { path: '/var/www/site', mode: '0755', owner: 'www-data', group: 'www-data' })],
        [fileKind as KindHandler<unknown, unknown, SshSession>, makeResource<FileSpec>('ssh.File', 'index', { path: '/var/www/site/index.html', content: '<h1>hi</h1>\n', mode: '0644', owner: 'www-data' })],
        [commandKind as KindHandler<unknown, unknown, SshSession>, makeResource<CommandSpec>('ssh.Command', 'stamp', { run: 'touch /var/www/site/.stamp', creates: '/var/www/site/.stamp' })],
      ];
      for (const [h, r] of set) await h.apply(s, r, h.diff(r, await h.read(s, r, opContext())), opContext());
      const writes = host().counters.writes;
      for (const [h, r] of set) expect(h.diff(r, await h.read(s, r, opContext()))).toEqual([]);
      expect(host().counters.writes).toBe(writes);
    } finally {
      await s.close();
    }
  });

  it('refusals: missing parent, non-empty directory, failing command', async () => {
    const s = await open(simTarget(sim, keyRef));
    try {
      const orphan = makeResource<FileSpec>('ssh.File', 'o', { path: '/nope/nested/file', content: 'x' });
      await expect(fileKind.apply(s, orphan, fileKind.diff(orphan, undefined), opContext())).rejects.toThrow(/ssh\.Directory/);
      const d = makeResource<DirectorySpec>('ssh.Directory', 'full', { path: '/srv/full' });
      await directoryKind.apply(s, d, directoryKind.diff(d, undefined), opContext());
      const f = makeResource<FileSpec>('ssh.File', 'inside', { path: '/srv/full/data', content: 'keep me' });
      await fileKind.apply(s, f, fileKind.diff(f, undefined), opContext());
      await expect(directoryKind.remove!(s, d, opContext())).rejects.toBeInstanceOf(SpecError);
      const bad = makeResource<CommandSpec>('ssh.Command', 'bad', { run: 'echo nope >&2; exit 4' });
      await expect(commandKind.apply(s, bad, commandKind.diff(bad, undefined), opContext())).rejects.toThrow(CommandFailedError);
    } finally {
      await s.close();
    }
  });

  it('an abort stops a running command quickly and the session stays usable', async () => {
    const s = await open(simTarget(sim, keyRef));
    try {
      const r = makeResource<CommandSpec>('ssh.Command', 'sleepy', { run: 'sleep 30' });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const started = Date.now();
      await expect(commandKind.apply(s, r, commandKind.diff(r, undefined), opContext(ac.signal))).rejects.toBeInstanceOf(CancelledError);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(s.alive).toBe(true);
      await fileKind.read(s, motd, opContext());
    } finally {
      await s.close();
    }
  });

  it('a connection lost mid-operation is SessionLostError and the session reports dead', async () => {
    const s = await open(simTarget(sim, keyRef));
    host().faults.dropAfterRequests = 0;
    const err = await fileKind.read(s, motd, opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionLostError);
    expect((err as SessionLostError).retryable).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(s.alive).toBe(false);
    await s.close();
  });
});

describe('shared getent lookups', () => {
  let env: Awaited<ReturnType<typeof startSim>>;
  beforeAll(async () => {
    env = await startSim();
  });
  afterAll(async () => {
    await env.sim.stop();
    await rm(env.dir, { recursive: true, force: true });
  });

  it('one asker giving up does not fail the others waiting on the same lookup', async () => {
    const host = env.sim.hosts[0] as SimHost;
    const s = await open(simTarget(env.sim, env.keyRef));
    try {
      const { resolveId } = await import('../../../providers/ssh/remote.js');
      // Both ask for deploy's uid while its getent is held at the host; the first gives up.
      host.faults.latencyMs = 300;
      const quitter = new AbortController();
      const first = resolveId(s, 'passwd', 'deploy', quitter.signal);
      const second = resolveId(s, 'passwd', 'deploy', AbortSignal.timeout(10_000));
      quitter.abort(new CancelledError('this op was cancelled'));
      await expect(first).rejects.toBeInstanceOf(CancelledError);
      await expect(second).resolves.toBe(1000);
      // And the answer is cached for the session: no second getent.
      const execs = host.counters.execs;
      await expect(resolveId(s, 'passwd', 'deploy', AbortSignal.timeout(10_000))).resolves.toBe(1000);
      expect(host.counters.execs).toBe(execs);
    } finally {
      host.faults.latencyMs = 0;
      await s.close();
    }
  });
});

describe('closing a become session', () => {
  let env: Awaited<ReturnType<typeof startSim>>;
  beforeAll(async () => {
    env = await startSim();
  });
  afterAll(async () => {
    await env.sim.stop();
    await rm(env.dir, { recursive: true, force: true });
  });

  it('does not wait for a staging directory whose mktemp never answers', async () => {
    const host = env.sim.hosts[0] as SimHost;
    const s = await open(simTarget(env.sim, env.keyRef, { user: 'deploy', become: { method: 'sudo' } }));
    host.faults.holdExecs = /mktemp -d/;
    try {
      const { writeFileAtomic } = await import('../../../providers/ssh/remote.js');
      const stuck = new AbortController();
      const write = writeFileAtomic(s, '/etc/held.conf', Buffer.from('x\n'), { mode: 0o644 }, stuck.signal).catch((err: unknown) => err);
      await waitUntil(() => host.counters.heldExecs > 0, 10_000, 'mktemp held at the host');
      const started = Date.now();
      await s.close();
      expect(Date.now() - started).toBeLessThan(5_000);
      stuck.abort();
      expect(await write).toBeInstanceOf(Error);
    } finally {
      delete host.faults.holdExecs;
    }
  });
});
