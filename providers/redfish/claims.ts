/**
 * What each Redfish kind owns on its BMC (one system and one manager per
 * target): a system's fields and BIOS attributes one by one, a manager's NTP,
 * time zone and each protocol, an account by user name, a media slot, a
 * firmware component.
 */
import type { Claim } from '../../src/provider.js';
import type { AccountSpec } from './kinds/account.js';
import type { FirmwareSpec } from './kinds/firmware.js';
import type { ManagerSpec } from './kinds/manager.js';
import type { SystemSpec } from './kinds/system.js';
import type { VirtualMediaSpec } from './kinds/virtual-media.js';

function claim(key: string[], label: string, pointer: string, whole = false): Claim {
  return { key, label, pointer, ...(whole ? { whole } : {}) };
}

export function systemClaims(spec: SystemSpec): Claim[] {
  const claims: Claim[] = [];
  // Power and its shutdown policy are one thing: who decides when the system goes off.
  if (spec.powerState !== undefined) claims.push(claim(['system', 'powerState'], 'the system power state', '/powerState'));
  if (spec.boot !== undefined) claims.push(claim(['system', 'boot'], 'the boot override', '/boot', true));
  if (spec.assetTag !== undefined) claims.push(claim(['system', 'assetTag'], 'the asset tag', '/assetTag'));
  if (spec.indicatorLed !== undefined) claims.push(claim(['system', 'indicatorLed'], 'the indicator LED', '/indicatorLed'));
  for (const name of Object.keys(spec.bios ?? {})) claims.push(claim(['system', 'bios', name], `BIOS attribute ${name}`, `/bios/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`));
  return claims;
}

export function managerClaims(spec: ManagerSpec): Claim[] {
  const claims: Claim[] = [];
  if (spec.ntp !== undefined) claims.push(claim(['manager', 'ntp'], 'the manager NTP settings', '/ntp', true));
  if (spec.timeZone !== undefined) claims.push(claim(['manager', 'timeZone'], 'the manager time zone', '/timeZone'));
  for (const name of Object.keys(spec.protocols ?? {})) claims.push(claim(['manager', 'protocol', name.toUpperCase()], `network protocol ${name}`, `/protocols/${name}`, true));
  return claims;
}

export function accountClaims(spec: AccountSpec): Claim[] {
  return [claim(['account', spec.username], `account ${spec.username}`, '/username', true)];
}

/** A slot named by id, else "the first slot taking this media type": two resources resolving the same way collide. */
export function virtualMediaClaims(spec: VirtualMediaSpec): Claim[] {
  const slot = spec.slot !== undefined ? `slot ${spec.slot}` : `first ${spec.mediaType ?? 'CD'} slot`;
  return [claim(['virtual-media', slot], `virtual media ${slot}`, spec.slot !== undefined ? '/slot' : '', true)];
}

export function firmwareClaims(spec: FirmwareSpec): Claim[] {
  return [claim(['firmware', spec.component], `firmware component ${spec.component}`, '/component', true)];
}
