import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { connect, exec, startTestSimulator, type TestSimulator } from './ssh-client.js';

const FORMAT = `'\${Package}\\t\${Architecture}\\t\${db:Status-Abbrev}\\t\${Version}\\n'`;

describe('ssh simulator: Debian packages', () => {
  let t: TestSimulator;
  let host: SimHost;
  let root: Client;
  let deploy: Client;

  beforeAll(async () => {
    t = await startTestSimulator({
      seed: {
        packages: {
          catalogue: [
            { name: 'libfoo1', versions: ['1.0-1', '1.1-1'] },
            { name: 'foo', versions: ['1.0-1', '1.1-1'], depends: ['libfoo1'], conffiles: true, units: ['foo.service'] },
            { name: 'bar', versions: ['2.0-1'], depends: ['foo'] },
            { name: 'base-thing', versions: ['1'], essential: true },
          ],
          installed: { 'base-thing': '1' },
        },
      },
    });
    host = t.sim.hosts[0] as SimHost;
    root = await connect(host, { privateKey: t.clientKey.private, username: 'root' });
    deploy = await connect(host, { privateKey: t.clientKey.private });
  });
  beforeEach(() => host.resetCounters());
  afterAll(async () => {
    root.end();
    deploy.end();
    await t.dispose();
  });

  it('is a Debian 12 host with dpkg-query and apt-get on the PATH', async () => {
    const res = await exec(root, 'cat /etc/os-release; command -v dpkg-query apt-get apt-cache rpm dnf yum systemctl useradd');
    expect(res.stdout).toContain('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"');
    expect(res.stdout).toContain('VERSION_CODENAME=bookworm');
    expect(res.stdout).toContain('/usr/bin/dpkg-query\n/usr/bin/apt-get\n/usr/bin/apt-cache\n/usr/bin/systemctl\n/usr/sbin/useradd\n');
    expect(res.code).toBe(1);
  });

  it('dpkg-query -W: the format fields, and "no packages found" with exit 1 for unknown names', async () => {
    const res = await exec(root, `LC_ALL=C dpkg-query -W -f=${FORMAT} base-thing nosuch foo`);
    expect(res.stdout).toBe('base-thing\tamd64\tii \t1\n');
    expect(res.stderr).toBe('dpkg-query: no packages found matching nosuch\ndpkg-query: no packages found matching foo\n');
    expect(res.code).toBe(1);
    expect(await exec(root, `dpkg-query -W base-thing`)).toMatchObject({ stdout: 'base-thing\t1\n', code: 0 });
    expect(await exec(root, `dpkg-query --show --showformat='\${Package;-12}|\${Status}\\n' 'base-*'`)).toMatchObject({ stdout: 'base-thing  |install ok installed\n', code: 0 });
  });

  it('dpkg-query refuses unknown options and a missing action', async () => {
    expect(await exec(root, 'dpkg-query -W --bogus foo')).toMatchObject({ code: 2, stderr: expect.stringContaining('dpkg-query: error: unknown option --bogus') });
    expect(await exec(root, 'dpkg-query foo')).toMatchObject({ code: 2, stderr: expect.stringContaining('need an action option') });
  });

  it('apt-cache policy: Installed and Candidate lines', async () => {
    const res = await exec(root, 'apt-cache policy foo base-thing nosuch');
    expect(res.stdout).toContain('foo:\n  Installed: (none)\n  Candidate: 1.1-1\n  Version table:\n     1.1-1 500\n');
    expect(res.stdout).toContain('base-thing:\n  Installed: 1\n  Candidate: 1\n');
    expect(res.stdout).not.toContain('nosuch');
    expect(res.code).toBe(0);
    expect(await exec(root, 'apt-cache show foo')).toMatchObject({ code: 100, stderr: 'E: Invalid operation show\n' });
  });

  it('apt-get -s prints Inst/Conf lines with the dependencies and changes nothing, counting no mutation', async () => {
    const res = await exec(root, 'apt-get -s -q -y -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef install bar 2>&1');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('The following additional packages will be installed:\n  foo libfoo1\n');
    expect(res.stdout).toContain('Inst bar (2.0-1 Debian:12.5/stable [amd64])');
    expect(res.stdout).toContain('Inst libfoo1 (1.1-1 Debian:12.5/stable [amd64])');
    expect(res.stdout).toContain('Conf foo (1.1-1 Debian:12.5/stable [amd64])');
    expect(host.packages.installed()).toEqual({ 'base-thing': '1' });
    expect(host.counters.mutatingCommands).toBe(0);
    expect(host.counters.writes).toBe(0);
  });

  it('apt-get install installs with dependencies, pins versions, and counts one mutating call', async () => {
    const res = await exec(root, 'export DEBIAN_FRONTEND=noninteractive LC_ALL=C; apt-get -q -y -o DPkg::Lock::Timeout=120 install foo=1.0-1 2>&1');
    expect(res.code).toBe(0);
    expect(host.packages.installed()).toEqual({ 'base-thing': '1', foo: '1.0-1', libfoo1: '1.1-1' });
    expect(host.systemd.unit('foo').activeState).toBe('active');
    expect(host.counters.mutatingCommands).toBe(1);
    expect(host.counters.mutatingByCommand).toEqual({ 'apt-get': 1 });
    expect(host.mutationLog[0]).toMatchObject({ command: 'apt-get', user: 'root', argv: ['apt-get', '-q', '-y', '-o', 'DPkg::Lock::Timeout=120', 'install', 'foo=1.0-1'] });
    // Already there: a no-op that still counts as a call.
    const again = await exec(root, 'apt-get -y install libfoo1');
    expect(again.stdout).toContain('libfoo1 is already the newest version (1.1-1).');
    // Upgrade by naming it; a downgrade needs --allow-downgrades with -y.
    expect((await exec(root, 'apt-get -y install foo')).code).toBe(0);
    expect(host.packages.installedVersion('foo')).toBe('1.1-1');
    expect(await exec(root, 'apt-get -y install foo=1.0-1')).toMatchObject({ code: 100, stderr: 'E: Packages were downgraded and -y was used without --allow-downgrades.\n' });
    expect((await exec(root, 'apt-get -y --allow-downgrades install foo=1.0-1')).code).toBe(0);
    expect(host.packages.installedVersion('foo')).toBe('1.0-1');
    expect(host.counters.mutatingCommands).toBe(5);
  });

  it('removing a package removes its dependents (Remv lines in -s); conffiles stay as rc', async () => {
    await exec(root, 'apt-get -y install bar');
    const dry = await exec(root, 'apt-get -s -y install libfoo1-');
    expect(dry.stdout.split('\n').filter((l) => l.startsWith('Remv'))).toEqual(['Remv bar [2.0-1]', 'Remv foo [1.0-1]', 'Remv libfoo1 [1.1-1]']);
    expect(host.packages.installedVersion('bar')).toBe('2.0-1');
    expect((await exec(root, 'apt-get -q -y install libfoo1-')).code).toBe(0);
    expect(host.packages.installed()).toEqual({ 'base-thing': '1' });
    expect(host.systemd.get('foo')).toBeUndefined();
    const rows = await exec(root, `dpkg-query -W -f=${FORMAT} foo bar`);
    expect(rows).toMatchObject({ stdout: 'foo\tamd64\trc \t1.0-1\n', code: 1, stderr: 'dpkg-query: no packages found matching bar\n' });
  });

  it('is strict: unknown packages, versions, options, operations; a non-root real run; a prompt without -y', async () => {
    expect(await exec(root, 'apt-get -y install nosuch')).toMatchObject({ code: 100, stderr: 'E: Unable to locate package nosuch\n' });
    expect(await exec(root, 'apt-get -y install foo=9.9')).toMatchObject({ code: 100, stderr: "E: Version '9.9' for 'foo' was not found\n" });
    expect(await exec(root, 'apt-get -y --bogus install foo')).toMatchObject({ code: 100, stderr: 'E: Command line option --bogus is not understood in combination with the other options\n' });
    expect(await exec(root, 'apt-get -yz install foo')).toMatchObject({ code: 100, stderr: "E: Command line option 'z' [from -z] is not known.\n" });
    expect(await exec(root, 'apt-get -o NoEquals install foo')).toMatchObject({ code: 100 });
    expect(await exec(root, 'apt-get -y frobnicate foo')).toMatchObject({ code: 100, stderr: 'E: Invalid operation frobnicate\n' });
    expect(await exec(deploy, 'apt-get -y install foo')).toMatchObject({ code: 100, stderr: expect.stringContaining('are you root?') });
    expect(await exec(deploy, 'apt-get -s install foo')).toMatchObject({ code: 0, stdout: expect.stringContaining('NOTE: This is only a simulation!') });
    expect(await exec(root, 'apt-get install bar')).toMatchObject({ code: 1, stdout: expect.stringContaining('Do you want to continue? [Y/n] Abort.') });
    expect(await exec(root, 'apt-get -y install base-thing-')).toMatchObject({ code: 100, stderr: 'E: Essential packages were removed and -y was used without --allow-remove-essential.\n' });
    expect((await exec(root, 'apt-get -y install libfoo1')).code).toBe(0);
    expect(await exec(root, 'apt-get -y install bar libfoo1-')).toMatchObject({ code: 100, stderr: expect.stringContaining('E: Unable to correct problems, you have held broken packages.') });
    expect(host.packages.installed()).toEqual({ 'base-thing': '1', libfoo1: '1.1-1' });
  });
});
