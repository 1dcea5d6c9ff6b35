/**
 * ssh.Group: a local group and its gid (groupadd/groupmod/groupdel). Members
 * are not managed here: an ssh.User lists its supplementary groups, so one
 * membership has one owner.
 */
import { ProviderError } from '../../../src/errors.js';
import { throwIfAborted } from '../../../src/provider.js';
import type { Change, Claim, Json, KindHandler } from '../../../src/provider.js';
import { ACCOUNTS, firstEntry, parseGroupLine, refuseNumericName, runAdmin, type GroupEntry } from '../accounts.js';
import { shellQuote } from '../remote.js';
import type { SshSession } from '../session.js';

export interface GroupSpec {
  name: string;
  gid?: number;
  state?: 'present' | 'absent';
}

export type GroupActual = GroupEntry;

/** `getent group NAME`: absent → undefined (getent exits 2). */
async function readGroup(s: SshSession, name: string, signal: AbortSignal): Promise<GroupActual | undefined> {
  const res = await s.exec(`getent group ${shellQuote(name)}`, signal, { maxOutput: 64 * 1024 });
  if (res.code === 2) return undefined;
  const entry = res.code === 0 ? firstEntry(res.output, parseGroupLine) : undefined;
  if (!entry) throw new ProviderError(`ssh ${s.targetName}: getent group exited ${res.code ?? res.signal ?? 'abnormally'}${res.code === 127 ? ' (no getent on the host)' : ''}`);
  return entry.name === name ? entry : undefined;
}

export const groupKind: KindHandler<GroupSpec, GroupActual, SshSession> = {
  kind: 'ssh.Group',
  schema: 'ssh.group.schema.json',

  normalize(spec) {
    refuseNumericName(spec.name, '/name');
    return spec;
  },

  claims(spec): Claim[] {
    const claims: Claim[] = [{ key: ['group', spec.name], label: `group ${spec.name}`, pointer: '/name' }];
    if (spec.gid !== undefined) claims.push({ key: ['gid', String(spec.gid)], label: `gid ${spec.gid}`, pointer: '/gid' });
    return claims;
  },

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    return readGroup(s, r.spec.name, ctx.signal);
  },

  diff(r, actual) {
    const spec = r.spec;
    if ((spec.state ?? 'present') === 'absent') return actual ? [{ path: '/state', before: 'present', after: 'absent', note: `delete group ${spec.name}` }] : [];
    if (!actual) return [{ path: '/state', before: 'absent', after: 'present', note: `create group ${spec.name}${spec.gid !== undefined ? ` (gid ${spec.gid})` : ''}` }];
    const changes: Change[] = [];
    if (spec.gid !== undefined && actual.gid !== spec.gid) changes.push({ path: '/gid', before: actual.gid, after: spec.gid });
    return changes;
  },

  async apply(s, r, changes, ctx, actual) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const { spec } = r;
    const name = shellQuote(spec.name);
    // One account change at a time per host (shadow-utils refuse while another holds the lock), shared with ssh.User.
    await s.exclusive(ACCOUNTS, async () => {
      if ((spec.state ?? 'present') === 'absent') {
        await runAdmin(s, r.id, `groupdel -- ${name}`, ctx.signal);
        return;
      }
      const gid = spec.gid !== undefined ? ` -g ${spec.gid}` : '';
      // Planned as a create (the read found no group): the changes say so even without `actual`.
      if (!actual && changes.some((c) => c.path === '/state')) await runAdmin(s, r.id, `groupadd${gid} -- ${name}`, ctx.signal);
      else if (changes.some((c) => c.path === '/gid')) await runAdmin(s, r.id, `groupmod${gid} -- ${name}`, ctx.signal);
    });
  },

  /** Deleting the resource deletes the group (groupdel refuses while it is some user's primary group). */
  async remove(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: remove`);
    if ((r.spec.state ?? 'present') === 'absent') return;
    await s.exclusive(ACCOUNTS, async () => {
      if (!(await readGroup(s, r.spec.name, ctx.signal))) return;
      await runAdmin(s, r.id, `groupdel -- ${shellQuote(r.spec.name)}`, ctx.signal);
    });
  },

  released(r) {
    const last = r.lastApplied;
    if (last?.gid === undefined || r.spec.gid !== undefined) return [];
    return [{ path: '/gid', note: `no longer managed; keeps gid ${last.gid} (a group always has one)` }];
  },

  summarize(actual): Json {
    return actual ? { name: actual.name, gid: actual.gid } : { present: false };
  },
};
