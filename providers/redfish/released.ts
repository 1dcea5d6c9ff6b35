/**
 * What "removed from the spec" means on a BMC (issue 9, three-way diff). Most
 * Redfish properties have no unset: a BIOS attribute, the asset tag, the LED,
 * the power state, the time zone, a protocol's port keep the value Plumb gave
 * them, and plan says so (released). Two things Plumb set can be taken back
 * without touching anyone else's: a continuous boot override (set back to
 * Disabled, or every boot goes to PXE forever) and the NTP servers Plumb put
 * in the list (the ones others added stay). Those are changes, in diff.
 */
import type { Json } from '../../src/provider.js';
import { joinPointer } from '../../src/util/json-pointer.js';
import type { ManagerSpec } from './kinds/manager.js';
import type { SystemSpec } from './kinds/system.js';

export interface Released {
  path: string;
  note: string;
}

const keeps = (value: unknown, why: string): string => `no longer managed; keeps ${JSON.stringify(value)} (${why})`;

/** System fields the last applied spec set and this one leaves out, that stay as they are on the BMC. */
export function releasedSystem(spec: SystemSpec, last: SystemSpec | undefined): Released[] {
  if (!last) return [];
  const out: Released[] = [];
  if (last.powerState !== undefined && spec.powerState === undefined) out.push({ path: '/powerState', note: keeps(last.powerState, 'Plumb no longer powers it on or off') });
  if (last.assetTag !== undefined && spec.assetTag === undefined) out.push({ path: '/assetTag', note: keeps(last.assetTag, 'the asset tag has no unset') });
  if (last.indicatorLed !== undefined && spec.indicatorLed === undefined) out.push({ path: '/indicatorLed', note: keeps(last.indicatorLed, 'the LED has no unset') });
  for (const [name, value] of Object.entries(last.bios ?? {})) {
    if (spec.bios?.[name] !== undefined) continue;
    out.push({ path: joinPointer('/bios', name), note: keeps(value, 'a BIOS attribute cannot be unset; a value staged and not yet applied still applies at the next reboot') });
  }
  return out;
}

/** A continuous override the last applied spec set and this one no longer has: Plumb sets it back to Disabled. */
export function bootOverrideToWithdraw(spec: SystemSpec, last: SystemSpec | undefined): boolean {
  return spec.boot === undefined && last?.boot?.enabled === 'Continuous';
}

/** Manager fields the last applied spec set and this one leaves out, that keep their value. */
export function releasedManager(spec: ManagerSpec, last: ManagerSpec | undefined): Released[] {
  if (!last) return [];
  const out: Released[] = [];
  if (last.timeZone !== undefined && spec.timeZone === undefined) out.push({ path: '/timeZone', note: keeps(last.timeZone, 'the time zone has no unset') });
  if (last.ntp?.enabled !== undefined && spec.ntp?.enabled === undefined) out.push({ path: '/ntp/enabled', note: keeps(last.ntp.enabled, 'NTP stays as it is') });
  for (const [name, p] of Object.entries(last.protocols ?? {})) {
    const now = spec.protocols?.[name];
    for (const field of ['enabled', 'port'] as const) {
      if (p[field] !== undefined && now?.[field] === undefined) out.push({ path: joinPointer(joinPointer('/protocols', name), field), note: keeps(p[field] as Json, `protocol ${name} keeps its ${field}`) });
    }
  }
  return out;
}

/**
 * The NTP servers Plumb put there and the spec no longer names: when the spec
 * drops `ntp.servers`, the list Plumb last applied is taken out of what the BMC
 * has, and the servers someone else added stay. Undefined: nothing to take back.
 */
export function ntpServersToWithdraw(spec: ManagerSpec, last: ManagerSpec | undefined): string[] | undefined {
  if (spec.ntp?.servers !== undefined || last?.ntp?.servers === undefined) return undefined;
  return last.ntp.servers.map((v) => v.trim());
}
