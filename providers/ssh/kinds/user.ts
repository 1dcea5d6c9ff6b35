/**
 * ssh.User: a local account (useradd/usermod/userdel), its supplementary groups
 * and its authorized public keys. Three-way for the lists: a group or key the
 * last applied spec had and this one dropped is taken away; groups and keys
 * someone else added are left alone.
 */
import { posix } from 'node:path';
import { ProviderError, SpecError } from '../../../src/errors.js';
import { throwIfAborted } from '../../../src/provider.js';
import type { Change, Claim, Json, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import { ACCOUNTS, firstEntry, MARK, parsePasswdLine, refuseNumericName, runAdmin, sections } from '../accounts.js';
import { lstat, mkdir, readRemoteFile, removeJournaledTemp, setAttributes, shellQuote, writeFileAtomic, tempJournal } from '../remote.js';
import type { SshSession } from '../session.js';

export interface UserSpec {
  name: string;
  uid?: number;
  /** Primary group: name or gid. */
  group?: string | number;
  /** Supplementary groups. */
  groups?: string[];
  shell?: string;
  home?: string;
  /** OpenSSH public key lines (`type base64 [comment]`). */
  authorizedKeys?: string[];
  /** With state absent (or when the resource is deleted): delete the home directory too. Default false. */
  removeHome?: boolean;
  state?: 'present' | 'absent';
}

export interface NodeFacts {
  mode: number;
  uid: number;
  gid: number;
  type: string;
}

export interface UserActual {
  name: string;
  uid: number;
  gid: number;
  /** Primary group's name (the gid as a string when it has none). */
  group: string;
  /** Supplementary groups, sorted, the primary one left out. */
  groups: string[];
  shell: string;
  home: string;
  sshDir?: NodeFacts;
  keysFile?: NodeFacts & { lines: string[] };
}

const KEY_TYPES = ['ssh-ed25519', 'ssh-rsa', 'ssh-dss', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'];
const KEYS_MAX = 1024 * 1024;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

// ---- public keys ---------------------------------------------------------------------------

/**
 * Checks a spec's key line is an OpenSSH public key: a known type, then base64
 * whose decoded blob names the same type (what ssh-keygen writes). A private
 * key, a fingerprint or a truncated paste fails here, at load.
 */
export function validatePublicKey(line: string, pointer: string): void {
  const m = /^(\S+) (AAAA[A-Za-z0-9+/]+={0,3})(?: .*)?$/.exec(line);
  const fail = (why: string): SpecError => new SpecError(`not an OpenSSH public key line ("type base64 [comment]", as in id_ed25519.pub): ${why}`, { pointer });
  if (!m) throw fail(line.includes('PRIVATE KEY') ? 'this is a private key; give the .pub line' : 'expected a key type, a space and base64');
  const [, type, b64] = m as unknown as [string, string, string];
  if (!KEY_TYPES.includes(type)) throw fail(`unknown key type ${JSON.stringify(type)}`);
  const blob = Buffer.from(b64, 'base64');
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len < 0 || 4 + len > blob.length || blob.subarray(4, 4 + len).toString('latin1') !== type) throw fail(`the base64 does not hold a ${type} key`);
}

/** The key's identity in an authorized_keys line (`type blob`, options and comment aside); undefined for blanks, comments, junk. */
export function keyOf(line: string): string | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return undefined;
  const tokens = t.split(/\s+/);
  for (let i = 0; i + 1 < tokens.length; i++) {
    if (KEY_TYPES.includes(tokens[i]!) && /^AAAA[A-Za-z0-9+/]+={0,3}$/.test(tokens[i + 1]!)) return `${tokens[i]} ${tokens[i + 1]}`;
  }
  return undefined;
}

/** Keys to add and to take away: the spec's missing ones; the last applied spec's that this one dropped (others' stay). */
export function keyChanges(spec: UserSpec, lastApplied: UserSpec | undefined, present: string[]): { add: string[]; remove: Set<string> } {
  const have = new Set(present.map(keyOf).filter((k) => k !== undefined));
  const want = new Map((spec.authorizedKeys ?? []).map((l) => [keyOf(l)!, l]));
  const add = [...want].filter(([k]) => !have.has(k)).map(([, l]) => l);
  const remove = new Set((lastApplied?.authorizedKeys ?? []).map(keyOf).filter((k): k is string => k !== undefined && !want.has(k) && have.has(k)));
  return { add, remove };
}

/** Pure: authorized_keys after the change; every other line (others' keys, comments, options) as it was. */
export function editKeys(lines: string[], add: string[], remove: Set<string>): string[] {
  return [...lines.filter((l) => !remove.has(keyOf(l) ?? '')), ...add];
}

/** Groups to add and take away: the spec's missing ones; the last applied spec's that this one dropped (groups someone else added stay). */
export function groupChanges(spec: UserSpec, lastApplied: UserSpec | undefined, present: string[]): { add: string[]; remove: string[] } {
  const have = new Set(present);
  const want = new Set(spec.groups ?? []);
  return {
    add: [...want].filter((g) => !have.has(g)),
    remove: (lastApplied?.groups ?? []).filter((g) => !want.has(g) && have.has(g)),
  };
}

// ---- reading -------------------------------------------------------------------------------

/** One exec: the passwd entry, the primary group's name, every group, and stat + content of ~/.ssh/authorized_keys. */
export function readScript(name: string): string {
  const n = shellQuote(name);
  return [
    `e=$(getent passwd ${n}) || { echo "plumb-absent:$?"; exit 0; }`,
    `printf '%s\\n' "$e"; echo ${MARK}`,
    `getent group "$(printf '%s' "$e" | cut -d: -f4)" | cut -d: -f1; echo ${MARK}`,
    `id -Gn ${n}; echo ${MARK}`,
    `h=$(printf '%s' "$e" | cut -d: -f6)`,
    `[ -e "$h/.ssh" ] && stat -c '%a %u %g %F' "$h/.ssh"; echo ${MARK}`,
    `f="$h/.ssh/authorized_keys"; if [ -e "$f" ] || [ -L "$f" ]; then stat -c '%a %u %g %F' "$f"; echo ${MARK}; [ -f "$f" ] && [ ! -L "$f" ] && head -c ${KEYS_MAX} "$f"; fi; true`,
  ].join('\n');
}

function parseStat(line: string | undefined): NodeFacts | undefined {
  const m = /^([0-7]+) (\d+) (\d+) (.+)$/.exec((line ?? '').trim());
  if (!m) return undefined;
  return { mode: parseInt(m[1]!, 8), uid: Number(m[2]), gid: Number(m[3]), type: m[4]! };
}

/** Pure: what readScript printed. */
export function parseUserRead(name: string, output: string): UserActual | undefined {
  if (/^plumb-absent:2$/m.test(output)) return undefined;
  const absent = /^plumb-absent:(\d+)$/m.exec(output);
  if (absent) throw new ProviderError(`getent passwd ${name} exited ${absent[1]}${absent[1] === '127' ? ' (no getent on the host)' : ''}`);
  const [passwd, primary, all, dir, fileStat, ...content] = sections(output);
  const e = firstEntry(passwd ?? '', parsePasswdLine);
  if (!e || e.name !== name) throw new ProviderError(`getent passwd ${name} printed no entry for it`);
  const group = (primary ?? '').trim().split('\n').pop() || String(e.gid);
  const groups = [...new Set((all ?? '').trim().split('\n').pop()?.split(/\s+/).filter((g) => g !== '' && g !== group) ?? [])].sort();
  const actual: UserActual = { name: e.name, uid: e.uid, gid: e.gid, group, groups, shell: e.shell, home: e.home };
  const sshDir = parseStat(dir);
  if (sshDir) actual.sshDir = sshDir;
  const facts = parseStat(fileStat);
  if (facts) {
    const body = content.join(`${MARK}\n`);
    actual.keysFile = { ...facts, lines: body === '' ? [] : body.replace(/\n$/, '').split('\n') };
  }
  return actual;
}

// ---- diff ----------------------------------------------------------------------------------

const isRegular = (f: NodeFacts): boolean => f.type === 'regular file' || f.type === 'regular empty file';

function keysChange(r: Resource<UserSpec>, a: UserActual): Change | undefined {
  const spec = r.spec;
  if (spec.authorizedKeys === undefined && r.lastApplied?.authorizedKeys === undefined) return undefined;
  const lines = a.keysFile?.lines ?? [];
  const { add, remove } = keyChanges(spec, r.lastApplied, lines);
  const notes: string[] = [];
  if (add.length > 0) notes.push(`add ${add.length} key${add.length > 1 ? 's' : ''}`);
  if (remove.size > 0) notes.push(`remove ${remove.size} key${remove.size > 1 ? 's' : ''} Plumb added`);
  if (a.keysFile && !isRegular(a.keysFile)) notes.push(`${a.home}/.ssh/authorized_keys is a ${a.keysFile.type}`);
  // Mode and ownership are managed while the spec lists keys: sshd ignores a file others can write.
  if ((spec.authorizedKeys ?? []).length > 0) {
    const d = a.sshDir;
    if (d && (d.mode !== DIR_MODE || d.uid !== a.uid)) notes.push(`~/.ssh is ${d.mode.toString(8).padStart(4, '0')} ${d.uid}:${d.gid}, want 0700 owned by ${a.name}`);
    const f = a.keysFile;
    if (f && isRegular(f) && (f.mode !== FILE_MODE || f.uid !== a.uid || f.gid !== a.gid)) notes.push(`authorized_keys is ${f.mode.toString(8).padStart(4, '0')} ${f.uid}:${f.gid}, want 0600 ${a.uid}:${a.gid}`);
  }
  if (notes.length === 0) return undefined;
  const keys = lines.map(keyOf).filter((k) => k !== undefined);
  return { path: '/authorizedKeys', before: keys.length, after: editKeys(keys, add.map((l) => keyOf(l)!), remove).length, note: notes.join('; ') };
}

function userChanges(r: Resource<UserSpec>, a: UserActual): Change[] {
  const spec = r.spec;
  const changes: Change[] = [];
  if (spec.uid !== undefined && a.uid !== spec.uid) changes.push({ path: '/uid', before: a.uid, after: spec.uid });
  if (spec.group !== undefined && (typeof spec.group === 'number' ? a.gid !== spec.group : a.group !== spec.group)) {
    changes.push({ path: '/group', before: typeof spec.group === 'number' ? a.gid : a.group, after: spec.group });
  }
  if (spec.shell !== undefined && a.shell !== spec.shell) changes.push({ path: '/shell', before: a.shell, after: spec.shell });
  if (spec.home !== undefined && a.home !== spec.home) changes.push({ path: '/home', before: a.home, after: spec.home, note: 'the passwd entry changes; the old directory is not moved' });
  const g = groupChanges(spec, r.lastApplied, a.groups);
  if (g.add.length > 0 || g.remove.length > 0) {
    const after = [...a.groups.filter((x) => !g.remove.includes(x)), ...g.add].sort();
    const note = [g.add.length > 0 ? `add ${g.add.join(', ')}` : '', g.remove.length > 0 ? `remove ${g.remove.join(', ')} (Plumb added)` : ''].filter(Boolean).join('; ');
    changes.push({ path: '/groups', before: a.groups, after, note });
  }
  const keys = keysChange(r, a);
  if (keys) changes.push(keys);
  return changes;
}

// ---- writing -------------------------------------------------------------------------------

async function readUser(s: SshSession, r: Resource<UserSpec>, signal: AbortSignal): Promise<UserActual | undefined> {
  const res = await s.exec(readScript(r.spec.name), signal, { maxOutput: KEYS_MAX + 64 * 1024 });
  try {
    return parseUserRead(r.spec.name, res.output);
  } catch (err) {
    throw new ProviderError(`ssh ${s.targetName}: ${r.id}: ${(err as Error).message}`, { cause: err });
  }
}

/** ~/.ssh (0700) and authorized_keys (0600), owned by the user; others' lines kept. Over SFTP, atomically. */
async function writeKeys(s: SshSession, r: Resource<UserSpec>, a: UserActual, ctx: OpContext): Promise<void> {
  const signal = ctx.signal;
  const dir = posix.join(a.home, '.ssh');
  const path = posix.join(dir, 'authorized_keys');
  const wantsKeys = (r.spec.authorizedKeys ?? []).length > 0;
  let dirStat = await lstat(s, dir, signal);
  if (!dirStat) {
    if (!wantsKeys) return; // nothing to take away from a file that is not there
    if (!(await lstat(s, a.home, signal))) throw new SpecError(`${r.id}: home ${a.home} of ${a.name} does not exist on ${s.targetName}; authorized keys need it`);
    await mkdir(s, dir, DIR_MODE, signal);
    dirStat = await lstat(s, dir, signal);
  }
  if (!dirStat || dirStat.type !== 'directory') throw new SpecError(`${r.id}: ${dir} is a ${dirStat?.type ?? 'missing node'}, not a directory; Plumb will not replace it`);
  if (wantsKeys && (dirStat.mode !== DIR_MODE || dirStat.uid !== a.uid || dirStat.gid !== a.gid)) await setAttributes(s, dir, { uid: a.uid, gid: a.gid, mode: DIR_MODE }, dirStat, signal);
  const st = await lstat(s, path, signal);
  if (st && st.type !== 'file') throw new SpecError(`${r.id}: ${path} is a ${st.type}, not a regular file; Plumb will not replace or follow it`);
  const text = st ? (await readRemoteFile(s, path, st.size, KEYS_MAX, signal)).toString('utf8') : '';
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const { add, remove } = keyChanges(r.spec, r.lastApplied, lines);
  const next = editKeys(lines, add, remove);
  const content = next.length > 0 ? `${next.join('\n')}\n` : '';
  if (st && content === text) {
    if (wantsKeys && (st.mode !== FILE_MODE || st.uid !== a.uid || st.gid !== a.gid)) await setAttributes(s, path, { uid: a.uid, gid: a.gid, mode: FILE_MODE }, st, signal);
    return;
  }
  if (!st && next.length === 0) return;
  const journal = tempJournal(ctx);
  await writeFileAtomic(s, path, Buffer.from(content, 'utf8'), { mode: FILE_MODE, uid: a.uid, gid: a.gid }, signal, journal);
}

/** useradd/usermod options for the fields the spec sets (all of them on create, the changed ones on update). */
function accountOptions(spec: UserSpec, paths: Set<string> | undefined): string[] {
  const want = (p: string): boolean => paths === undefined || paths.has(p);
  const out: string[] = [];
  if (spec.uid !== undefined && want('/uid')) out.push('-u', String(spec.uid));
  if (spec.group !== undefined && want('/group')) out.push('-g', shellQuote(String(spec.group)));
  if (spec.shell !== undefined && want('/shell')) out.push('-s', shellQuote(spec.shell));
  if (spec.home !== undefined && want('/home')) out.push('-d', shellQuote(spec.home));
  return out;
}

export const userKind: KindHandler<UserSpec, UserActual, SshSession> = {
  kind: 'ssh.User',
  schema: 'ssh.user.schema.json',

  normalize(spec) {
    refuseNumericName(spec.name, '/name');
    (spec.groups ?? []).forEach((g, i) => refuseNumericName(g, `/groups/${i}`));
    (spec.authorizedKeys ?? []).forEach((k, i) => validatePublicKey(k, `/authorizedKeys/${i}`));
    const keys = (spec.authorizedKeys ?? []).map(keyOf);
    if (new Set(keys).size !== keys.length) throw new SpecError('authorizedKeys lists one key twice', { pointer: '/authorizedKeys' });
    return { ...spec, ...(spec.home !== undefined ? { home: posix.normalize(spec.home).replace(/(.)\/+$/, '$1') } : {}) };
  },

  claims(spec): Claim[] {
    const claims: Claim[] = [{ key: ['user', spec.name], label: `user ${spec.name}`, pointer: '/name' }];
    if (spec.uid !== undefined) claims.push({ key: ['uid', String(spec.uid)], label: `uid ${spec.uid}`, pointer: '/uid' });
    // An ssh.File on the same authorized_keys would fight over its lines.
    if (spec.home !== undefined && spec.authorizedKeys !== undefined) {
      const path = posix.join(spec.home, '.ssh/authorized_keys');
      claims.push({ key: ['path', path], label: `path ${path}`, pointer: '/authorizedKeys' });
    }
    return claims;
  },

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    return readUser(s, r, ctx.signal);
  },

  diff(r, actual) {
    const spec = r.spec;
    if ((spec.state ?? 'present') === 'absent') return actual ? [{ path: '/state', before: 'present', after: 'absent', note: `delete user ${spec.name}${spec.removeHome ? ' and its home' : ' (its home stays)'}` }] : [];
    if (!actual) return [{ path: '/state', before: 'absent', after: 'present', note: `create user ${spec.name}` }];
    return userChanges(r, actual);
  },

  async apply(s, r, changes, ctx, actual) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    // shadow-utils refuse (not wait) while another of them holds /etc/passwd's lock: one account change at a time per host.
    await s.exclusive(ACCOUNTS, () => applyUser(s, r, changes, ctx, actual));
  },

  /** Deleting the resource deletes the account; its home only with removeHome: true. */
  async remove(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: remove`);
    if ((r.spec.state ?? 'present') === 'absent') return;
    await s.exclusive(ACCOUNTS, async () => {
      if (!(await readUser(s, r, ctx.signal))) return;
      await runAdmin(s, r.id, `userdel${r.spec.removeHome ? ' -r' : ''} -- ${shellQuote(r.spec.name)}`, ctx.signal);
    });
  },

  /** A temporary authorized_keys journaled before a write that never finished. */
  cleanup(s, r, progress, ctx) {
    return removeJournaledTemp(s, r.id, progress, ctx.signal);
  },

  released(r) {
    const last = r.lastApplied;
    if (!last) return [];
    return (['uid', 'group', 'shell', 'home'] as const)
      .filter((f) => last[f] !== undefined && r.spec[f] === undefined)
      .map((f) => ({ path: `/${f}`, note: `no longer managed; keeps ${JSON.stringify(last[f])} (an account always has one)` }));
  },

  summarize(actual): Json {
    if (!actual) return { present: false };
    return { uid: actual.uid, group: actual.group, groups: actual.groups, shell: actual.shell, home: actual.home, keys: (actual.keysFile?.lines ?? []).filter((l) => keyOf(l) !== undefined).length };
  },
};

async function applyUser(s: SshSession, r: Resource<UserSpec>, changes: Change[], ctx: OpContext, actual: UserActual | undefined): Promise<void> {
  const { spec } = r;
  const name = shellQuote(spec.name);
  if ((spec.state ?? 'present') === 'absent') {
    await runAdmin(s, r.id, `userdel${spec.removeHome ? ' -r' : ''} -- ${name}`, ctx.signal);
    return;
  }
  const paths = new Set(changes.map((c) => c.path));
  const creating = paths.has('/state');
  if (creating) {
    const groups = spec.groups && spec.groups.length > 0 ? ['-G', shellQuote(spec.groups.join(','))] : [];
    await runAdmin(s, r.id, ['useradd', '-m', ...accountOptions(spec, undefined), ...groups, '--', name].join(' '), ctx.signal);
  } else {
    const options = accountOptions(spec, paths);
    if (options.length > 0) await runAdmin(s, r.id, ['usermod', ...options, '--', name].join(' '), ctx.signal);
    if (paths.has('/groups')) {
      const g = groupChanges(spec, r.lastApplied, (actual ?? (await readUser(s, r, ctx.signal)))?.groups ?? []);
      if (g.add.length > 0) await runAdmin(s, r.id, `usermod -a -G ${shellQuote(g.add.join(','))} -- ${name}`, ctx.signal);
      for (const group of g.remove) await runAdmin(s, r.id, `gpasswd -d ${name} ${shellQuote(group)}`, ctx.signal);
    }
  }
  if (spec.authorizedKeys !== undefined || r.lastApplied?.authorizedKeys !== undefined) {
    // Home, uid and gid as they are now (a new user's come from useradd).
    const now = await readUser(s, r, ctx.signal);
    if (!now) throw new ProviderError(`ssh ${s.targetName}: ${r.id}: user ${spec.name} is missing right after it was created`);
    if (creating || paths.has('/authorizedKeys') || paths.has('/uid') || paths.has('/group') || paths.has('/home')) await writeKeys(s, r, now, ctx);
  }
}
