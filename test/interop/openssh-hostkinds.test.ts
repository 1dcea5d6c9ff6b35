/**
 * Host kinds (ssh.Line, ssh.Package, ssh.User, ssh.Group) against real OpenSSH on
 * loopback. sshd runs on 127.0.0.1 of this machine, so the test checks the host
 * directly (node:fs, getent, dpkg-query).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshProvider } from '../../providers/ssh/index.js';
import type { SshSession } from '../../providers/ssh/index.js';
import { lineKind, type LineSpec } from '../../providers/ssh/kinds/line.js';
import { packageKind, type PackageSpec } from '../../providers/ssh/kinds/package.js';
import { groupKind, type GroupSpec } from '../../providers/ssh/kinds/group.js';
import { userKind, type UserSpec } from '../../providers/ssh/kinds/user.js';
import { CommandFailedError, SpecError } from '../../src/errors.js';
import type { KindHandler, Resource, Target } from '../../src/provider.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { sshdAvailable, SSHD_MISSING, startOpenSsh, type OpenSshServer } from '../helpers/openssh.js';
import { opContext, testLog } from '../helpers/provider-contract.js';
import { makeResource } from '../helpers/resources.js';
import { canFakeApt, fakeApt, type FakeApt } from '../helpers/fake-apt.js';

const secrets = new SecretResolver({ env: {} });
const run = promisify(execFile);
const count = (text: string, re: RegExp): number => (text.match(new RegExp(re.source, 'g')) ?? []).length;

/** sshd logs a session line per exec as it starts it: wait for the count to settle at `n` (or pass it). */
async function waitForCount(value: () => number, n: number, ms = 3_000): Promise<number> {
  const end = Date.now() + ms;
  while (value() < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return value();
}

function sshTarget(sshd: OpenSshServer): Target {
  return {
    name: 'web1',
    spec: { provider: 'ssh', address: sshd.address, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyRef, hostKey: sshd.hostKeyFingerprint, connectTimeout: '10s' },
  };
}

/** read → diff → apply → read: the changes planned, and the diff after (must be empty). */
async function converge<S>(s: SshSession, h: KindHandler<S, unknown, SshSession>, r: Resource<S>): Promise<{ planned: number; after: number }> {
  const actual = await h.read(s, r, opContext());
  const changes = h.diff(r, actual);
  if (changes.length > 0) await h.apply(s, r, changes, opContext(), actual);
  const after = h.diff({ ...r, lastApplied: r.spec }, await h.read(s, { ...r, lastApplied: r.spec }, opContext()));
  return { planned: changes.length, after: after.length };
}

const enabled = sshdAvailable();
if (!enabled && process.env.CI) {
  describe('OpenSSH host kinds', () => {
    it('needs sshd (CI installs openssh-server)', () => {
      throw new Error(SSHD_MISSING);
    });
  });
}

describe.skipIf(!enabled)('host kinds against OpenSSH', () => {
  let sshd: OpenSshServer;
  let s: SshSession;
  let root: string;

  beforeAll(async () => {
    sshd = await startOpenSsh({ cleanHome: true });
    root = sshd.remoteRoot;
    s = await sshProvider.open(sshTarget(sshd), { secrets, signal: AbortSignal.timeout(15_000), log: testLog(), connectTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    await s?.close();
    await sshd?.stop();
  });

  describe('ssh.Line', () => {
    const original = '# sshd_config (someone else owns it)\n#PermitRootLogin yes\nPort 22\n\n\tMatch User x  \nPermitRootLogin yes\nlast line without newline';

    it('replaces the matched lines in place, leaves every other byte, keeps mode, owner and inode-independent content; then is a no-op', async () => {
      const path = `${root}/sshd_config`;
      writeFileSync(path, original);
      chmodSync(path, 0o600);
      const r = makeResource<LineSpec>('ssh.Line', 'root-login', { path, line: 'PermitRootLogin no', match: '^#?PermitRootLogin\\s' });
      expect(await converge(s, lineKind, r)).toEqual({ planned: 1, after: 0 });
      expect(readFileSync(path, 'utf8')).toBe('# sshd_config (someone else owns it)\nPermitRootLogin no\nPort 22\n\n\tMatch User x  \nlast line without newline');
      expect(statSync(path).mode & 0o7777).toBe(0o600);
      expect(readdirSync(root).filter((n) => n.includes('.plumb-'))).toEqual([]);
      // Converged: the read finds nothing to do, and the SFTP log shows no write.
      const writes = sshd.sftpWrites();
      expect(await converge(s, lineKind, r)).toEqual({ planned: 0, after: 0 });
      expect(sshd.sftpWrites()).toBe(writes);
    });

    it('appends to a file that lacks it, and removal takes out only its own line', async () => {
      const path = `${root}/sysctl.conf`;
      writeFileSync(path, 'net.ipv4.ip_forward = 1\n');
      const r = makeResource<LineSpec>('ssh.Line', 'swap', { path, line: 'vm.swappiness = 10' });
      expect(await converge(s, lineKind, r)).toEqual({ planned: 1, after: 0 });
      expect(readFileSync(path, 'utf8')).toBe('net.ipv4.ip_forward = 1\nvm.swappiness = 10\n');
      // Someone edits the file meanwhile: their line stays.
      writeFileSync(path, `${readFileSync(path, 'utf8')}kernel.x = 2\n`);
      await lineKind.remove!(s, r, opContext());
      expect(readFileSync(path, 'utf8')).toBe('net.ipv4.ip_forward = 1\nkernel.x = 2\n');
      expect(await lineKind.read(s, r, opContext())).toBeUndefined();
    });

    it('three-way: a changed line replaces the one Plumb set; state absent removes it', async () => {
      const path = `${root}/limits.conf`;
      writeFileSync(path, '# limits\n');
      const v1 = makeResource<LineSpec>('ssh.Line', 'nofile', { path, line: '* soft nofile 1024' });
      await converge(s, lineKind, v1);
      const v2: Resource<LineSpec> = { ...makeResource<LineSpec>('ssh.Line', 'nofile', { path, line: '* soft nofile 65536' }), lastApplied: v1.spec };
      const changes = lineKind.diff(v2, await lineKind.read(s, v2, opContext()));
      expect(changes).toEqual([{ path: '/line', before: ['* soft nofile 1024'], after: '* soft nofile 65536', note: `replace line 2 of ${path}` }]);
      await lineKind.apply(s, v2, changes, opContext());
      expect(readFileSync(path, 'utf8')).toBe('# limits\n* soft nofile 65536\n');
      // Turned absent naming another line: the line Plumb set goes too, as planned.
      const gone: Resource<LineSpec> = { ...makeResource<LineSpec>('ssh.Line', 'nofile', { path, line: '* soft nofile 1', state: 'absent' }), lastApplied: v2.spec };
      const removal = lineKind.diff(gone, await lineKind.read(s, gone, opContext()));
      expect(removal).toEqual([{ path: '/state', before: ['* soft nofile 65536'], after: 'absent', note: `remove line 2 from ${path}` }]);
      await lineKind.apply(s, gone, removal, opContext());
      expect(readFileSync(path, 'utf8')).toBe('# limits\n');
    });

    it('two Lines of one file edited at once on one session (ops run in parallel per target): both land', async () => {
      const path = `${root}/parallel.conf`;
      writeFileSync(path, '# shared\n');
      const rs = ['a = 1', 'b = 2', 'c = 3', 'd = 4'].map((line, i) => makeResource<LineSpec>('ssh.Line', `p${i}`, { path, line }));
      await Promise.all(rs.map((r) => converge(s, lineKind, r)));
      expect(readFileSync(path, 'utf8').split('\n').sort()).toEqual(['', '# shared', 'a = 1', 'b = 2', 'c = 3', 'd = 4']);
    });

    it('cleanup removes the temporary file a journaled write left behind, and nothing that is not one', async () => {
      const r = makeResource<LineSpec>('ssh.Line', 'tmp', { path: `${root}/x.conf`, line: 'x' });
      const tmp = `${root}/.x.conf.plumb-0123456789ab`;
      const other = `${root}/x.conf.bak`;
      writeFileSync(tmp, 'half');
      writeFileSync(other, 'keep');
      expect(await lineKind.cleanup!(s, r, { tmp }, opContext())).toBe(true);
      expect(existsSync(tmp)).toBe(false);
      expect(await lineKind.cleanup!(s, r, { tmp: other }, opContext())).toBe(false);
      expect(await userKind.cleanup!(s, makeResource<UserSpec>('ssh.User', 'u', { name: 'u' }), { tmp: other }, opContext())).toBe(false);
      expect(readFileSync(other, 'utf8')).toBe('keep');
    });

    it('refuses a missing file and a symlink, writing nothing', async () => {
      const r = makeResource<LineSpec>('ssh.Line', 'missing', { path: `${root}/nope.conf`, line: 'x' });
      const changes = lineKind.diff(r, await lineKind.read(s, r, opContext()));
      await expect(lineKind.apply(s, r, changes, opContext())).rejects.toThrow(SpecError);
      await expect(lineKind.apply(s, r, changes, opContext())).rejects.toThrow(/does not exist on web1; ssh\.Line edits a line of an existing file/);
      const real = `${root}/real.conf`;
      writeFileSync(real, 'a\n');
      symlinkSync(real, `${root}/link.conf`);
      const viaLink = makeResource<LineSpec>('ssh.Line', 'link', { path: `${root}/link.conf`, line: 'x' });
      const linkChanges = lineKind.diff(viaLink, await lineKind.read(s, viaLink, opContext()));
      expect(linkChanges.map((c) => c.path)).toEqual(['/type']);
      await expect(lineKind.apply(s, viaLink, linkChanges, opContext())).rejects.toThrow(/is a symlink, not a regular file/);
      expect(readFileSync(real, 'utf8')).toBe('a\n');
      expect(lstatSync(`${root}/link.conf`).isSymbolicLink()).toBe(true);
    });
  });

describe.skipIf(!enabled || !canFakeApt())('ssh.Package against OpenSSH and this machine\'s dpkg', () => {
  let sshd: OpenSshServer;
  let s: SshSession;
  let apt: FakeApt;
  const tag = `plumbtest-${randomBytes(4).toString('hex')}`;
  const pkgA = `${tag}-a`;
  const pkgB = `${tag}-b`;
  const pkgC = `${tag}-c`;
  const installed = (name: string): Promise<boolean> => apt.installed(name);
  const calls = (): string[] => apt.calls();

  beforeAll(async () => {
    apt = fakeApt(tag);
    await apt.build(pkgA);
    await apt.build(pkgB);
    await apt.build(pkgC, pkgA); // depends on a: removing a would take c along
    sshd = await startOpenSsh({ cleanHome: true, env: { PATH: apt.path } });
    s = await sshProvider.open(sshTarget(sshd), { secrets, signal: AbortSignal.timeout(15_000), log: testLog(), connectTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    await s?.close();
    await sshd?.stop();
    await apt?.cleanup();
  });

  it('installed packages (dpkg, openssh-server) are converged: one shared query, no package-manager call, dpkg untouched', async () => {
    const status = statSync('/var/lib/dpkg/status').mtimeMs;
    const rs = [makeResource<PackageSpec>('ssh.Package', 'dpkg', { name: 'dpkg' }), makeResource<PackageSpec>('ssh.Package', 'sshd', { names: ['openssh-server', 'libc6:amd64'] })];
    const execs = (): number => count(sshd.log(), /Starting session: command/);
    await packageKind.readMany!(s, [rs[0]!], opContext()); // the manager is detected once per session, here
    const before = execs();
    const actuals = await packageKind.readMany!(s, rs, opContext());
    expect(await waitForCount(execs, before + 1)).toBe(before + 1);
    expect(rs.map((r, i) => packageKind.diff(r, actuals[i]))).toEqual([[], []]);
    expect(actuals[0]?.packages.dpkg).toMatchObject({ installed: true, version: expect.stringMatching(/^\d/) });
    expect(calls()).toEqual([]);
    expect(statSync('/var/lib/dpkg/status').mtimeMs).toBe(status);
  });

  it('an absent package is planned as an install; latest plans an upgrade when the local metadata knows a newer one', async () => {
    const r = makeResource<PackageSpec>('ssh.Package', 'a', { name: pkgA });
    expect(packageKind.diff(r, await packageKind.read(s, r, opContext()))).toEqual([{ path: '/name', before: null, after: 'installed', note: `install ${pkgA}` }]);
    const latest = makeResource<PackageSpec>('ssh.Package', 'dpkg', { name: 'dpkg', state: 'latest' });
    const actual = await packageKind.read(s, latest, opContext());
    const { stdout } = await run('apt-cache', ['policy', 'dpkg']);
    const candidate = /Candidate:\s*(\S+)/.exec(stdout)?.[1];
    const changes = packageKind.diff(latest, actual);
    if (candidate && candidate !== '(none)' && candidate !== actual?.packages.dpkg?.version) expect(changes).toEqual([expect.objectContaining({ path: '/name', after: candidate })]);
    else expect(changes).toEqual([]);
    expect(calls()).toEqual([]);
  });

  it('two resources are installed by one apt-get run (after a dry run), noninteractive; then converged', async () => {
    const a = makeResource<PackageSpec>('ssh.Package', 'a', { name: pkgA });
    const bc = makeResource<PackageSpec>('ssh.Package', 'bc', { names: [pkgB, pkgC] });
    const actuals = await packageKind.readMany!(s, [a, bc], opContext());
    const items = [a, bc].map((r, i) => ({ r: r as Resource, changes: packageKind.diff(r, actuals[i]), remove: false, actual: actuals[i] }));
    await packageKind.applyBatch!(s, items, opContext());
    expect(calls()).toEqual([expect.stringMatching(new RegExp(`-s .* install '?${pkgA}'? '?${pkgB}'? '?${pkgC}'? DEBIAN_FRONTEND=noninteractive$`)), expect.stringMatching(new RegExp(`DPkg::Lock::Timeout=120 .*install ${pkgA} ${pkgB} ${pkgC} DEBIAN_FRONTEND=noninteractive$`))]);
    expect([await installed(pkgA), await installed(pkgB), await installed(pkgC)]).toEqual([true, true, true]);
    const after = await packageKind.readMany!(s, [a, bc], opContext());
    expect([packageKind.diff(a, after[0]), packageKind.diff(bc, after[1])]).toEqual([[], []]);
  });

  it('a removal apt would widen (a dependent package along) is refused before anything changes', async () => {
    const gone = makeResource<PackageSpec>('ssh.Package', 'a', { name: pkgA, state: 'absent' });
    const changes = packageKind.diff(gone, await packageKind.read(s, gone, opContext()));
    const before = calls().length;
    const err = await packageKind.apply(s, gone, changes, opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).message).toBe(`ssh web1: remove ${pkgA} would also remove ${pkgC}, which no spec sets to state: absent; Plumb removes only packages a spec names. Nothing was changed`);
    expect((err as SpecError).notSent).toBe(true);
    expect(calls().slice(before)).toHaveLength(1); // the dry run only
    expect(await installed(pkgA)).toBe(true);
  });

  it('state absent removes exactly the named packages', async () => {
    const gone = makeResource<PackageSpec>('ssh.Package', 'bc', { names: [pkgC, pkgB], state: 'absent' });
    const changes = packageKind.diff(gone, await packageKind.read(s, gone, opContext()));
    expect(changes.map((c) => c.note)).toEqual([`remove ${pkgC}`, `remove ${pkgB}`]);
    await packageKind.apply(s, gone, changes, opContext());
    expect([await installed(pkgA), await installed(pkgB), await installed(pkgC)]).toEqual([true, false, false]);
    expect(packageKind.diff(gone, await packageKind.read(s, gone, opContext()))).toEqual([]);
  });

  it('a failing run is PLUMB_COMMAND_FAILED with the manager\'s output in the message', async () => {
    const missing = makeResource<PackageSpec>('ssh.Package', 'nope', { name: `${tag}-missing` });
    const changes = packageKind.diff(missing, await packageKind.read(s, missing, opContext()));
    const err = await packageKind.apply(s, missing, changes, opContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect((err as Error).message).toContain(`E: Unable to locate package ${tag}-missing`);
    expect((err as Error).message).toMatch(/^ssh web1: apt-get -s \(install .*\) exited 100; nothing was changed/);
  });
});
});

describe.skipIf(!enabled || process.getuid?.() !== 0 || !existsSync('/usr/sbin/useradd'))('ssh.User and ssh.Group against OpenSSH (as root, throwaway names)', () => {
  let sshd: OpenSshServer;
  let s: SshSession;
  let work: string;
  const tag = `plumbtest-${randomBytes(3).toString('hex')}`;
  const user = tag;
  const team = `${tag}-g`;
  const other = `${tag}-o`;
  const keys: string[] = [];
  const getent = async (db: string, key: string): Promise<string | undefined> => {
    try {
      return (await run('getent', [db, key])).stdout.trim();
    } catch {
      return undefined;
    }
  };
  const groupsOf = async (name: string): Promise<string[]> => (await run('id', ['-Gn', name])).stdout.trim().split(/\s+/).filter((g) => g !== name).sort();

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'plumb-users-'));
    for (const n of ['k1', 'k2', 'k3']) {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${n}@plumb-test`, '-f', join(work, n)]);
      keys.push(readFileSync(join(work, `${n}.pub`), 'utf8').trim());
    }
    sshd = await startOpenSsh({ cleanHome: true });
    s = await sshProvider.open(sshTarget(sshd), { secrets, signal: AbortSignal.timeout(15_000), log: testLog(), connectTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    await s?.close();
    await sshd?.stop();
    if (await getent('passwd', user)) await run('userdel', ['-r', user]).catch(() => undefined);
    for (const g of [team, other]) if (await getent('group', g)) await run('groupdel', [g]).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('ssh.Group: created with its gid, converged, gid changed, removed', async () => {
    const free = 40000 + (randomBytes(2).readUInt16BE(0) % 20000);
    const g = makeResource<GroupSpec>('ssh.Group', 'team', { name: team, gid: free });
    expect(await converge(s, groupKind, g)).toEqual({ planned: 1, after: 0 });
    expect(await getent('group', team)).toBe(`${team}:x:${free}:`);
    expect(await converge(s, groupKind, g)).toEqual({ planned: 0, after: 0 });
    const moved = makeResource<GroupSpec>('ssh.Group', 'team', { name: team, gid: free + 1 });
    expect(groupKind.diff(moved, await groupKind.read(s, moved, opContext()))).toEqual([{ path: '/gid', before: free, after: free + 1 }]);
    expect(await converge(s, groupKind, moved)).toEqual({ planned: 1, after: 0 });
    const gone = makeResource<GroupSpec>('ssh.Group', 'other', { name: other });
    await converge(s, groupKind, gone);
    await groupKind.remove!(s, gone, opContext());
    expect(await getent('group', other)).toBeUndefined();
    expect(await groupKind.read(s, gone, opContext())).toBeUndefined();
    await converge(s, groupKind, makeResource<GroupSpec>('ssh.Group', 'other', { name: other }));
  });

  it('groups created at once on one session all land (account changes take turns on the session)', async () => {
    const names = [0, 1, 2, 3].map((i) => `${tag}-p${i}`);
    try {
      const results = await Promise.all(names.map((name) => converge(s, groupKind, makeResource<GroupSpec>('ssh.Group', name, { name }))));
      expect(results).toEqual(names.map(() => ({ planned: 1, after: 0 })));
    } finally {
      for (const g of names) if (await getent('group', g)) await run('groupdel', [g]).catch(() => undefined);
    }
  });

  it('ssh.User: created with groups, shell and keys; ~/.ssh 0700 and authorized_keys 0600 owned by the user; converged', async () => {
    const u = makeResource<UserSpec>('ssh.User', 'u', { name: user, shell: '/bin/sh', groups: [team], authorizedKeys: [keys[0]!, keys[1]!] });
    expect(userKind.diff(u, await userKind.read(s, u, opContext()))).toEqual([{ path: '/state', before: 'absent', after: 'present', note: `create user ${user}` }]);
    expect(await converge(s, userKind, u)).toEqual({ planned: 1, after: 0 });
    const entry = (await getent('passwd', user))!.split(':');
    expect(entry[6]).toBe('/bin/sh');
    const home = entry[5]!;
    expect(await groupsOf(user)).toEqual([team]);
    const path = `${home}/.ssh/authorized_keys`;
    expect(readFileSync(path, 'utf8')).toBe(`${keys[0]}\n${keys[1]}\n`);
    expect(statSync(path).mode & 0o7777).toBe(0o600);
    expect(statSync(`${home}/.ssh`).mode & 0o7777).toBe(0o700);
    expect([statSync(path).uid, statSync(`${home}/.ssh`).uid]).toEqual([Number(entry[2]), Number(entry[2])]);
    expect(await converge(s, userKind, u)).toEqual({ planned: 0, after: 0 });
  });

  it('three-way: a group and a key Plumb added and the spec dropped go; the ones someone else added stay; a wrong mode is fixed', async () => {
    const v1: UserSpec = { name: user, shell: '/bin/sh', groups: [team], authorizedKeys: [keys[0]!, keys[1]!] };
    const home = (await getent('passwd', user))!.split(':')[5]!;
    const path = `${home}/.ssh/authorized_keys`;
    // Someone else: another group, a key of their own, and a loose mode.
    await run('usermod', ['-a', '-G', other, user]);
    writeFileSync(path, `${readFileSync(path, 'utf8')}# ops key\n${keys[2]}\n`);
    chmodSync(path, 0o644);
    const v2: Resource<UserSpec> = { ...makeResource<UserSpec>('ssh.User', 'u', { name: user, shell: '/bin/sh', groups: [], authorizedKeys: [keys[0]!] }), lastApplied: v1 };
    const changes = userKind.diff(v2, await userKind.read(s, v2, opContext()));
    expect(changes).toEqual([
      { path: '/groups', before: [other, team].sort(), after: [other], note: `remove ${team} (Plumb added)` },
      { path: '/authorizedKeys', before: 3, after: 2, note: 'remove 1 key Plumb added; authorized_keys is 0644 ' + `${statSync(path).uid}:${statSync(path).gid}, want 0600 ${statSync(path).uid}:${statSync(path).gid}` },
    ]);
    await userKind.apply(s, v2, changes, opContext(), await userKind.read(s, v2, opContext()));
    expect(await groupsOf(user)).toEqual([other]);
    expect(readFileSync(path, 'utf8')).toBe(`${keys[0]}\n# ops key\n${keys[2]}\n`);
    expect(statSync(path).mode & 0o7777).toBe(0o600);
    expect(userKind.diff({ ...v2, lastApplied: v2.spec }, await userKind.read(s, { ...v2, lastApplied: v2.spec }, opContext()))).toEqual([]);
  });

  it('state absent deletes the account and keeps its home unless removeHome; the resource\'s removal likewise', async () => {
    const home = (await getent('passwd', user))!.split(':')[5]!;
    const gone = makeResource<UserSpec>('ssh.User', 'u', { name: user, state: 'absent' });
    expect(userKind.diff(gone, await userKind.read(s, gone, opContext()))).toEqual([{ path: '/state', before: 'present', after: 'absent', note: `delete user ${user} (its home stays)` }]);
    expect(await converge(s, userKind, gone)).toEqual({ planned: 1, after: 0 });
    expect(await getent('passwd', user)).toBeUndefined();
    expect(existsSync(`${home}/.ssh/authorized_keys`)).toBe(true);
    rmSync(home, { recursive: true, force: true });
    // Created again, then deleted as a resource with removeHome: the home goes too.
    const again = makeResource<UserSpec>('ssh.User', 'u', { name: user, removeHome: true, authorizedKeys: [keys[0]!] });
    await converge(s, userKind, again);
    expect(existsSync(`${home}/.ssh/authorized_keys`)).toBe(true);
    await userKind.remove!(s, again, opContext());
    expect(await getent('passwd', user)).toBeUndefined();
    expect(existsSync(home)).toBe(false);
  });

  it('a hostile name never reaches a shell as syntax: the read is quoted, the user is simply absent', async () => {
    for (const name of [`x'$(touch ${work}/pwned)'`, '`touch /tmp/plumb-pwned`', 'a;b']) {
      const r = makeResource<UserSpec>('ssh.User', 'h', { name });
      expect(await userKind.read(s, r, opContext())).toBeUndefined();
    }
    expect(existsSync(join(work, 'pwned'))).toBe(false);
    expect(existsSync('/tmp/plumb-pwned')).toBe(false);
  });
});
