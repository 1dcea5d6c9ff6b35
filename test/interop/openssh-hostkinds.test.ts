/**
 * Host kinds (ssh.Line, ssh.Package, ssh.User, ssh.Group) against real OpenSSH on
 * loopback. sshd runs on 127.0.0.1 of this machine, so the test checks the host
 * directly (node:fs, getent, dpkg-query).
 */
import { chmodSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshProvider } from '../../providers/ssh/index.js';
import type { SshSession } from '../../providers/ssh/index.js';
import { lineKind, type LineSpec } from '../../providers/ssh/kinds/line.js';
import { SpecError } from '../../src/errors.js';
import type { KindHandler, Resource, Target } from '../../src/provider.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { sshdAvailable, SSHD_MISSING, startOpenSsh, type OpenSshServer } from '../helpers/openssh.js';
import { opContext, testLog } from '../helpers/provider-contract.js';
import { makeResource } from '../helpers/resources.js';

const secrets = new SecretResolver({ env: {} });

function sshTarget(sshd: OpenSshServer): Target {
  return {
    name: 'web1',
    spec: { provider: 'ssh', address: sshd.address, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyRef, hostKey: sshd.hostKeyFingerprint, connectTimeout: '10s' },
  };
}

/** read → diff → apply → read: the changes planned, and the diff after (must be empty). */
async function converge<S>(s: SshSession, h: KindHandler<S, unknown, SshSession>, r: Resource<S>): Promise<{ planned: number; after: number }> {
  const changes = h.diff(r, await h.read(s, r, opContext()));
  if (changes.length > 0) await h.apply(s, r, changes, opContext());
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
      const gone = makeResource<LineSpec>('ssh.Line', 'nofile', { path, line: '* soft nofile 65536', state: 'absent' });
      expect(await converge(s, lineKind, gone)).toEqual({ planned: 1, after: 0 });
      expect(readFileSync(path, 'utf8')).toBe('# limits\n');
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
});
