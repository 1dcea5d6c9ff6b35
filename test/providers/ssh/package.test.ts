/** ssh.Package without a host: detection, parsing of dpkg-query/rpm/apt/dnf output, diff, the one command line, quoting. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  choosePackageManager,
  compareDebianVersions,
  managerCommand,
  packageKind,
  parseAptPolicy,
  parseDnfUpgrades,
  parseInstalled,
  parseOsRelease,
  planPackages,
  queryCommand,
  simulatedRemovals,
  versionMatches,
  type PackageActual,
  type PackageSpec,
} from '../../../providers/ssh/kinds/package.js';
import { shellQuote } from '../../../providers/ssh/remote.js';
import { ProviderError } from '../../../src/errors.js';
import { makeResource } from '../../helpers/resources.js';

const run = promisify(execFile);
const APT = { kind: 'apt', command: 'apt-get' } as const;
const DNF = { kind: 'dnf', command: 'dnf' } as const;

describe('shellQuote: every command line goes through it', () => {
  const hostile = [`it's`, `a'b'c`, `$(touch /tmp/pwned)`, '`id`', '"; rm -rf / #', 'a b\tc', 'line1\nline2', '\\', '$HOME', '*', '-rf', '', "''", '!event', '~root'];
  it.each(hostile)('%j reaches a real sh as exactly itself', async (value) => {
    const { stdout } = await run('sh', ['-c', `printf %s ${shellQuote(value)}`]);
    expect(stdout).toBe(value);
  });

  it('quotes every name and version of a package command, so nothing there is shell syntax', async () => {
    const plan = { install: [`a'b=$(id)`], upgrade: ['`x`'], remove: ['y;z'], pinned: true };
    const line = managerCommand(APT, plan);
    // Run it with an apt-get first on PATH that prints its arguments one per line.
    const bin = mkdtempSync(join(tmpdir(), 'plumb-fake-apt-'));
    writeFileSync(join(bin, 'apt-get'), '#!/bin/sh\nfor a in "$@"; do printf \'%s\\n\' "$a"; done\n', { mode: 0o755 });
    try {
      const { stdout } = await run('sh', ['-c', line], { env: { PATH: `${bin}:/usr/bin:/bin` } });
      expect(stdout.split('\n').slice(-4, -1)).toEqual([`a'b=$(id)`, '`x`', 'y;z-']);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('package manager detection', () => {
  it('parses /etc/os-release', () => {
    expect(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nID_LIKE=\'rhel fedora\'\n# c\n')).toEqual({ PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', ID: 'debian', ID_LIKE: 'rhel fedora' });
  });

  it('apt with dpkg-query + apt-get, dnf (or yum) with rpm; both: the os family decides; neither: an error naming the host', () => {
    const tools = (...t: string[]): Set<string> => new Set(t);
    expect(choosePackageManager('web1', { ID: 'debian' }, tools('dpkg-query', 'apt-get'))).toEqual(APT);
    expect(choosePackageManager('web1', { ID: 'rocky', ID_LIKE: 'rhel centos fedora' }, tools('rpm', 'dnf'))).toEqual(DNF);
    expect(choosePackageManager('web1', { ID: 'centos' }, tools('rpm', 'yum'))).toEqual({ kind: 'dnf', command: 'yum' });
    expect(choosePackageManager('web1', { ID: 'ubuntu', ID_LIKE: 'debian' }, tools('dpkg-query', 'apt-get', 'rpm', 'dnf'))).toEqual(APT);
    expect(choosePackageManager('web1', { ID: 'fedora' }, tools('dpkg-query', 'apt-get', 'rpm', 'dnf'))).toEqual(DNF);
    expect(() => choosePackageManager('web1', { PRETTY_NAME: 'Alpine Linux v3.20' }, tools('apk'))).toThrow(ProviderError);
    expect(() => choosePackageManager('web1', { PRETTY_NAME: 'Alpine Linux v3.20' }, tools('apk'))).toThrow(/no supported package manager on web1 \(Alpine Linux v3\.20\)/);
    expect(() => choosePackageManager('web1', {}, tools('dpkg-query'))).toThrow(/on web1/); // dpkg without apt-get cannot install
  });
});

describe('parsing', () => {
  it('dpkg-query rows: installed (ii, iW, it), not installed (rc, un, iU, iF, iH)', () => {
    const text = ['dpkg\tamd64\tii \t1.21.22', 'old\tamd64\trc \t1.0', 'gone\tamd64\tun \t', 'half\tamd64\tiU \t2', 'trig\tall\tiW \t3', 'trig2\tall\tit \t4', 'broken\tamd64\tiHR\t5', 'noise line', ''].join('\n');
    expect(parseInstalled(text).map((r) => [r.name, r.installed])).toEqual([
      ['dpkg', true],
      ['old', false],
      ['gone', false],
      ['half', false],
      ['trig', true],
      ['trig2', true],
      ['broken', false],
    ]);
  });

  it('rpm rows: "(none)" epochs dropped; "package x is not installed" lines ignored', () => {
    const rows = parseInstalled('bash\tx86_64\tii \t0:5.1.8-9.el9\npackage nosuch is not installed\nkernel\tx86_64\tii \t(none):5.14.0-1\n');
    expect(rows.map((r) => [r.name, r.version])).toEqual([
      ['bash', '0:5.1.8-9.el9'],
      ['kernel', '5.14.0-1'],
    ]);
  });

  it('apt-cache policy candidates, "(none)" as no candidate', () => {
    const text = 'dpkg:\n  Installed: 1.21.22\n  Candidate: 1.21.23\n  Version table:\n     1.21.23 500\nlibfoo:\n  Installed: (none)\n  Candidate: (none)\n';
    expect([...parseAptPolicy(text)]).toEqual([
      ['dpkg', '1.21.23'],
      ['libfoo', undefined],
    ]);
  });

  it('dnf list --upgrades', () => {
    const text = 'Available Upgrades\nbash.x86_64                5.1.8-10.el9            baseos\ncurl.x86_64   7.76.1-30.el9  appstream\n';
    expect([...parseDnfUpgrades(text)]).toEqual([
      ['bash', '5.1.8-10.el9'],
      ['curl', '7.76.1-30.el9'],
    ]);
  });

  it('apt-get -s removals', () => {
    expect(simulatedRemovals('Reading package lists...\nRemv foo [1.0]\nRemv libbar:amd64 [2]\nInst baz (1 Debian)\n')).toEqual(['foo', 'libbar']);
  });

  it('versions: dpkg exact; rpm with or without a 0 epoch or the release', () => {
    expect(versionMatches('apt', '1:9.2p1-2', '1:9.2p1-2')).toBe(true);
    expect(versionMatches('apt', '1:9.2p1-2', '9.2p1-2')).toBe(false);
    expect(versionMatches('dnf', '0:5.1.8-9.el9', '5.1.8-9.el9')).toBe(true);
    expect(versionMatches('dnf', '0:5.1.8-9.el9', '5.1.8')).toBe(true);
    expect(versionMatches('dnf', '0:5.1.8-9.el9', '5.1.9')).toBe(false);
  });

  it('the query is one command for many names, names quoted', () => {
    expect(queryCommand(APT, ['a', 'b'], [])).toBe(`LC_ALL=C dpkg-query -W -f='\${Package}\\t\${Architecture}\\t\${db:Status-Abbrev}\\t\${Version}\\n' 'a' 'b' 2>/dev/null; true`);
    expect(queryCommand(APT, ['a'], ['a'])).toContain(`apt-cache policy 'a'`);
    expect(queryCommand(DNF, ['a'], ['a'])).toContain(`rpm -q --qf`);
  });
});

describe('diff and the batch plan', () => {
  const actual = (packages: PackageActual['packages']): PackageActual => ({ manager: 'apt', packages });
  const r = (spec: PackageSpec) => makeResource<PackageSpec>('ssh.Package', 'p', spec);

  it('present: installed is converged; missing is an install at its pointer', () => {
    expect(packageKind.diff(r({ names: ['a', 'b'] }), actual({ a: { installed: true, version: '1' }, b: { installed: true, version: '2' } }))).toEqual([]);
    expect(packageKind.diff(r({ names: ['a', 'b'] }), actual({ a: { installed: true, version: '1' }, b: { installed: false } }))).toEqual([{ path: '/names/1', before: null, after: 'installed', note: 'install b' }]);
    expect(packageKind.diff(r({ name: 'a' }), undefined)).toEqual([{ path: '/name', before: null, after: 'installed', note: 'install a' }]);
  });

  it('version pins, latest upgrades, absent removes', () => {
    expect(packageKind.diff(r({ name: 'a', version: '2' }), actual({ a: { installed: true, version: '1' } }))).toEqual([{ path: '/version', before: '1', after: '2', note: 'a 1 -> 2' }]);
    expect(packageKind.diff(r({ name: 'a', state: 'latest' }), actual({ a: { installed: true, version: '1', candidate: '3' } }))).toEqual([{ path: '/name', before: '1', after: '3', note: 'upgrade a 1 -> 3' }]);
    expect(packageKind.diff(r({ name: 'a', state: 'latest' }), actual({ a: { installed: true, version: '3', candidate: '3' } }))).toEqual([]);
    expect(packageKind.diff(r({ name: 'a', state: 'absent' }), actual({ a: { installed: true, version: '1' } }))).toEqual([{ path: '/name', before: '1', after: null, note: 'remove a' }]);
    expect(packageKind.diff(r({ name: 'a', state: 'absent' }), undefined)).toEqual([]);
  });

  it('a batch of several resources is one plan: installs, pins, upgrades and removals in one apt-get', () => {
    const items = [
      { r: r({ names: ['a', 'b'] }), changes: [{ path: '/names/1', before: null, after: 'installed' }] },
      { r: r({ name: 'c', version: '1:2.0' }), changes: [{ path: '/version', before: '1:1.0', after: '1:2.0' }] },
      { r: r({ name: 'd', state: 'latest' }), changes: [{ path: '/name', before: '1', after: '2' }] },
      { r: r({ name: 'e', state: 'absent' }), changes: [{ path: '/name', before: '1', after: null }] },
      { r: r({ name: 'f' }), changes: [] },
    ];
    const plan = planPackages('apt', items);
    expect(plan).toEqual({ install: ['b', 'c=1:2.0'], upgrade: ['d'], remove: ['e'], pinned: true });
    const line = managerCommand(APT, plan);
    expect(line).toBe(
      `export DEBIAN_FRONTEND=noninteractive LC_ALL=C; apt-get -q -y -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-downgrades install 'b' 'c=1:2.0' 'd' 'e-' 2>&1`,
    );
    expect(managerCommand(APT, plan, true)).toContain('apt-get -s -q -y');
    expect(managerCommand(DNF, planPackages('dnf', items))).toBe(`{ LC_ALL=C dnf -y -q install 'b' 'c-1:2.0' && LC_ALL=C dnf -y -q upgrade 'd' && LC_ALL=C dnf -y -q remove --noautoremove 'e'; } 2>&1`);
  });

  it('claims one key per package; released says a dropped name stays installed', () => {
    expect(packageKind.claims!({ names: ['a', 'b'] }, 'p')).toEqual([
      { key: ['package', 'a'], label: 'package a', pointer: '/names/0' },
      { key: ['package', 'b'], label: 'package b', pointer: '/names/1' },
    ]);
    const now = { ...r({ names: ['a'] }), lastApplied: { names: ['a', 'b'] } };
    expect(packageKind.released!(now)).toEqual([{ path: '/names', note: 'b is no longer managed and stays installed (Plumb uninstalls only what a spec sets to state: absent)' }]);
    expect(packageKind.remove).toBeUndefined();
  });
});

describe('Debian version order (state: latest upgrades only to a newer candidate)', () => {
  it.each([
    ['1.0', '1.0.1', -1],
    ['1.0~rc1', '1.0', -1],
    ['1.0~~', '1.0~', -1],
    ['1:0.9', '2.0', 1],
    ['1.2-3', '1.2-10', -1],
    ['7.88.1-10+deb12u5', '7.88.1-10+deb12u4', 1],
    ['1.0a', '1.0', 1],
    ['1.0+', '1.0a', 1],
    ['01', '1', 0],
    ['1:9.2p1-2+deb12u3', '1:9.2p1-2+deb12u3', 0],
    ['2.30-1', '2.3-1', 1],
  ])('%s vs %s is %d', (a, b, expected) => {
    expect(compareDebianVersions(a, b)).toBe(expected);
    expect(compareDebianVersions(b, a)).toBe(-expected || 0);
  });

  it('a candidate older than the installed version (a newer .deb installed by hand) is not an upgrade: no change every pass', () => {
    const r = makeResource<PackageSpec>('ssh.Package', 'jq', { name: 'jq', state: 'latest' });
    const actual: PackageActual = { manager: 'apt', packages: { jq: { installed: true, version: '1.7-1', candidate: '1.6-2.1' } } };
    expect(packageKind.diff(r, actual)).toEqual([]);
    actual.packages.jq!.candidate = '1.7.1-1';
    expect(packageKind.diff(r, actual).map((c) => c.note)).toEqual(['upgrade jq 1.7-1 -> 1.7.1-1']);
  });
});
