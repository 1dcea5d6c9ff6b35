/**
 * redfish.Manager: the BMC's own settings: NTP (enabled, servers), which network
 * protocols are enabled (and on which port), and the time zone (the manager's
 * DateTimeLocalOffset). Reads only the resources the spec names. No remove(): a
 * manager cannot be deleted; dropping it from Git only makes Plumb forget it.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { SpecError } from '../../../src/errors.js';
import type { Change, Json, JsonObject, KindHandler } from '../../../src/provider.js';
import { joinPointer } from '../../../src/util/json-pointer.js';
import { isObject } from '../../../src/util/object.js';
import { managerUri } from '../discovery.js';
import type { RedfishSession } from '../session.js';
import { odataId } from '../session.js';
import { managerClaims } from '../claims.js';
import { ntpServersToWithdraw, releasedManager } from '../released.js';

export interface ProtocolSpec {
  enabled?: boolean;
  port?: number;
}

export interface ManagerSpec {
  ntp?: { enabled?: boolean; servers?: string[] };
  protocols?: Record<string, ProtocolSpec>;
  timeZone?: string;
}

export interface ManagerActual {
  timeZone?: string | null;
  ntp?: { enabled: boolean | null; servers: string[] };
  protocols?: Record<string, { enabled: boolean | null; port: number | null }>;
}

/** NTP servers as a list: empty slots (`""`, null) some BMCs pad with are not servers. */
export function ntpServers(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is string => typeof v === 'string' && v.trim() !== '').map((v) => v.trim());
}

/** `+1:00`, `+01:00` -> `+01:00`; `Z`/`UTC` -> `+00:00`: how offsets are compared and how they are written. */
export function normalizeOffset(value: string): string {
  const v = value.trim();
  if (/^(z|utc)$/i.test(v)) return '+00:00';
  const m = /^([+-])(\d{1,2}):?(\d{2})$/.exec(v);
  if (!m) return v;
  return `${m[1] === '-' && m[2] === '00' && m[3] === '00' ? '+' : m[1]}${m[2]!.padStart(2, '0')}:${m[3]}`;
}

function withoutServers(list: string[], gone: string[]): string[] {
  const drop = new Set(gone);
  return list.filter((v) => !drop.has(v));
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function protocolOf(body: JsonObject, name: string): { enabled: boolean | null; port: number | null } | undefined {
  const p = body[name];
  if (!isObject(p)) return undefined;
  return { enabled: typeof p.ProtocolEnabled === 'boolean' ? p.ProtocolEnabled : null, port: typeof p.Port === 'number' ? p.Port : null };
}

async function protocolUri(s: RedfishSession, manager: JsonObject): Promise<string> {
  const link = odataId(manager.NetworkProtocol);
  if (!link) throw new SpecError(`redfish ${s.targetName}: this manager exposes no NetworkProtocol resource; remove ntp and protocols from the spec`);
  return s.path(link);
}

export const managerKind: KindHandler<ManagerSpec, ManagerActual, RedfishSession> = {
  kind: 'redfish.Manager',
  schema: 'redfish.manager.schema.json',
  claims: (spec) => managerClaims(spec),

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    const uri = await managerUri(s, ctx.signal);
    const manager = await s.getJson(uri, ctx.signal);
    const actual: ManagerActual = {};
    if (r.spec.timeZone !== undefined) actual.timeZone = typeof manager.DateTimeLocalOffset === 'string' ? manager.DateTimeLocalOffset : null;
    const withdraw = ntpServersToWithdraw(r.spec, r.lastApplied);
    if (r.spec.ntp !== undefined || r.spec.protocols !== undefined || withdraw) {
      const proto = await s.getJson(await protocolUri(s, manager), ctx.signal);
      if (r.spec.ntp !== undefined || withdraw) {
        const ntp = isObject(proto.NTP) ? proto.NTP : {};
        actual.ntp = { enabled: typeof ntp.ProtocolEnabled === 'boolean' ? ntp.ProtocolEnabled : null, servers: ntpServers(ntp.NTPServers) };
      }
      if (r.spec.protocols !== undefined) {
        actual.protocols = {};
        for (const name of Object.keys(r.spec.protocols)) {
          const p = protocolOf(proto, name);
          if (!p) throw new SpecError(`${r.id}: the BMC's NetworkProtocol has no protocol "${name}"`);
          actual.protocols[name] = p;
        }
      }
    }
    return actual;
  },

  diff(r, actual) {
    const spec = r.spec;
    const a: ManagerActual = actual ?? {};
    const changes: Change[] = [];
    if (spec.timeZone !== undefined && (a.timeZone == null || normalizeOffset(a.timeZone) !== normalizeOffset(spec.timeZone))) {
      changes.push({ path: '/timeZone', before: a.timeZone ?? null, after: spec.timeZone });
    }
    if (spec.ntp?.enabled !== undefined && a.ntp?.enabled !== spec.ntp.enabled) changes.push({ path: '/ntp/enabled', before: a.ntp?.enabled ?? null, after: spec.ntp.enabled });
    if (spec.ntp?.servers !== undefined && !sameList(a.ntp?.servers ?? [], spec.ntp.servers.map((v) => v.trim()))) {
      changes.push({ path: '/ntp/servers', before: (a.ntp?.servers ?? null) as Json, after: spec.ntp.servers });
    }
    const withdraw = ntpServersToWithdraw(spec, r.lastApplied);
    if (withdraw && a.ntp) {
      const kept = withoutServers(a.ntp.servers, withdraw);
      if (kept.length !== a.ntp.servers.length) {
        changes.push({ path: '/ntp/servers', before: a.ntp.servers, after: kept, note: `the spec no longer names ${withdraw.join(', ')}: Plumb set them, so it removes them (servers others added stay)` });
      }
    }
    for (const [name, want] of Object.entries(spec.protocols ?? {})) {
      const have = a.protocols?.[name];
      const base = joinPointer('/protocols', name);
      if (want.enabled !== undefined && have?.enabled !== want.enabled) changes.push({ path: `${base}/enabled`, before: have?.enabled ?? null, after: want.enabled });
      if (want.port !== undefined && have?.port !== want.port) changes.push({ path: `${base}/port`, before: have?.port ?? null, after: want.port });
    }
    return changes;
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const spec = r.spec;
    const paths = new Set(changes.map((c) => c.path));
    const uri = await managerUri(s, ctx.signal);
    if (spec.protocols?.HTTPS?.enabled === false && s.http.origin.startsWith('https:') && paths.has('/protocols/HTTPS/enabled')) {
      throw new SpecError(`${r.id}: disabling HTTPS would cut Plumb off from this BMC (it talks Redfish over HTTPS); refused`);
    }
    const protoPaths = [...paths].filter((p) => p.startsWith('/ntp/') || p.startsWith('/protocols/'));
    if (protoPaths.length > 0) {
      const manager = s.lastRead(uri)?.body ?? (await s.getJson(uri, ctx.signal));
      await s.patch(
        await protocolUri(s, manager),
        (proto) => {
          const body: JsonObject = {};
          const ntpNow = isObject(proto.NTP) ? proto.NTP : {};
          const ntp: JsonObject = {};
          if (spec.ntp?.enabled !== undefined && paths.has('/ntp/enabled') && ntpNow.ProtocolEnabled !== spec.ntp.enabled) ntp.ProtocolEnabled = spec.ntp.enabled;
          if (spec.ntp?.servers !== undefined && paths.has('/ntp/servers') && !sameList(ntpServers(ntpNow.NTPServers), spec.ntp.servers)) ntp.NTPServers = spec.ntp.servers;
          const withdraw = paths.has('/ntp/servers') ? ntpServersToWithdraw(spec, r.lastApplied) : undefined;
          if (withdraw) {
            // Taken out of the list as it is now, so a server someone added since the plan stays too.
            const have = ntpServers(ntpNow.NTPServers);
            const kept = withoutServers(have, withdraw);
            if (kept.length !== have.length) ntp.NTPServers = kept;
          }
          if (Object.keys(ntp).length > 0) body.NTP = ntp;
          for (const [name, want] of Object.entries(spec.protocols ?? {})) {
            const have = protocolOf(proto, name);
            const base = joinPointer('/protocols', name);
            const p: JsonObject = {};
            if (want.enabled !== undefined && paths.has(`${base}/enabled`) && have?.enabled !== want.enabled) p.ProtocolEnabled = want.enabled;
            if (want.port !== undefined && paths.has(`${base}/port`) && have?.port !== want.port) p.Port = want.port;
            if (Object.keys(p).length > 0) body[name] = p;
          }
          return body;
        },
        ctx.signal,
      );
    }
    if (spec.timeZone !== undefined && paths.has('/timeZone')) {
      // Written as compared: the DMTF pattern is [-+]HH:MM, so `UTC` and `Z` go out as +00:00.
      const tz = normalizeOffset(spec.timeZone);
      await s.patch(uri, (manager) => (typeof manager.DateTimeLocalOffset === 'string' && normalizeOffset(manager.DateTimeLocalOffset) === tz ? undefined : { DateTimeLocalOffset: tz }), ctx.signal);
    }
  },

  released(r) {
    return releasedManager(r.spec, r.lastApplied);
  },

  summarize(actual) {
    if (!actual) return null;
    const out: JsonObject = {};
    if (actual.timeZone !== undefined) out.timeZone = actual.timeZone;
    if (actual.ntp) out.ntp = { enabled: actual.ntp.enabled, servers: actual.ntp.servers };
    if (actual.protocols) {
      const p: JsonObject = {};
      for (const [k, v] of Object.entries(actual.protocols)) p[k] = v.enabled;
      out.protocols = p;
    }
    return out;
  },
};
