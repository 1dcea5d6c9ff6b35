/**
 * The host kinds through the whole engine against real OpenSSH on loopback: a
 * pass's package writes on a host are one apt-get run (the runner's per-kind
 * batch), a converged pass costs a few reads and writes nothing, and removing
 * a Package from Git uninstalls nothing.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { canFakeApt, fakeApt, type FakeApt } from '../helpers/fake-apt.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { sshdAvailable, startOpenSsh, type OpenSshServer } from '../helpers/openssh.js';

const run = promisify(execFile);
const yaml = (kind: string, name: string, spec: Record<string, unknown>, meta = ''): string =>
  `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: web1${meta} }\nspec: ${JSON.stringify(spec)}\n`;

describe.skipIf(!sshdAvailable() || !canFakeApt() || process.getuid?.() !== 0)('host kinds through the engine (OpenSSH, root)', () => {
  let sshd: OpenSshServer;
  let apt: FakeApt;
  let repo: TempRepo;
  let engine: Engine;
  const tag = `plumbtest-${randomBytes(3).toString('hex')}`;
  const [pkgA, pkgB] = [`${tag}-a`, `${tag}-b`];
  let conf: string;
  const execs = (): number => (sshd.log().match(/Starting session: command/g) ?? []).length;

  const docs = (parts: string[]): string => parts.join('---\n');
  const target = (): string =>
    `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: web1 }\nspec: { provider: ssh, address: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, privateKey: "${sshd.clientKeyRef}", hostKey: "${sshd.hostKeyFingerprint}", connectTimeout: 10s }\n`;

  beforeAll(async () => {
    apt = fakeApt(tag);
    await apt.build(pkgA);
    await apt.build(pkgB);
    sshd = await startOpenSsh({ cleanHome: true, env: { PATH: apt.path } });
    conf = join(sshd.remoteRoot, 'sysctl.conf');
    writeFileSync(conf, '# someone else\nnet.ipv4.ip_forward = 1\n');
    repo = new TempRepo();
    repo.write('targets.yaml', target());
    repo.write(
      'host.yaml',
      docs([
        yaml('ssh.Package', 'a', { name: pkgA }),
        yaml('ssh.Package', 'b-and-dpkg', { names: [pkgB, 'dpkg'] }),
        yaml('ssh.Package', 'sshd', { name: 'openssh-server' }),
        yaml('ssh.Line', 'swappiness', { path: conf, line: 'vm.swappiness = 10', match: '^vm\\.swappiness\\s*=' }),
      ]),
    );
    repo.commit('host');
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-hostkinds-state-'), run: { backoff: '5ms', maxBackoff: '10ms', maxAttempts: 2 } }),
      providers: builtinProviders(),
      log: silentLog,
      env: {},
    });
  });
  afterAll(async () => {
    await engine?.close();
    await sshd?.stop();
    await apt?.cleanup();
    repo?.cleanup();
  });

  test('first pass: both missing packages in one apt-get run (after its dry run), the installed ones untouched; every resource recorded', async () => {
    const report = await engine.pass();
    const status = Object.fromEntries(report.run!.results.map((r) => [r.id, r.status]));
    expect(status).toEqual({ 'ssh.Package/a': 'changed', 'ssh.Package/b-and-dpkg': 'changed', 'ssh.Package/sshd': 'converged', 'ssh.Line/swappiness': 'changed' });
    const calls = apt.calls();
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatch(new RegExp(`^-s .* install ${pkgA} ${pkgB} DEBIAN_FRONTEND=noninteractive$`));
    expect(calls[1]).toMatch(new RegExp(`^-q -y -o DPkg::Lock::Timeout=120 .* install ${pkgA} ${pkgB} DEBIAN_FRONTEND=noninteractive$`));
    expect([await apt.installed(pkgA), await apt.installed(pkgB)]).toEqual([true, true]);
    expect(readFileSync(conf, 'utf8')).toBe('# someone else\nnet.ipv4.ip_forward = 1\nvm.swappiness = 10\n');
  });

  test('a converged sweep: one exec reads all three package resources, nothing is written', async () => {
    const before = execs();
    const sftpWrites = sshd.sftpWrites();
    const report = await engine.pass({ sweep: true });
    expect(report.run!.results.every((r) => r.status === 'converged')).toBe(true);
    // sshd logs each exec as it starts it; the pass has finished, so the count is final.
    expect(execs() - before).toBe(1);
    expect(apt.calls()).toHaveLength(2);
    expect(sshd.sftpWrites()).toBe(sftpWrites);
  });

  test('a Package removed from Git, or a name dropped from names, uninstalls nothing', async () => {
    repo.write('host.yaml', docs([yaml('ssh.Package', 'b-and-dpkg', { names: ['dpkg'] }), yaml('ssh.Line', 'swappiness', { path: conf, line: 'vm.swappiness = 10', match: '^vm\\.swappiness\\s*=' })]));
    repo.commit('drop a, sshd and b');
    const report = await engine.pass();
    expect(report.run!.results.filter((r) => r.id.startsWith('ssh.Package')).map((r) => [r.id, r.status]).sort()).toEqual([
      ['ssh.Package/a', 'deleted'],
      ['ssh.Package/b-and-dpkg', expect.stringMatching(/^(converged|changed)$/)],
      ['ssh.Package/sshd', 'deleted'],
    ]);
    expect(apt.calls()).toHaveLength(2);
    expect([await apt.installed(pkgA), await apt.installed(pkgB)]).toEqual([true, true]);
    const { stdout } = await run('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', 'openssh-server']);
    expect(stdout.startsWith('ii')).toBe(true);
    expect(engine.store.tombstones()).toEqual([]);
  });
});
