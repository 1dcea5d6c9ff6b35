/**
 * redfish.Account: a BMC user (ManagerAccount): user name, role, enabled, and a
 * password given as a secret reference. A password cannot be read back, so Plumb
 * keeps a keyed hash of the secret it last applied (Applied.memo) and applies it
 * again when the secret changes. Two account models: BMCs that create accounts by
 * POST to the collection and remove them by DELETE, and BMCs with fixed slots
 * (iDRAC: 16, empty ones have UserName "") where both are a PATCH of a slot.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { ProviderError, SpecError } from '../../../src/errors.js';
import type { Change, Json, JsonObject, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import { isObject } from '../../../src/util/object.js';
import { forget, members, serviceLink } from '../discovery.js';
import type { RedfishSession } from '../session.js';
import { odataId } from '../session.js';
import { accountClaims } from '../claims.js';

export interface AccountSpec {
  username: string;
  role: string;
  enabled?: boolean;
  /** Secret reference (file:/path or env:NAME). */
  password: string;
}

export interface AccountActual {
  username: string;
  role: string | null;
  enabled: boolean | null;
  locked: boolean | null;
  /** Whether the keyed hash of the password secret equals the one remembered from the last apply. */
  passwordApplied: boolean;
}

interface AccountIndex {
  collection: string;
  /** user name -> account URI */
  byName: Map<string, string>;
  /** Empty slots (fixed-slot BMCs), in order. */
  emptySlots: string[];
  slotted: boolean;
}

const INDEX_KEY = 'accounts';
/** Slot 1 of a fixed-slot BMC is reserved (iDRAC's anonymous account). */
const RESERVED_SLOT = '1';

function passwordHashMemo(memo: Json | undefined): string | undefined {
  return isObject(memo) && typeof memo.passwordHash === 'string' ? memo.passwordHash : undefined;
}

async function accountCollection(s: RedfishSession, signal: AbortSignal): Promise<string> {
  const service = await s.getJson(await serviceLink(s, 'AccountService', signal), signal);
  const link = odataId(service.Accounts);
  if (!link) throw new ProviderError(`redfish ${s.targetName}: the AccountService lists no Accounts collection`);
  return s.path(link);
}

/** Reads every account once per session to map user names to URIs (a converged read then costs one GET). */
async function accountIndex(s: RedfishSession, signal: AbortSignal): Promise<AccountIndex> {
  const cached = s.discovery.get(INDEX_KEY) as AccountIndex | undefined;
  if (cached) return cached;
  const collection = await accountCollection(s, signal);
  const index: AccountIndex = { collection, byName: new Map(), emptySlots: [], slotted: false };
  for (const uri of await members(s, collection, signal)) {
    const body = await s.getJson(uri, signal);
    const name = typeof body.UserName === 'string' ? body.UserName : '';
    if (name === '') {
      index.slotted = true;
      if (String(body.Id ?? uri.split('/').pop()) !== RESERVED_SLOT) index.emptySlots.push(uri);
    } else {
      index.byName.set(name, uri);
    }
  }
  s.discovery.set(INDEX_KEY, index);
  return index;
}

/** The account of `username`, read fresh; the cached URI is trusted only if it still holds that user. */
async function findAccount(s: RedfishSession, username: string, signal: AbortSignal): Promise<{ uri: string; body: JsonObject } | undefined> {
  let index = await accountIndex(s, signal);
  const uri = index.byName.get(username);
  if (uri) {
    const got = await s.readOptional(uri, signal);
    if (got && got.body.UserName === username) return { uri, body: got.body };
    // Changed behind our back: rebuild the index once.
    forget(s, INDEX_KEY);
    index = await accountIndex(s, signal);
    const again = index.byName.get(username);
    if (again) return { uri: again, body: await s.getJson(again, signal) };
  }
  return undefined;
}

async function passwordHash(r: Resource<AccountSpec>, ctx: OpContext): Promise<{ hash: string; value: string }> {
  const secret = await ctx.secrets.resolve(r.spec.password);
  return { hash: ctx.keyedHash(secret.reveal()), value: secret.revealString() };
}

export const accountKind: KindHandler<AccountSpec, AccountActual, RedfishSession> = {
  kind: 'redfish.Account',
  schema: 'redfish.account.schema.json',
  claims: (spec) => accountClaims(spec),

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    const found = await findAccount(s, r.spec.username, ctx.signal);
    if (!found) return undefined;
    const { hash } = await passwordHash(r, ctx);
    const b = found.body;
    return {
      username: r.spec.username,
      role: typeof b.RoleId === 'string' ? b.RoleId : null,
      enabled: typeof b.Enabled === 'boolean' ? b.Enabled : null,
      locked: typeof b.Locked === 'boolean' ? b.Locked : null,
      passwordApplied: passwordHashMemo(r.memo) === hash,
    };
  },

  diff(r, actual) {
    const spec = r.spec;
    const enabled = spec.enabled ?? true;
    if (!actual) return [{ path: '/username', before: null, after: spec.username, note: `create user ${spec.username} (${spec.role})` }];
    const changes: Change[] = [];
    if (actual.role !== spec.role) changes.push({ path: '/role', before: actual.role, after: spec.role });
    if (actual.enabled !== enabled) changes.push({ path: '/enabled', before: actual.enabled, after: enabled });
    if (!actual.passwordApplied) {
      // Never a value: only the reference, and the fact that its keyed hash differs.
      changes.push({ path: '/password', before: null, after: spec.password, note: `the secret ${spec.password} is not the password Plumb last applied` });
    }
    return changes;
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const spec = r.spec;
    const enabled = spec.enabled ?? true;
    const paths = new Set(changes.map((c) => c.path));
    if (!enabled && spec.username === s.spec.user) throw new SpecError(`${r.id}: ${spec.username} is the account Plumb logs in with; disabling it would lock Plumb out`);
    const { hash, value } = await passwordHash(r, ctx);
    const found = await findAccount(s, spec.username, ctx.signal);
    if (!found) {
      const index = await accountIndex(s, ctx.signal);
      const body: JsonObject = { UserName: spec.username, Password: value, RoleId: spec.role, Enabled: enabled };
      if (index.slotted) {
        const slot = index.emptySlots[0];
        if (!slot) throw new ProviderError(`redfish ${s.targetName}: every account slot is in use; cannot create ${spec.username}`);
        await s.patch(slot, () => body, ctx.signal);
      } else {
        await s.post(index.collection, body, ctx.signal);
      }
      forget(s, INDEX_KEY);
      return { memo: { passwordHash: hash } };
    }
    const setPassword = paths.has('/password');
    await s.patch(
      found.uri,
      (now) => {
        const body: JsonObject = {};
        if (paths.has('/role') && now.RoleId !== spec.role) body.RoleId = spec.role;
        if (paths.has('/enabled') && now.Enabled !== enabled) body.Enabled = enabled;
        if (setPassword) body.Password = value;
        return body;
      },
      ctx.signal,
    );
    return setPassword ? { memo: { passwordHash: hash } } : undefined;
  },

  async remove(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: remove`);
    if (r.spec.username === s.spec.user) throw new SpecError(`${r.id}: ${r.spec.username} is the account Plumb logs in with; removing it would lock Plumb out (use deletionPolicy: Retain)`);
    const found = await findAccount(s, r.spec.username, ctx.signal);
    if (!found) return;
    const index = await accountIndex(s, ctx.signal);
    if (index.slotted) {
      // A fixed slot is emptied, not deleted.
      await s.patch(found.uri, () => ({ UserName: '', Enabled: false }), ctx.signal);
    } else {
      await s.delete(found.uri, ctx.signal);
    }
    forget(s, INDEX_KEY);
  },

  summarize(actual): Json {
    if (!actual) return { present: false };
    return { username: actual.username, role: actual.role, enabled: actual.enabled, locked: actual.locked, passwordApplied: actual.passwordApplied };
  },
};
