/**
 * Finding things on a BMC: the system and manager a target means, collection
 * members, action targets and their allowable values (inline or behind
 * `@Redfish.ActionInfo`). Cached per session: a converged pass pays for it once.
 */
import { ProviderError, SpecError } from '../../src/errors.js';
import type { JsonObject } from '../../src/provider.js';
import { isObject } from '../../src/util/object.js';
import type { RedfishSession } from './session.js';
import { odataId } from './session.js';

async function cached<T>(s: RedfishSession, key: string, load: () => Promise<T>): Promise<T> {
  if (s.discovery.has(key)) return s.discovery.get(key) as T;
  const value = await load();
  s.discovery.set(key, value);
  return value;
}

/** Forget a cached discovery (e.g. an account collection after a create). */
export function forget(s: RedfishSession, key: string): void {
  s.discovery.delete(key);
}

/** The `@odata.id`s of a collection's members. */
export async function members(s: RedfishSession, uri: string, signal: AbortSignal): Promise<string[]> {
  const body = await s.getJson(uri, signal);
  const list = Array.isArray(body.Members) ? body.Members : [];
  return list.map((m) => odataId(m)).filter((id): id is string => id !== undefined).map((id) => s.path(id));
}

/** The member whose URI ends in `id` (a trailing slash aside): Redfish names members by Id in their URIs. */
export function memberById(uris: string[], id: string): string | undefined {
  return uris.find((u) => u.replace(/\/+$/, '').split('/').pop() === id);
}

/** The Ids of a collection's members (last URI segments), for a message; `none` when it is empty. */
export function memberIds(uris: string[], none: string): string {
  return uris.map((u) => u.split('/').pop()).join(', ') || none;
}

async function rootLink(s: RedfishSession, name: string, signal: AbortSignal): Promise<string> {
  const root = await s.serviceRoot(signal);
  const link = odataId(root[name]);
  if (!link) throw new ProviderError(`redfish ${s.targetName}: the service root has no ${name}`);
  return s.path(link);
}

/** `member` of collection `name` (Systems, Managers): the configured id, else the first member. */
async function memberOf(s: RedfishSession, name: 'Systems' | 'Managers', id: string | undefined, signal: AbortSignal): Promise<string> {
  return cached(s, `member:${name}`, async () => {
    const collection = await rootLink(s, name, signal);
    const all = await members(s, collection, signal);
    if (id !== undefined) {
      const wanted = memberById(all, id);
      if (!wanted) throw new SpecError(`redfish ${s.targetName}: no ${name} member "${id}" (the BMC has: ${memberIds(all, 'none')})`);
      return wanted;
    }
    const first = all[0];
    if (!first) throw new ProviderError(`redfish ${s.targetName}: the ${name} collection is empty`);
    return first;
  });
}

export function systemUri(s: RedfishSession, signal: AbortSignal): Promise<string> {
  return memberOf(s, 'Systems', s.spec.systemId, signal);
}

export function managerUri(s: RedfishSession, signal: AbortSignal): Promise<string> {
  return memberOf(s, 'Managers', s.spec.managerId, signal);
}

export function serviceLink(s: RedfishSession, name: 'AccountService' | 'UpdateService' | 'TaskService', signal: AbortSignal): Promise<string> {
  return cached(s, `root:${name}`, () => rootLink(s, name, signal));
}

export interface ActionInfo {
  /** The URI to POST to. */
  target: string;
  /** Allowed values of the parameter asked for, when the BMC lists them. */
  allowed?: string[];
}

/**
 * An action of a resource: `Actions["#ComputerSystem.Reset"]` with its target and,
 * for `parameter`, the allowable values, either inline (`ResetType@Redfish.AllowableValues`)
 * or through `@Redfish.ActionInfo` (iDRAC), read once per session.
 */
export async function action(s: RedfishSession, resource: JsonObject, name: string, parameter: string | undefined, signal: AbortSignal): Promise<ActionInfo | undefined> {
  const actions = isObject(resource.Actions) ? resource.Actions : undefined;
  const entry = actions && isObject(actions[name]) ? actions[name] : undefined;
  if (!entry || typeof entry.target !== 'string') return undefined;
  const target = s.path(entry.target);
  if (parameter === undefined) return { target };
  const inline = entry[`${parameter}@Redfish.AllowableValues`];
  if (Array.isArray(inline)) return { target, allowed: inline.filter((v): v is string => typeof v === 'string') };
  const infoLink = typeof entry['@Redfish.ActionInfo'] === 'string' ? entry['@Redfish.ActionInfo'] : undefined;
  if (!infoLink) return { target };
  const allowed = await cached(s, `actioninfo:${infoLink}:${parameter}`, async () => {
    const info = await s.getJson(s.path(infoLink), signal);
    const params = Array.isArray(info.Parameters) ? info.Parameters : [];
    const p = params.find((x) => isObject(x) && x.Name === parameter);
    return isObject(p) && Array.isArray(p.AllowableValues) ? p.AllowableValues.filter((v): v is string => typeof v === 'string') : null;
  });
  return allowed ? { target, allowed } : { target };
}
