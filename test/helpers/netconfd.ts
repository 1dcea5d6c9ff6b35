/**
 * A real NETCONF server for interop tests: Debian's yuma123 `netconfd` behind a
 * private OpenSSH sshd (`Subsystem netconf`), loopback only, everything under a
 * temp dir. Adapted from ../shared/interop/netconfd-up.sh:
 * - netconfd runs as an unprivileged test user with stub `ifconfig` and
 *   `get-interface-ipv4` first in its PATH: the ietf-interfaces SIL runs
 *   `ifconfig <name> up|down` on commit (it would touch the host's interfaces)
 *   and aborts on a missing get-interface-ipv4;
 * - netconfd only accepts sessions whose SSH server port is in its --port list,
 *   and netconf-subsystem finds the socket by that port (`PORT@path`);
 * - starting it needs root (a user, sshd, setpriv). Without root or the
 *   packages, `netconfdMissing()` says why.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);

const NETCONFD = '/usr/sbin/netconfd';
const SUBSYSTEM = '/usr/sbin/netconf-subsystem';
const SSHD = '/usr/sbin/sshd';
const USER = 'plumbnc';

export const NETCONFD_HINT = 'apt-get install -y netconfd netconfd-module-ietf-interfaces yangcli openssh-server (and run the tests as root)';

/** Why a netconfd lab cannot start here, or undefined when it can. */
export function netconfdMissing(): string | undefined {
  const missing = [NETCONFD, SUBSYSTEM, SSHD, '/usr/bin/ssh-keygen', '/usr/bin/setpriv'].filter((p) => !existsSync(p));
  if (missing.length > 0) return `missing ${missing.join(', ')}: ${NETCONFD_HINT}`;
  const sil = ['/usr/lib/x86_64-linux-gnu/yuma', '/usr/lib/aarch64-linux-gnu/yuma', '/usr/lib/yuma'].some((d) => existsSync(d) && readdirSync(d).some((f) => f.startsWith('libietf-interfaces.so')));
  if (!sil) return `netconfd-module-ietf-interfaces is not installed: ${NETCONFD_HINT}`;
  if (process.getuid?.() !== 0) return `starting netconfd behind sshd needs root: ${NETCONFD_HINT}`;
  return undefined;
}

export interface NetconfdLab {
  address: '127.0.0.1';
  port: number;
  user: string;
  /** `file:` reference to the client key. */
  keyRef: string;
  /** `file:` reference to a file holding the user's password. */
  passwordRef: string;
  hostKeyFingerprint: string;
  dir: string;
  /** ifconfig calls netconfd's interface SIL made (the stub logs them). */
  ifconfigCalls(): string;
  netconfdLog(): string;
  /** What sshd logged (LogLevel VERBOSE): connections, authentications, disconnects. */
  sshdLog(): string;
  /**
   * With `gateIfconfig`: while held, the stub `ifconfig` logs `held <args>` and
   * waits until released, so netconfd stops inside the commit that ran it.
   */
  holdIfconfig(): Promise<void>;
  releaseIfconfig(): Promise<void>;
  stop(): Promise<void>;
}

async function ensureUser(password: string): Promise<{ uid: number; gid: number; home: string }> {
  try {
    await run('id', [USER]);
  } catch {
    await run('useradd', ['-m', '-s', '/bin/bash', USER]);
  }
  await new Promise<void>((resolve, reject) => {
    const p = spawn('chpasswd', [], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`chpasswd: ${err}`))));
    p.stdin.end(`${USER}:${password}\n`);
  });
  const { stdout } = await run('getent', ['passwd', USER]);
  const f = stdout.trim().split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

/** The test user as it is (its password untouched), created (with `password`) when missing. */
async function existingUser(password: string): Promise<{ uid: number; gid: number; home: string }> {
  try {
    await run('id', [USER]);
  } catch {
    return ensureUser(password);
  }
  const { stdout } = await run('getent', ['passwd', USER]);
  const f = stdout.trim().split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

async function waitFor(check: () => boolean, ms: number, what: string, log: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} within ${ms} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts netconfd + sshd. `protocols`: `netconf1.0` or `netconf1.1` for a
 * server that speaks only that base version (default both); `target`: the
 * datastore netconfd writes (candidate by default; running = no :candidate);
 * `modules`: more YANG modules to load (names netconfd finds in its module
 * path, or paths to .yang files); `gateIfconfig`: the stub `ifconfig` can be
 * held (see NetconfdLab.holdIfconfig).
 */
export async function startNetconfd(
  options: {
    protocols?: 'netconf1.0' | 'netconf1.1';
    target?: 'candidate' | 'running';
    modules?: string[];
    gateIfconfig?: boolean;
    /**
     * Default true. false: key login only; the account's password is left as it is, so a lab
     * started alongside (by another test file) keeps the password its passwordRef names.
     */
    passwordLogin?: boolean;
  } = {},
): Promise<NetconfdLab> {
  const why = netconfdMissing();
  if (why) throw new Error(why);
  const dir = await mkdtemp(join(tmpdir(), 'plumb-netconfd-'));
  chmodSync(dir, 0o755); // netconfd runs as the test user and lives below
  const password = `pw-${Math.random().toString(36).slice(2, 12)}`;
  const user = options.passwordLogin === false ? await existingUser(password) : await ensureUser(password);
  const home = join(dir, 'netconfd-home');
  const bin = join(dir, 'bin');
  const sock = join(home, 'ncxserver.sock');
  await mkdir(home, { recursive: true });
  await mkdir(bin, { recursive: true });
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  await writeFile(join(dir, 'password'), password, { mode: 0o600 });

  const keyPath = join(dir, 'client_ed25519');
  const hostKeyPath = join(dir, 'host_ed25519');
  await Promise.all([run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'plumb-test', '-f', keyPath]), run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKeyPath])]);
  const authorizedKeys = join(dir, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${keyPath}.pub`));

  const port = await freePort();
  const sshdConfig = [
    'ListenAddress 127.0.0.1',
    `Port ${port}`,
    `HostKey ${hostKeyPath}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'StrictModes no',
    `AllowUsers ${USER}`,
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication yes',
    'PubkeyAuthentication yes',
    'UsePAM yes',
    'PermitRootLogin no',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'LogLevel VERBOSE',
    'MaxStartups 50',
    `Subsystem netconf ${SUBSYSTEM} --ncxserver-sockname=${port}@${sock}`,
  ].join('\n');
  await writeFile(join(dir, 'sshd_config'), `${sshdConfig}\n`);

  await writeFile(join(home, 'startup-cfg.xml'), '<config/>\n');
  await writeFile(join(bin, 'get-interface-ipv4'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const gate = join(dir, 'ifconfig-hold');
  // The gate is a file the test (root) creates and removes; the stub only looks at it.
  const held = options.gateIfconfig ? `if [ -e "${gate}" ]; then echo "held $*" >> "${dir}/ifconfig-calls.log"; while [ -e "${gate}" ]; do sleep 0.02; done; fi\n` : '';
  await writeFile(join(bin, 'ifconfig'), `#!/bin/sh\n${held}echo "ifconfig $*" >> "${dir}/ifconfig-calls.log"\nexit 0\n`, { mode: 0o755 });
  for (const f of ['ifconfig-calls.log', 'netconfd.log']) await writeFile(join(dir, f), '');
  for (const p of [home, join(home, 'startup-cfg.xml'), join(dir, 'ifconfig-calls.log'), join(dir, 'netconfd.log')]) chownSync(p, user.uid, user.gid);

  let netconfdOut = '';
  const netconfd = spawn(
    'setpriv',
    [
      `--reuid=${USER}`,
      `--regid=${USER}`,
      '--init-groups',
      NETCONFD,
      '--module=iana-if-type',
      '--module=ietf-interfaces',
      '--module=ietf-ip',
      ...(options.modules ?? []).map((m) => `--module=${m}`),
      `--startup=${join(home, 'startup-cfg.xml')}`,
      `--superuser=${USER}`,
      `--port=${port}`,
      `--ncxserver-sockname=${sock}`,
      `--target=${options.target ?? 'candidate'}`,
      '--with-startup=false',
      '--with-validate=true',
      `--log=${join(dir, 'netconfd.log')}`,
      '--log-level=info',
      ...(options.protocols ? [`--protocols=${options.protocols}`] : []),
    ],
    { env: { HOME: home, USER, PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  netconfd.stdout!.on('data', (d: Buffer) => (netconfdOut += d.toString()));
  netconfd.stderr!.on('data', (d: Buffer) => (netconfdOut += d.toString()));
  const netconfdLog = (): string => `${netconfdOut}\n${existsSync(join(dir, 'netconfd.log')) ? readFileSync(join(dir, 'netconfd.log'), 'utf8') : ''}`;
  let sshd: ChildProcess | undefined;
  let sshdLog = '';
  try {
    await waitFor(() => existsSync(sock) || netconfd.exitCode !== null, 15_000, 'netconfd did not create its socket', netconfdLog);
    if (netconfd.exitCode !== null) throw new Error(`netconfd exited (${netconfd.exitCode}):\n${netconfdLog()}`);
    chmodSync(sock, 0o666);

    sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr!.on('data', (d: Buffer) => (sshdLog += d.toString()));
    const s = sshd;
    await waitFor(() => sshdLog.includes(`port ${port}`) || s.exitCode !== null, 10_000, 'sshd did not listen', () => sshdLog);
    if (sshd.exitCode !== null) throw new Error(`sshd exited (${sshd.exitCode}):\n${sshdLog}`);
    // netconfd loads its modules for about a second after creating the socket.
    await new Promise((r) => setTimeout(r, 1_000));
    if (netconfd.exitCode !== null) throw new Error(`netconfd exited (${netconfd.exitCode}):\n${netconfdLog()}`);
  } catch (err) {
    if (sshd) await stopChild(sshd);
    await stopChild(netconfd);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKeyPath}.pub`]);
  const fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(stdout)?.[0] ?? '';
  const sshdChild = sshd;
  return {
    address: '127.0.0.1',
    port,
    user: USER,
    keyRef: `file:${keyPath}`,
    passwordRef: `file:${join(dir, 'password')}`,
    hostKeyFingerprint: fingerprint,
    dir,
    ifconfigCalls: () => readFileSync(join(dir, 'ifconfig-calls.log'), 'utf8'),
    netconfdLog,
    sshdLog: () => sshdLog,
    async holdIfconfig() {
      if (!options.gateIfconfig) throw new Error('startNetconfd({ gateIfconfig: true }) to hold ifconfig');
      await writeFile(gate, '');
    },
    async releaseIfconfig() {
      await rm(gate, { force: true });
    },
    async stop() {
      await stopChild(sshdChild);
      await stopChild(netconfd);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
