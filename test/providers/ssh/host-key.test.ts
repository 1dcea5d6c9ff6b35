import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  entryMatchesHost,
  fingerprintSha256,
  fingerprintsEqual,
  knownHostName,
  loadHostKeyPolicy,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  type HostKeyPolicy,
} from '../../../providers/ssh/host-key.js';
import { SpecError } from '../../../src/errors.js';

// Generated with ssh-keygen -t ed25519; `ssh-keygen -lf` printed the fingerprint below.
const KEY_B64 = 'AAAAC3NzaC1lZDI1NTE5AAAAILqGhDL39v8FMfbGzpCFyZX9JCFJkwUyX0u0TmF/LKDB';
const KEY = Buffer.from(KEY_B64, 'base64');
const FINGERPRINT = 'SHA256:NLgTlF4nTtX575a4WZvWekm8/8bf/j7UXJNpzOiuKIA';
const OTHER_B64 = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
// `ssh-keygen -H` of "[127.0.0.1]:2222 <key>" and "web1.example <key>".
const HASHED_PORT = `|1|/qodjzdkNjCyG/DK9LXkx1PfcZA=|bwqe8xRPhVaiyydHPH/stwmNm+w= ssh-ed25519 ${KEY_B64}`;
const HASHED_NAME = `|1|52taVWiqV/vx/2QHOQE/RnAYdlk=|RJI1psVfs9KVWeG3CodqGf/tp2k= ssh-ed25519 ${KEY_B64}`;

function policy(text: string, hostName: string): HostKeyPolicy {
  return { kind: 'knownHosts', path: '/etc/plumb/known_hosts', hostName, entries: parseKnownHosts(text) };
}

describe('host key fingerprints', () => {
  it('match ssh-keygen -lf (SHA256, base64 without padding)', () => {
    expect(fingerprintSha256(KEY)).toBe(FINGERPRINT);
  });

  it('compare with or without the trailing = and refuse anything else', () => {
    expect(fingerprintsEqual(FINGERPRINT, `${FINGERPRINT}=`)).toBe(true);
    expect(fingerprintsEqual(FINGERPRINT, FINGERPRINT.replace('N', 'M'))).toBe(false);
    expect(fingerprintsEqual(FINGERPRINT, 'SHA256:short')).toBe(false);
  });

  it('a pinned key: accepted when equal, refused with both fingerprints otherwise', () => {
    expect(checkHostKey({ kind: 'fingerprint', fingerprint: FINGERPRINT }, KEY)).toEqual({ ok: true });
    const verdict = checkHostKey({ kind: 'fingerprint', fingerprint: FINGERPRINT }, Buffer.from(OTHER_B64, 'base64'));
    expect(verdict).toMatchObject({ ok: false, expected: FINGERPRINT, presented: fingerprintSha256(Buffer.from(OTHER_B64, 'base64')) });
  });
});

describe('known_hosts', () => {
  it('looks hosts up as ssh does: bare on port 22, [host]:port otherwise', () => {
    expect(knownHostName('web1', 22)).toBe('web1');
    expect(knownHostName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('parses plain, comma-list, marker and hashed lines; skips comments and junk', () => {
    const entries = parseKnownHosts(
      [
        '# a comment',
        '',
        `web1,10.0.0.1 ssh-ed25519 ${KEY_B64} deploy@laptop`,
        `@revoked old.example ssh-ed25519 ${OTHER_B64}`,
        `@cert-authority *.example ssh-ed25519 ${OTHER_B64}`,
        `@bogus x ssh-ed25519 ${KEY_B64}`,
        'only-two fields',
        'host ssh-ed25519 !!!not-base64!!!',
        HASHED_PORT,
      ].join('\n'),
    );
    expect(entries.map((e) => [e.line, e.marker ?? null, e.hosts.kind])).toEqual([
      [3, null, 'patterns'],
      [4, 'revoked', 'patterns'],
      [5, 'cert-authority', 'patterns'],
      [9, null, 'hashed'],
    ]);
    expect(entries[0]?.key.equals(KEY)).toBe(true);
    expect(entries[0]?.hosts).toEqual({ kind: 'patterns', patterns: ['web1', '10.0.0.1'] });
  });

  it('matches hashed names exactly as ssh-keygen -H wrote them', () => {
    const [port, name] = parseKnownHosts(`${HASHED_PORT}\n${HASHED_NAME}`);
    expect(entryMatchesHost(port!, '[127.0.0.1]:2222')).toBe(true);
    expect(entryMatchesHost(port!, '[127.0.0.1]:2223')).toBe(false);
    expect(entryMatchesHost(port!, '127.0.0.1')).toBe(false);
    expect(entryMatchesHost(name!, 'web1.example')).toBe(true);
    expect(checkHostKey(policy(HASHED_PORT, '[127.0.0.1]:2222'), KEY)).toEqual({ ok: true });
  });

  it('wildcards, case and negation follow OpenSSH', () => {
    const [e] = parseKnownHosts(`*.example,!bad.example ssh-ed25519 ${KEY_B64}`);
    expect(entryMatchesHost(e!, 'WEB1.example')).toBe(true);
    expect(entryMatchesHost(e!, 'bad.example')).toBe(false);
    expect(entryMatchesHost(e!, 'example')).toBe(false);
    const [q] = parseKnownHosts(`[10.0.0.?]:2222 ssh-ed25519 ${KEY_B64}`);
    expect(entryMatchesHost(q!, '[10.0.0.7]:2222')).toBe(true);
    expect(entryMatchesHost(q!, '[10.0.0.17]:2222')).toBe(false);
  });

  it('accepts a listed key, refuses a changed one, an unknown host and a revoked key', () => {
    const text = `[h]:2222 ssh-ed25519 ${KEY_B64}\nother ssh-ed25519 ${OTHER_B64}\n`;
    expect(checkHostKey(policy(text, '[h]:2222'), KEY)).toEqual({ ok: true });
    expect(checkHostKey(policy(text, '[h]:2222'), Buffer.from(OTHER_B64, 'base64'))).toMatchObject({ ok: false, expected: FINGERPRINT });
    expect(checkHostKey(policy(text, 'nowhere'), KEY)).toMatchObject({ ok: false, expected: '(none listed)' });
    const revoked = `${text}@revoked [h]:2222 ssh-ed25519 ${KEY_B64}\n`;
    expect(checkHostKey(policy(revoked, '[h]:2222'), KEY)).toMatchObject({ ok: false, reason: expect.stringContaining('@revoked') });
  });

  it('ignores @cert-authority lines (no certificate support): they do not vouch for a key', () => {
    expect(checkHostKey(policy(`@cert-authority h ssh-ed25519 ${KEY_B64}`, 'h'), KEY)).toMatchObject({ ok: false });
  });

  it('prefers the host key algorithms known_hosts lists for the host', () => {
    const text = `h ssh-rsa ${KEY_B64}\nh ssh-ed25519 ${KEY_B64}\nother ecdsa-sha2-nistp256 ${KEY_B64}\n`;
    expect(preferredHostKeyAlgorithms(policy(text, 'h'))).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(preferredHostKeyAlgorithms(policy(text, 'unknown'))).toBeUndefined();
    expect(preferredHostKeyAlgorithms({ kind: 'fingerprint', fingerprint: FINGERPRINT })).toBeUndefined();
  });

  it('a target without hostKey or knownHosts, or an unreadable file, is a SpecError (no TOFU)', async () => {
    await expect(loadHostKeyPolicy('web1', {}, 'web1')).rejects.toThrow(/never trusts a host key on first use/);
    await expect(loadHostKeyPolicy('web1', { knownHosts: '/nonexistent/known_hosts' }, 'web1')).rejects.toBeInstanceOf(SpecError);
    await expect(loadHostKeyPolicy('web1', { hostKey: 'MD5:aa:bb' }, 'web1')).rejects.toBeInstanceOf(SpecError);
  });
});
