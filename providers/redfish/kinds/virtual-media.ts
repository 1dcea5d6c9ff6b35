/**
 * redfish.VirtualMedia: an image URL inserted in one virtual media slot of the
 * manager (InsertMedia / EjectMedia). The resource owns its slot: absent means the
 * slot is empty, and removing the resource ejects whatever the slot holds. A
 * different image, or a different write protection, is ejected and inserted again.
 * Each insert and eject is journaled before it is sent (long-ops.ts issue): a
 * refused one is withdrawn and sent again as new; an insert whose outcome is
 * unknown is waited for (a slot taking a moment to show the image must not get a
 * second InsertMedia, which a busy slot refuses) before it is sent once more.
 * Eject is idempotent, so a journaled eject is simply sent again if needed.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { SpecError } from '../../../src/errors.js';
import type { Change, Json, JsonObject, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import { action, managerUri, memberById, memberIds, members, systemUri } from '../discovery.js';
import { issue, pollUntil, recall, settle } from '../long-ops.js';
import type { RedfishSession } from '../session.js';
import { odataId } from '../session.js';
import { virtualMediaClaims } from '../claims.js';

/** The longest a journaled insert with an unknown outcome is waited for (or `resetStale`, if shorter). */
const INSERT_SETTLE_MS = 30_000;

export interface VirtualMediaSpec {
  image: string;
  slot?: string;
  mediaType?: 'CD' | 'DVD' | 'USBStick' | 'Floppy';
  writeProtected?: boolean;
}

export interface VirtualMediaActual {
  slot: string;
  image: string | null;
  inserted: boolean;
  writeProtected: boolean | null;
}

function mediaTypes(body: JsonObject): string[] {
  return Array.isArray(body.MediaTypes) ? body.MediaTypes.filter((t): t is string => typeof t === 'string') : [];
}

/** The slot's URI: `slot` by id, else the first slot that takes `mediaType` (CD by default). Cached per session. */
async function slotUri(s: RedfishSession, spec: VirtualMediaSpec, signal: AbortSignal): Promise<string> {
  const key = `vm:${spec.slot ?? ''}:${spec.mediaType ?? 'CD'}`;
  const cached = s.discovery.get(key);
  if (typeof cached === 'string') return cached;
  const manager = await s.getJson(await managerUri(s, signal), signal);
  let link = odataId(manager.VirtualMedia);
  if (!link) {
    // Newer BMCs hang virtual media off the system instead.
    const system = await s.getJson(await systemUri(s, signal), signal);
    link = odataId(system.VirtualMedia);
  }
  if (!link) throw new SpecError(`redfish ${s.targetName}: this BMC exposes no VirtualMedia collection`);
  const slots = await members(s, s.path(link), signal);
  let found: string | undefined;
  if (spec.slot !== undefined) {
    found = memberById(slots, spec.slot);
    if (!found) throw new SpecError(`redfish ${s.targetName}: no virtual media slot "${spec.slot}" (the BMC has: ${memberIds(slots, 'none')})`);
  } else {
    const want = spec.mediaType ?? 'CD';
    for (const u of slots) {
      const types = mediaTypes(await s.getJson(u, signal));
      if (types.includes(want) || (want === 'CD' && types.includes('DVD'))) {
        found = u;
        break;
      }
    }
    if (!found) throw new SpecError(`redfish ${s.targetName}: no virtual media slot takes ${want}`);
  }
  s.discovery.set(key, found);
  return found;
}

function actualOf(uri: string, body: JsonObject): VirtualMediaActual {
  const image = typeof body.Image === 'string' && body.Image !== '' ? body.Image : null;
  return {
    slot: String(body.Id ?? uri.split('/').pop()),
    image,
    inserted: body.Inserted === true || (body.Inserted === undefined && image !== null),
    writeProtected: typeof body.WriteProtected === 'boolean' ? body.WriteProtected : null,
  };
}

async function eject(s: RedfishSession, r: Resource<VirtualMediaSpec>, uri: string, body: JsonObject, ctx: OpContext): Promise<void> {
  const act = await action(s, body, '#VirtualMedia.EjectMedia', undefined, ctx.signal);
  await issue<unknown>(s, r, ctx, { ejectIssuedAt: Date.now(), slot: uri }, () =>
    act ? s.post(act.target, {}, ctx.signal) : s.patch(uri, () => ({ Image: null, Inserted: false }), ctx.signal), // older BMCs: no actions, PATCH the slot
  );
}

function shows(now: VirtualMediaActual, spec: VirtualMediaSpec): boolean {
  const wp = spec.writeProtected ?? true;
  return now.inserted && now.image === spec.image && (now.writeProtected === null || now.writeProtected === wp);
}

/** An insert journaled for this spec (a crash, an unknown outcome): polls the slot until it shows the image, or until the window closes. */
async function insertLanded(s: RedfishSession, r: Resource<VirtualMediaSpec>, uri: string, ctx: OpContext): Promise<boolean> {
  const issuedAt = recall(s, r)?.insertIssuedAt;
  if (typeof issuedAt !== 'number') return false;
  ctx.log.info({ target: s.targetName, id: r.id, issuedAt }, 'an insert for this spec was already sent; waiting for the slot to show it');
  const until = issuedAt + Math.min(INSERT_SETTLE_MS, s.resetStaleMs);
  return pollUntil<boolean>(s, ctx, `redfish ${s.targetName}: waiting for ${r.spec.image} in ${uri}`, async () => {
    const now = actualOf(uri, await s.getJson(uri, ctx.signal));
    if (shows(now, r.spec)) return { done: true, value: true };
    // Something else is in the slot, or the window closed: the insert did not happen as planned.
    if (now.inserted || Date.now() >= until) return { done: true, value: false };
    return { done: false };
  });
}

export const virtualMediaKind: KindHandler<VirtualMediaSpec, VirtualMediaActual, RedfishSession> = {
  kind: 'redfish.VirtualMedia',
  schema: 'redfish.virtualmedia.schema.json',
  claims: (spec) => virtualMediaClaims(spec),

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    const uri = await slotUri(s, r.spec, ctx.signal);
    const actual = actualOf(uri, await s.getJson(uri, ctx.signal));
    return actual.inserted ? actual : undefined;
  },

  diff(r, actual) {
    const wp = r.spec.writeProtected ?? true;
    if (!actual) return [{ path: '/image', before: null, after: r.spec.image, note: `insert ${r.spec.image}` }];
    const changes: Change[] = [];
    if (actual.image !== r.spec.image) changes.push({ path: '/image', before: actual.image, after: r.spec.image, note: `eject ${actual.image ?? '(none)'}, insert ${r.spec.image}` });
    if (actual.writeProtected !== null && actual.writeProtected !== wp) changes.push({ path: '/writeProtected', before: actual.writeProtected, after: wp, note: 'eject and insert again' });
    return changes;
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const uri = await slotUri(s, r.spec, ctx.signal);
    if (await insertLanded(s, r, uri, ctx)) {
      settle(s, r);
      return;
    }
    const body = (await s.read(uri, ctx.signal)).body;
    if (shows(actualOf(uri, body), r.spec)) {
      settle(s, r);
      return;
    }
    if (actualOf(uri, body).inserted) await eject(s, r, uri, body, ctx);
    const wp = r.spec.writeProtected ?? true;
    const insert = await action(s, body, '#VirtualMedia.InsertMedia', undefined, ctx.signal);
    const media = { Image: r.spec.image, Inserted: true, WriteProtected: wp };
    await issue<unknown>(s, r, ctx, { insertIssuedAt: Date.now(), image: r.spec.image }, () => (insert ? s.post(insert.target, media, ctx.signal) : s.patch(uri, () => media, ctx.signal)));
    settle(s, r);
  },

  async remove(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: remove`);
    const uri = await slotUri(s, r.spec, ctx.signal);
    const body = (await s.read(uri, ctx.signal)).body;
    if (!actualOf(uri, body).inserted) return;
    await eject(s, r, uri, body, ctx);
    settle(s, r);
  },

  summarize(actual): Json {
    if (!actual) return { inserted: false };
    return { slot: actual.slot, image: actual.image, inserted: actual.inserted, writeProtected: actual.writeProtected };
  },
};
