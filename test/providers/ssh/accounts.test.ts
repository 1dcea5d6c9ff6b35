/** ssh.User and ssh.Group without a host: getent parsing, the read script's output, public keys, three-way lists, diff. */
import { describe, expect, it } from 'vitest';
import { parseGroupLine, parsePasswdLine, MARK } from '../../../providers/ssh/accounts.js';
import { groupKind, type GroupSpec } from '../../../providers/ssh/kinds/group.js';
import { editKeys, groupChanges, keyChanges, keyOf, parseUserRead, userKind, validatePublicKey, type UserActual, type UserSpec } from '../../../providers/ssh/kinds/user.js';
import { SpecError } from '../../../src/errors.js';
import { makeResource } from '../../helpers/resources.js';

const K1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIS6Jm3RTrmA1zbIevywU767GP8P1NdewTCJeZU4FB0H k1';
const K2 = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCryHIE/yJtZ1/6k1FpIHH22uFMaNlV2W2HFHTvWFUqN8hX+b4W0N+LhAmEvz0uv1Xgz6JsU8U79sxf8zv+dCbAPpP8CuGRZOX5vtJZavEYVyaGl9Hn/MHYXiWGQCJA8VU5c8d+xrOdMGr6hVvBqU+LL12sv4s++cynKlFG+ZZil2lD+KHMUt2e5z57i2fz02MTaoI/hv6mrdPy56It+T5niSfDC4PH1boMV/2K/7YL93EkdXg1bQSZ4jgn6E7JuYdT/kJJuS0Y7wHsf2esFaaSb+G8PiYpPWU1cyVL9gImKTR5/u4Kn2Q3N+UD1ua5gtdW3U6l4gKSZmFCk7dp0Lo5 k2';
const blob = (k: string): string => k.split(' ').slice(0, 2).join(' ');

describe('getent parsing', () => {
  it('passwd and group lines; anything else is no entry', () => {
    expect(parsePasswdLine('deploy:x:2001:2001:Deploy,,,:/home/deploy:/bin/bash')).toEqual({ name: 'deploy', uid: 2001, gid: 2001, gecos: 'Deploy,,,', home: '/home/deploy', shell: '/bin/bash' });
    expect(parsePasswdLine('noise from a login shell')).toBeUndefined();
    expect(parsePasswdLine('a:x:notanumber:1::/:/bin/sh')).toBeUndefined();
    expect(parseGroupLine('adm:x:4:syslog,deploy')).toEqual({ name: 'adm', gid: 4, members: ['syslog', 'deploy'] });
    expect(parseGroupLine('empty:x:5:')).toEqual({ name: 'empty', gid: 5, members: [] });
  });

  it('the read script output: entry, primary group, groups without the primary, ~/.ssh and authorized_keys', () => {
    const out = ['deploy:x:2001:2001::/home/deploy:/bin/bash', MARK, 'deploy', MARK, 'deploy adm sudo', MARK, '700 2001 2001 directory', MARK, '644 2001 2001 regular file', MARK, `${K1}`, '# a comment', ''].join('\n');
    const a = parseUserRead('deploy', out)!;
    expect(a).toMatchObject({ uid: 2001, gid: 2001, group: 'deploy', groups: ['adm', 'sudo'], shell: '/bin/bash', home: '/home/deploy' });
    expect(a.sshDir).toEqual({ mode: 0o700, uid: 2001, gid: 2001, type: 'directory' });
    expect(a.keysFile).toEqual({ mode: 0o644, uid: 2001, gid: 2001, type: 'regular file', lines: [K1, '# a comment'] });
    expect(parseUserRead('nobody2', 'plumb-absent:2\n')).toBeUndefined();
    expect(() => parseUserRead('x', 'plumb-absent:127\n')).toThrow(/no getent/);
    // No ~/.ssh: no facts about it, no keys file.
    const bare = parseUserRead('deploy', ['deploy:x:2001:2001::/home/deploy:/bin/bash', MARK, 'deploy', MARK, 'deploy', MARK, MARK, ''].join('\n'))!;
    expect(bare.sshDir).toBeUndefined();
    expect(bare.keysFile).toBeUndefined();
  });
});

describe('public keys', () => {
  it('real .pub lines pass; private keys, fingerprints, swapped types and truncated pastes fail at load', () => {
    expect(() => validatePublicKey(K1, '/authorizedKeys/0')).not.toThrow();
    expect(() => validatePublicKey(K2, '/authorizedKeys/0')).not.toThrow();
    const bad = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'SHA256:NLgTlF4nTtX575a4WZvWekm8/8bf/j7UXJNpzOiuKIA', K1.replace('ssh-ed25519', 'ssh-rsa'), K1.slice(0, 30), 'ssh-foo AAAAB3NzaC1yc2E k', ''];
    for (const line of bad) expect(() => validatePublicKey(line, '/authorizedKeys/0'), line).toThrow(SpecError);
    try {
      validatePublicKey('-----BEGIN OPENSSH PRIVATE KEY-----', '/authorizedKeys/3');
    } catch (err) {
      expect((err as SpecError).pointer).toBe('/authorizedKeys/3');
      expect((err as SpecError).message).toContain('this is a private key; give the .pub line');
    }
  });

  it('a key is known by type and blob, whatever its options or comment', () => {
    expect(keyOf(K1)).toBe(blob(K1));
    expect(keyOf(`from="10.0.0.0/8",no-pty ${blob(K1)} other comment`)).toBe(blob(K1));
    expect(keyOf('# comment')).toBeUndefined();
    expect(keyOf('')).toBeUndefined();
  });

  it('three-way: the spec\'s missing keys are added; keys Plumb set and dropped go; others stay, with their lines', () => {
    const file = [K1, '# ops', `no-pty ${K2}`];
    const { add, remove } = keyChanges({ name: 'u', authorizedKeys: [] }, { name: 'u', authorizedKeys: [K1] }, file);
    expect(add).toEqual([]);
    expect([...remove]).toEqual([blob(K1)]);
    expect(editKeys(file, add, remove)).toEqual(['# ops', `no-pty ${K2}`]);
    // K2 was never Plumb's: dropping nothing keeps it even when the spec lists no keys.
    expect([...keyChanges({ name: 'u', authorizedKeys: [K1] }, undefined, file).remove]).toEqual([]);
    expect(keyChanges({ name: 'u', authorizedKeys: [K1, K2] }, undefined, ['# only a comment']).add).toEqual([K1, K2]);
  });
});

describe('supplementary groups', () => {
  it('adds what the spec lists; takes away only what the last applied spec listed', () => {
    expect(groupChanges({ name: 'u', groups: ['adm', 'docker'] }, undefined, ['adm', 'sudo'])).toEqual({ add: ['docker'], remove: [] });
    expect(groupChanges({ name: 'u', groups: ['adm'] }, { name: 'u', groups: ['adm', 'docker'] }, ['adm', 'docker', 'sudo'])).toEqual({ add: [], remove: ['docker'] });
    // groups left out entirely: the ones Plumb added go, the rest stay.
    expect(groupChanges({ name: 'u' }, { name: 'u', groups: ['docker'] }, ['docker', 'sudo'])).toEqual({ add: [], remove: ['docker'] });
  });
});

describe('ssh.User and ssh.Group diff, claims, normalize', () => {
  const actual: UserActual = { name: 'deploy', uid: 2001, gid: 2001, group: 'deploy', groups: ['sudo'], shell: '/bin/bash', home: '/home/deploy' };
  it('fields the spec sets are compared; others are not managed', () => {
    const r = makeResource<UserSpec>('ssh.User', 'u', { name: 'deploy', uid: 2002, group: 2001, shell: '/bin/zsh' });
    expect(userKind.diff(r, actual)).toEqual([
      { path: '/uid', before: 2001, after: 2002 },
      { path: '/shell', before: '/bin/bash', after: '/bin/zsh' },
    ]);
    expect(userKind.diff(makeResource<UserSpec>('ssh.User', 'u', { name: 'deploy' }), actual)).toEqual([]);
    expect(userKind.diff(makeResource<UserSpec>('ssh.User', 'u', { name: 'deploy', authorizedKeys: [K1] }), actual)).toEqual([{ path: '/authorizedKeys', before: 0, after: 1, note: 'add 1 key' }]);
  });

  it('claims: user name, uid, and authorized_keys as a path when home is known; group name and gid', () => {
    expect(userKind.claims!({ name: 'deploy', uid: 2001, home: '/home/deploy', authorizedKeys: [K1] }, 'u').map((c) => c.key)).toEqual([['user', 'deploy'], ['uid', '2001'], ['path', '/home/deploy/.ssh/authorized_keys']]);
    expect(groupKind.claims!({ name: 'deploy', gid: 2001 }, 'g').map((c) => c.key)).toEqual([['group', 'deploy'], ['gid', '2001']]);
  });

  it('normalize refuses all-digit names, bad keys and a key listed twice', () => {
    expect(() => userKind.normalize!({ name: '1234' })).toThrow(SpecError);
    expect(() => userKind.normalize!({ name: 'u', groups: ['42'] })).toThrow(SpecError);
    expect(() => userKind.normalize!({ name: 'u', authorizedKeys: [K1, `${blob(K1)} other`] })).toThrow(/one key twice/);
    expect(() => groupKind.normalize!({ name: '99' } as GroupSpec)).toThrow(SpecError);
    expect(userKind.normalize!({ name: 'u', home: '/home//u/' }).home).toBe('/home/u');
  });
});
