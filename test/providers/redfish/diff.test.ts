/**
 * The pure parts of the redfish kinds: diff, pendingReboot, normalisation. No BMC
 * needed: read's results are written out by hand.
 */
import { describe, expect, it } from 'vitest';
import { accountKind } from '../../../providers/redfish/kinds/account.js';
import { firmwareKind } from '../../../providers/redfish/kinds/firmware.js';
import { managerKind, normalizeOffset, ntpServers } from '../../../providers/redfish/kinds/manager.js';
import type { SystemActual, SystemSpec } from '../../../providers/redfish/kinds/system.js';
import { attrState, biosEqual, biosPointer, biosView, biosWireValue, systemKind } from '../../../providers/redfish/kinds/system.js';
import { virtualMediaKind } from '../../../providers/redfish/kinds/virtual-media.js';
import { hashOf } from '../../../providers/redfish/long-ops.js';
import type { Json } from '../../../src/provider.js';
import { makeResource } from '../../helpers/resources.js';

const sys = (spec: SystemSpec, memo?: Json) => makeResource<SystemSpec>('redfish.System', 'node1', spec, memo !== undefined ? { memo } : {});
const actual = (over: Partial<SystemActual> = {}): SystemActual => ({
  powerState: 'On',
  boot: { source: 'None', enabled: 'Disabled', mode: 'UEFI' },
  assetTag: '',
  indicatorLed: 'Off',
  ...over,
});

describe('redfish.System diff', () => {
  it('BIOS values compare as the BMC types them', () => {
    expect(biosEqual(2, '2')).toBe(true);
    expect(biosEqual('2', 2)).toBe(true);
    expect(biosEqual(true, 'true')).toBe(true);
    expect(biosEqual('Enabled', 'enabled')).toBe(false); // BIOS enums are case-sensitive
    expect(biosEqual(undefined, 'x')).toBe(false);
    expect(biosWireValue(1, '2')).toBe(2);
    expect(biosWireValue(false, 'true')).toBe(true);
    expect(biosWireValue('a', 3)).toBe('3');
    expect(biosPointer('a/b~c')).toBe('/bios/a~1b~0c');
  });

  it('attribute states: converged, pending (staged = desired), restage, write', () => {
    expect(attrState('Enabled', undefined, 'Enabled')).toBe('converged');
    expect(attrState('Enabled', 'Enabled', 'Enabled')).toBe('converged');
    expect(attrState('Disabled', 'Enabled', 'Enabled')).toBe('pending');
    expect(attrState('Enabled', 'Disabled', 'Enabled')).toBe('restage');
    expect(attrState('Disabled', undefined, 'Enabled')).toBe('write');
    expect(attrState('Disabled', 'Other', 'Enabled')).toBe('write');
  });

  it('the settings object counts as staged only where it differs from current (iLO shows everything)', () => {
    const view = biosView(['A', 'B', 'C'], { Attributes: { A: 1, B: 'x', C: true } }, { Attributes: { A: 1, B: 'y' } });
    expect(view).toEqual({ current: { A: 1, B: 'x', C: true }, pending: { B: 'y' }, unknown: [] });
    expect(biosView(['Z'], { Attributes: {} }, {}).unknown).toEqual(['Z']);
  });

  it('reboot Never: a staged desired value is pending reboot, not a change', () => {
    const r = sys({ bios: { ProcTurboMode: 'Enabled' } });
    const a = actual({ bios: { current: { ProcTurboMode: 'Disabled' }, pending: { ProcTurboMode: 'Enabled' } } });
    expect(systemKind.diff(r, a)).toEqual([]);
    expect(systemKind.pendingReboot!(r, a)).toBe('BIOS ProcTurboMode=Enabled staged; applies at next reboot');
    // Not staged yet: a change, with current in the note.
    const b = actual({ bios: { current: { ProcTurboMode: 'Disabled' }, pending: {} } });
    expect(systemKind.diff(r, b)).toEqual([
      { path: '/bios/ProcTurboMode', before: 'Disabled', after: 'Enabled', note: 'current "Disabled" -> "Enabled" (staged; applies at the next reboot)' },
    ]);
    expect(systemKind.pendingReboot!(r, actual({ bios: { current: { ProcTurboMode: 'Enabled' }, pending: {} } }))).toBeUndefined();
  });

  it('reboot IfRequired: a staged value is a change (a reset applies it), with pending vs current in the note', () => {
    const r = sys({ bios: { ProcTurboMode: 'Enabled' }, reboot: 'IfRequired' });
    const a = actual({ bios: { current: { ProcTurboMode: 'Disabled' }, pending: { ProcTurboMode: 'Enabled' } } });
    expect(systemKind.diff(r, a)).toEqual([{ path: '/bios/ProcTurboMode', before: 'Disabled', after: 'Enabled', note: 'pending "Enabled" (current "Disabled"); a reset applies it' }]);
    expect(systemKind.pendingReboot!(r, a)).toBeUndefined();
    // A system that is (to be) Off is never powered up to apply BIOS: pending reboot.
    const off = sys({ bios: { ProcTurboMode: 'Enabled' }, reboot: 'IfRequired', powerState: 'Off' });
    expect(systemKind.diff(off, { ...a, powerState: 'Off' })).toEqual([]);
    expect(systemKind.pendingReboot!(off, { ...a, powerState: 'Off' })).toMatch(/staged/);
  });

  it('a wrong value staged over a right current value is re-staged', () => {
    const r = sys({ bios: { NumaNodesPerSocket: 2 } });
    const changes = systemKind.diff(r, actual({ bios: { current: { NumaNodesPerSocket: 2 }, pending: { NumaNodesPerSocket: 4 } } }));
    expect(changes).toMatchObject([{ path: '/bios/NumaNodesPerSocket', before: 4, after: 2 }]);
  });

  it('one-shot boot override: a change until applied for this spec, then never drift', () => {
    const boot = { source: 'Pxe' as const, enabled: 'Once' as const, mode: 'UEFI' as const };
    const fresh = sys({ boot });
    expect(systemKind.diff(fresh, actual()).map((c) => c.path)).toEqual(['/boot']);
    const applied = sys({ boot }, { bootOnceApplied: hashOf(boot) });
    // Still set, or consumed by the next boot: converged either way.
    expect(systemKind.diff(applied, actual({ boot: { source: 'Pxe', enabled: 'Once', mode: 'UEFI' } }))).toEqual([]);
    expect(systemKind.diff(applied, actual({ boot: { source: 'None', enabled: 'Disabled', mode: 'UEFI' } }))).toEqual([]);
    // A new spec is a new action.
    expect(systemKind.diff(sys({ boot: { ...boot, source: 'Cd' } }, { bootOnceApplied: hashOf(boot) }), actual()).map((c) => c.path)).toEqual(['/boot']);
  });

  it('Continuous and Disabled overrides are state', () => {
    expect(systemKind.diff(sys({ boot: { source: 'Hdd', enabled: 'Continuous' } }), actual()).map((c) => c.path)).toEqual(['/boot/source', '/boot/enabled']);
    expect(systemKind.diff(sys({ boot: { source: 'Hdd', enabled: 'Continuous' } }), actual({ boot: { source: 'Hdd', enabled: 'Continuous', mode: 'UEFI' } }))).toEqual([]);
    expect(systemKind.diff(sys({ boot: { enabled: 'Disabled' } }), actual())).toEqual([]);
    expect(systemKind.diff(sys({ boot: { enabled: 'Disabled', mode: 'Legacy' } }), actual()).map((c) => c.path)).toEqual(['/boot/mode']);
  });

  it('power: transitional states count as where they are heading', () => {
    const on = sys({ powerState: 'On' });
    expect(systemKind.diff(on, actual({ powerState: 'PoweringOn' }))).toEqual([]);
    expect(systemKind.diff(on, actual({ powerState: 'PoweringOff' }))).toMatchObject([{ path: '/powerState', before: 'PoweringOff', after: 'On' }]);
    expect(systemKind.diff(sys({ powerState: 'Off', gracePeriod: '30s' }), actual())).toMatchObject([{ path: '/powerState', note: 'On -> Off (GracefulShutdown, ForceOff after 30s)' }]);
    expect(systemKind.diff(sys({ powerState: 'Off', powerOff: 'ForceOff' }), actual())[0]!.note).toBe('On -> Off (ForceOff)');
  });

  it('asset tag and LED; fields not in the spec are not managed', () => {
    expect(systemKind.diff(sys({ assetTag: 'r1', indicatorLed: 'Lit' }), actual()).map((c) => c.path)).toEqual(['/assetTag', '/indicatorLed']);
    expect(systemKind.diff(sys({}), actual({ assetTag: 'whatever', indicatorLed: 'Blinking', powerState: 'Off' }))).toEqual([]);
  });

  it('summarize shows pending next to current', () => {
    expect(systemKind.summarize!(actual({ bios: { current: { A: 'x', B: 1 }, pending: { A: 'y' } } }))).toEqual({
      powerState: 'On',
      boot: 'None/Disabled/UEFI',
      assetTag: '',
      indicatorLed: 'Off',
      bios: { A: { current: 'x', pending: 'y' }, B: 1 },
    });
  });
});

describe('redfish.Manager diff', () => {
  it('normalises NTP lists and offsets', () => {
    expect(ntpServers(['a', '', null, ' b '])).toEqual(['a', 'b']);
    expect(normalizeOffset('+1:00')).toBe('+01:00');
    expect(normalizeOffset('Z')).toBe('+00:00');
    expect(normalizeOffset('-00:00')).toBe('+00:00');
  });

  it('lists only what differs, with JSON pointers', () => {
    const r = makeResource('redfish.Manager', 'bmc', { ntp: { enabled: true, servers: ['a', 'b'] }, protocols: { IPMI: { enabled: false }, SSH: { enabled: true, port: 22 } }, timeZone: 'UTC' });
    expect(managerKind.diff(r, { timeZone: '+00:00', ntp: { enabled: true, servers: ['a', 'b'] }, protocols: { IPMI: { enabled: false, port: 623 }, SSH: { enabled: true, port: 22 } } })).toEqual([]);
    expect(managerKind.diff(r, { timeZone: '+01:00', ntp: { enabled: false, servers: ['b', 'a'] }, protocols: { IPMI: { enabled: true, port: 623 }, SSH: { enabled: true, port: 2222 } } }).map((c) => c.path)).toEqual([
      '/timeZone',
      '/ntp/enabled',
      '/ntp/servers',
      '/protocols/IPMI/enabled',
      '/protocols/SSH/port',
    ]);
  });
});

describe('redfish.Account diff', () => {
  const r = makeResource('redfish.Account', 'ops', { username: 'ops', role: 'Operator', password: 'env:OPS_PW' });
  it('absent: one create; present: role, enabled, and the password by keyed hash only', () => {
    expect(accountKind.diff(r, undefined)).toMatchObject([{ path: '/username', after: 'ops' }]);
    expect(accountKind.diff(r, { username: 'ops', role: 'Operator', enabled: true, locked: false, passwordApplied: true })).toEqual([]);
    const changes = accountKind.diff(r, { username: 'ops', role: 'ReadOnly', enabled: false, locked: false, passwordApplied: false });
    expect(changes.map((c) => c.path)).toEqual(['/role', '/enabled', '/password']);
    expect(JSON.stringify(changes)).not.toMatch(/hmac/);
  });
});

describe('redfish.VirtualMedia and redfish.Firmware diff', () => {
  it('virtual media: insert, swap, write protection', () => {
    const r = makeResource('redfish.VirtualMedia', 'iso', { image: 'http://x/a.iso' });
    expect(virtualMediaKind.diff(r, undefined)).toMatchObject([{ path: '/image', note: 'insert http://x/a.iso' }]);
    expect(virtualMediaKind.diff(r, { slot: 'CD', image: 'http://x/a.iso', inserted: true, writeProtected: true })).toEqual([]);
    expect(virtualMediaKind.diff(r, { slot: 'CD', image: 'http://x/b.iso', inserted: true, writeProtected: false }).map((c) => c.path)).toEqual(['/image', '/writeProtected']);
  });

  it('firmware: the version, exactly', () => {
    const r = makeResource('redfish.Firmware', 'bios', { component: 'BIOS', version: '2.19.1', image: 'http://x/BIOS-2.19.1.bin' });
    expect(firmwareKind.diff(r, { component: 'BIOS', name: 'BIOS', version: '2.19.1', updateable: true })).toEqual([]);
    expect(firmwareKind.diff(r, { component: 'BIOS', name: 'BIOS', version: '2.18.1', updateable: true })).toMatchObject([{ path: '/version', before: '2.18.1', after: '2.19.1' }]);
  });
});
