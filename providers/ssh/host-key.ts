/**
 * Host key verification: a pinned `SHA256:` fingerprint or an OpenSSH known_hosts
 * file. There is no trust-on-first-use: an unknown key is refused like a changed one.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SpecError } from '../../src/errors.js';

/** `SHA256:<base64 without padding>` of the raw key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Constant-time comparison of two `SHA256:` fingerprints (padding is ignored). */
export function fingerprintsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a.replace(/=+$/, ''), 'utf8');
  const y = Buffer.from(b.replace(/=+$/, ''), 'utf8');
  // Lengths of fingerprints are public; only the content comparison must not leak.
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface KnownHostEntry {
  /** 1-based line number in the file, for messages. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** Comma list of patterns (`host`, `[host]:port`, wildcards, `!negation`), or a hashed name. */
  hosts: { kind: 'patterns'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
}

/** Parses OpenSSH known_hosts text. Malformed lines are skipped (ssh does the same). */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [hostField, keyType, keyB64] = fields;
    if (hostField === undefined || keyType === undefined || keyB64 === undefined) continue;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(keyB64)) continue;
    const key = Buffer.from(keyB64, 'base64');
    if (key.length === 0) continue;
    let hosts: KnownHostEntry['hosts'];
    if (hostField.startsWith('|1|')) {
      const [, , salt, hash] = hostField.split('|');
      if (salt === undefined || hash === undefined) continue;
      hosts = { kind: 'hashed', salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
    } else {
      hosts = { kind: 'patterns', patterns: hostField.split(',').filter((p) => p !== '') };
    }
    entries.push({ line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  }
  return entries;
}

/** The name ssh looks a host up by: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}

/** Whether an entry applies to `hostName` (OpenSSH semantics: a matching `!pattern` excludes). */
export function entryMatchesHost(entry: KnownHostEntry, hostName: string): boolean {
  if (entry.hosts.kind === 'hashed') {
    const digest = createHmac('sha1', entry.hosts.salt).update(hostName).digest();
    return digest.length === entry.hosts.hash.length && timingSafeEqual(digest, entry.hosts.hash);
  }
  let matched = false;
  for (const pattern of entry.hosts.patterns) {
    if (pattern.startsWith('!')) {
      if (globMatch(pattern.slice(1), hostName)) return false;
    } else if (globMatch(pattern, hostName)) {
      matched = true;
    }
  }
  return matched;
}

function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export type HostKeyPolicy =
  | { kind: 'fingerprint'; fingerprint: string }
  | { kind: 'knownHosts'; path: string; hostName: string; entries: KnownHostEntry[] };

export type HostKeyVerdict = { ok: true } | { ok: false; presented: string; expected: string; reason: string };

/** Decides whether the presented raw key blob is the one we trust for this host. */
export function checkHostKey(policy: HostKeyPolicy, keyBlob: Buffer): HostKeyVerdict {
  const presented = fingerprintSha256(keyBlob);
  if (policy.kind === 'fingerprint') {
    if (fingerprintsEqual(presented, policy.fingerprint)) return { ok: true };
    return { ok: false, presented, expected: policy.fingerprint, reason: 'does not match the pinned hostKey' };
  }
  const mine = policy.entries.filter((e) => e.marker !== 'cert-authority' && entryMatchesHost(e, policy.hostName));
  if (mine.some((e) => e.marker === 'revoked' && sameKey(e.key, keyBlob))) {
    return { ok: false, presented, expected: 'a key not marked @revoked', reason: `is marked @revoked in ${policy.path}` };
  }
  const trusted = mine.filter((e) => e.marker === undefined);
  if (trusted.some((e) => sameKey(e.key, keyBlob))) return { ok: true };
  const expected = trusted.length > 0 ? trusted.map((e) => fingerprintSha256(e.key)).join(' or ') : '(none listed)';
  const reason = trusted.length > 0 ? `is not the key ${policy.path} lists for ${policy.hostName}` : `${policy.path} has no key for ${policy.hostName}`;
  return { ok: false, presented, expected, reason };
}

const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * Like OpenSSH, prefer the host key algorithms known_hosts has keys for, so a server
 * with several host keys presents the one we can check. Undefined = ssh2's defaults.
 */
export function preferredHostKeyAlgorithms(policy: HostKeyPolicy): string[] | undefined {
  if (policy.kind !== 'knownHosts') return undefined;
  const algos: string[] = [];
  for (const e of policy.entries) {
    if (e.marker !== undefined || !entryMatchesHost(e, policy.hostName)) continue;
    for (const a of HOST_KEY_ALGORITHMS[e.keyType] ?? []) if (!algos.includes(a)) algos.push(a);
  }
  return algos.length > 0 ? algos : undefined;
}

/** Builds the policy from a target spec; the schema guarantees exactly one of the two fields. */
export async function loadHostKeyPolicy(
  targetName: string,
  spec: { hostKey?: unknown; knownHosts?: unknown },
  hostName: string,
): Promise<HostKeyPolicy> {
  if (typeof spec.hostKey === 'string') {
    if (!/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(spec.hostKey)) {
      throw new SpecError(`target ${targetName}: hostKey must be "SHA256:" and 43 base64 characters, as ssh-keygen -lf prints it`);
    }
    return { kind: 'fingerprint', fingerprint: spec.hostKey };
  }
  if (typeof spec.knownHosts === 'string') {
    const path = spec.knownHosts;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new SpecError(`target ${targetName}: knownHosts file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return { kind: 'knownHosts', path, hostName, entries: parseKnownHosts(text) };
  }
  throw new SpecError(`target ${targetName}: set hostKey or knownHosts; Plumb never trusts a host key on first use`);
}
