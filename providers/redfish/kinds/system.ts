/**
 * redfish.System: a ComputerSystem's power state, boot override, BIOS attributes,
 * asset tag and indicator LED. BIOS is staged in the `@Redfish.Settings` object and
 * applies at the next reset; a staged value equal to the desired one is "pending
 * reboot", not a reason to write again. A one-shot boot override is an action,
 * applied once per change of its spec (remembered in the memo) and never drift
 * once the next boot has consumed it. No remove(): a system cannot be deleted, and
 * dropping it from Git only makes Plumb forget it.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { ProviderError, SpecError } from '../../../src/errors.js';
import type { Change, Json, JsonObject, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import { parseDuration } from '../../../src/util/duration.js';
import { joinPointer, pointerCovers } from '../../../src/util/json-pointer.js';
import { isObject } from '../../../src/util/object.js';
import { systemUri } from '../discovery.js';
import { hashOf, issue, pollUntil, recall, settle } from '../long-ops.js';
import { canonicalEnum, chooseResetType, postReset, postResetTowards, powerStateOf, resetAction, settledPower, waitForPower, waitSettled } from '../power.js';
import type { RedfishSession } from '../session.js';
import { odataId } from '../session.js';
import { systemClaims } from '../claims.js';
import { bootOverrideToWithdraw, releasedSystem } from '../released.js';

export type BiosValue = string | number | boolean;

export interface BootSpec {
  source?: 'Pxe' | 'Hdd' | 'Cd' | 'UefiHttp' | 'BiosSetup' | 'None';
  enabled: 'Once' | 'Continuous' | 'Disabled';
  mode?: 'UEFI' | 'Legacy';
}

export interface SystemSpec {
  powerState?: 'On' | 'Off';
  powerOff?: 'GracefulShutdown' | 'ForceOff';
  gracePeriod?: string;
  boot?: BootSpec;
  bios?: Record<string, BiosValue>;
  reboot?: 'Never' | 'IfRequired';
  assetTag?: string;
  indicatorLed?: 'Lit' | 'Blinking' | 'Off';
}

export interface SystemActual {
  powerState: string;
  boot: { source: string | null; enabled: string | null; mode: string | null };
  assetTag: string | null;
  indicatorLed: string | null;
  /** Only the attributes the spec names: current values, and staged values that differ from current. */
  bios?: { current: Record<string, Json>; pending: Record<string, Json> };
}

const BOOT_SOURCES = ['None', 'Pxe', 'Hdd', 'Cd', 'UefiHttp', 'BiosSetup', 'Floppy', 'Usb', 'Utilities', 'Diags', 'UefiShell', 'UefiTarget', 'SDCard', 'RemoteDrive'];
const BOOT_ENABLED = ['Disabled', 'Once', 'Continuous'];
const BOOT_MODES = ['UEFI', 'Legacy'];
const LED = ['Lit', 'Blinking', 'Off'];
const DEFAULT_GRACE_MS = 5 * 60_000;

/** JSON pointer segment of a BIOS attribute name. */
export function biosPointer(name: string): string {
  return joinPointer('/bios', name);
}

/** Equal as the BMC types it: 3 and "3", true and "true" are the same BIOS value. */
export function biosEqual(actual: Json | undefined, want: BiosValue): boolean {
  if (actual === undefined || actual === null) return false;
  if (typeof actual === typeof want) return actual === want;
  if (typeof actual === 'number' && typeof want === 'string') return want.trim() !== '' && Number(want) === actual;
  if (typeof actual === 'string' && typeof want === 'number') return actual.trim() !== '' && Number(actual) === want;
  if (typeof actual === 'boolean' && typeof want === 'string') return want.toLowerCase() === String(actual);
  if (typeof actual === 'string' && typeof want === 'boolean') return actual.toLowerCase() === String(want);
  return false;
}

/** The desired value in the type the BMC uses for the attribute. */
export function biosWireValue(current: Json | undefined, want: BiosValue): Json {
  if (typeof current === 'number' && typeof want === 'string' && want.trim() !== '' && !Number.isNaN(Number(want))) return Number(want);
  if (typeof current === 'boolean' && typeof want === 'string' && /^(true|false)$/i.test(want)) return want.toLowerCase() === 'true';
  if (typeof current === 'string' && typeof want !== 'string') return String(want);
  return want;
}

function bootOnceMemo(memo: Json | undefined): string | undefined {
  return isObject(memo) && typeof memo.bootOnceApplied === 'string' ? memo.bootOnceApplied : undefined;
}

/**
 * Whether a reset (by Plumb) is how staged BIOS settings get applied for this spec
 * and power state. Only a system that is Off (or is to be) is left alone; one on
 * its way somewhere (a reset in progress, perhaps ours before a crash) is waited for.
 */
function resetsForBios(spec: SystemSpec, powerState: string): boolean {
  if (spec.reboot !== 'IfRequired') return false;
  return (spec.powerState ?? (powerState === 'Off' ? 'Off' : 'On')) === 'On';
}

type AttrState = 'converged' | 'pending' | 'restage' | 'write';

/** Where one attribute stands: converged, staged (pending reboot), staged with something else, or not staged. */
export function attrState(current: Json | undefined, pending: Json | undefined, want: BiosValue): AttrState {
  const curOk = biosEqual(current, want);
  if (pending === undefined) return curOk ? 'converged' : 'write';
  const pendOk = biosEqual(pending, want);
  if (curOk) return pendOk ? 'converged' : 'restage';
  return pendOk ? 'pending' : 'write';
}

const show = (v: Json | undefined): string => (v === undefined ? '(absent)' : JSON.stringify(v));

function biosChanges(r: Resource<SystemSpec>, actual: SystemActual): Change[] {
  const bios = r.spec.bios;
  if (!bios || !actual.bios) return [];
  const resets = resetsForBios(r.spec, actual.powerState);
  const changes: Change[] = [];
  for (const [name, want] of Object.entries(bios)) {
    const current = actual.bios.current[name];
    const pending = actual.bios.pending[name];
    const state = attrState(current, pending, want);
    const path = biosPointer(name);
    if (state === 'converged') continue;
    if (state === 'pending') {
      // Staged already: with reboot Never that is "pending reboot" (see pendingReboot), not a change.
      if (resets) changes.push({ path, before: current ?? null, after: want, note: `pending ${show(pending)} (current ${show(current)}); a reset applies it` });
      continue;
    }
    if (state === 'restage') {
      changes.push({ path, before: pending ?? null, after: want, note: `current ${show(current)} is right, but ${show(pending)} is staged for the next reboot; staging ${show(want)}` });
      continue;
    }
    const staged = pending !== undefined ? `, ${show(pending)} staged` : '';
    changes.push({ path, before: current ?? null, after: want, note: `current ${show(current)}${staged} -> ${show(want)}${resets ? ' (staged, then a reset)' : ' (staged; applies at the next reboot)'}` });
  }
  return changes;
}

function bootChanges(r: Resource<SystemSpec>, actual: SystemActual): Change[] {
  const boot = r.spec.boot;
  if (!boot) {
    // Plumb set a continuous override and the spec dropped it: taken back, or every boot keeps going to it.
    if (bootOverrideToWithdraw(r.spec, r.lastApplied) && actual.boot.enabled === 'Continuous') {
      return [{ path: '/boot/enabled', before: actual.boot.enabled, after: 'Disabled', note: `the spec no longer has the continuous boot override Plumb set (${actual.boot.source ?? 'None'}): disabled` }];
    }
    return [];
  }
  if (boot.enabled === 'Once') {
    // An action, not state: once applied for this spec it is converged, consumed or not.
    if (bootOnceMemo(r.memo) === hashOf(boot)) return [];
    return [
      {
        path: '/boot',
        before: { source: actual.boot.source, enabled: actual.boot.enabled, mode: actual.boot.mode },
        after: { ...boot },
        note: `one-shot boot override: ${boot.source ?? 'None'} at the next boot${boot.mode ? ` (${boot.mode})` : ''}; applied once per change of spec.boot`,
      },
    ];
  }
  const changes: Change[] = [];
  if (boot.enabled === 'Continuous' && boot.source !== undefined && actual.boot.source !== boot.source) {
    changes.push({ path: '/boot/source', before: actual.boot.source, after: boot.source });
  }
  if (actual.boot.enabled !== boot.enabled) changes.push({ path: '/boot/enabled', before: actual.boot.enabled, after: boot.enabled });
  if (boot.mode !== undefined && actual.boot.mode !== boot.mode) changes.push({ path: '/boot/mode', before: actual.boot.mode, after: boot.mode });
  return changes;
}

interface BiosResources {
  biosUri: string;
  bios: JsonObject;
  settingsUri: string;
  settings: JsonObject;
  applyTimes: string[];
}

async function readBios(s: RedfishSession, system: JsonObject, signal: AbortSignal): Promise<BiosResources> {
  const link = odataId(system.Bios);
  if (!link) throw new SpecError(`redfish ${s.targetName}: this system exposes no Bios resource; remove bios from the spec`);
  const biosUri = s.path(link);
  const bios = await s.getJson(biosUri, signal);
  const settingsMeta = isObject(bios['@Redfish.Settings']) ? bios['@Redfish.Settings'] : undefined;
  const settingsLink = settingsMeta ? odataId(settingsMeta.SettingsObject) : undefined;
  if (!settingsLink) throw new ProviderError(`redfish ${s.targetName}: ${biosUri} has no @Redfish.Settings SettingsObject; Plumb never writes the Bios resource itself`);
  const settingsUri = s.path(settingsLink);
  const settings = await s.getJson(settingsUri, signal);
  const applyTimes = Array.isArray(settingsMeta?.SupportedApplyTimes) ? settingsMeta.SupportedApplyTimes.filter((t): t is string => typeof t === 'string') : [];
  return { biosUri, bios, settingsUri, settings, applyTimes };
}

function attributesOf(body: JsonObject): JsonObject {
  return isObject(body.Attributes) ? body.Attributes : {};
}

/** Current and staged values of the named attributes; staged counts only where it differs from current. */
export function biosView(names: string[], bios: JsonObject, settings: JsonObject): { current: Record<string, Json>; pending: Record<string, Json>; unknown: string[] } {
  const cur = attributesOf(bios);
  const pend = attributesOf(settings);
  const current: Record<string, Json> = {};
  const pending: Record<string, Json> = {};
  const unknown: string[] = [];
  for (const name of names) {
    if (!(name in cur)) unknown.push(name);
    else current[name] = cur[name] as Json;
    // Some BMCs (iLO) show every attribute in the settings object: only a different value is staged.
    if (name in pend && !(name in cur && JSON.stringify(pend[name]) === JSON.stringify(cur[name]))) pending[name] = pend[name] as Json;
  }
  return { current, pending, unknown };
}

function actualOf(system: JsonObject): SystemActual {
  const boot = isObject(system.Boot) ? system.Boot : {};
  return {
    powerState: powerStateOf(system),
    boot: {
      source: canonicalEnum(boot.BootSourceOverrideTarget, BOOT_SOURCES),
      enabled: canonicalEnum(boot.BootSourceOverrideEnabled, BOOT_ENABLED),
      mode: canonicalEnum(boot.BootSourceOverrideMode, BOOT_MODES),
    },
    assetTag: typeof system.AssetTag === 'string' ? system.AssetTag : null,
    indicatorLed: canonicalEnum(system.IndicatorLED, LED),
  };
}

function graceMs(spec: SystemSpec): number {
  // A resource field, not a Target's: the schema has checked its pattern already.
  return spec.gracePeriod !== undefined ? parseDuration(spec.gracePeriod) : DEFAULT_GRACE_MS;
}

function numberField(progress: JsonObject | undefined, name: string): number | undefined {
  const v = progress?.[name];
  return typeof v === 'number' ? v : undefined;
}

/** Every desired attribute (that is being managed) is current: the staged settings took effect. */
function biosApplied(names: string[], bios: Record<string, BiosValue>, view: { current: Record<string, Json> }): boolean {
  return names.every((n) => biosEqual(view.current[n], bios[n]!));
}

/**
 * After a reset: polls until the system is On and the staged attributes are
 * current. A staged value that vanished without becoming current was discarded by
 * the BMC: an error, not a reason to reset again. `staleAfter` (resume only): a
 * journaled reset that shows no effect by then is taken as never issued, and one
 * new reset is issued (the documented rule).
 */
async function waitForBios(
  s: RedfishSession,
  r: Resource<SystemSpec>,
  uri: string,
  names: string[],
  ctx: OpContext,
  staleAfter: { at: number; reissue: () => Promise<void> } | undefined,
): Promise<void> {
  const bios = r.spec.bios!;
  let stale = staleAfter;
  await pollUntil(s, ctx, `redfish ${s.targetName}: waiting for the reset to apply BIOS settings`, async () => {
    const system = await s.getJson(uri, ctx.signal);
    if (powerStateOf(system) !== 'On') return { done: false };
    const res = await readBios(s, system, ctx.signal);
    const view = biosView(names, res.bios, res.settings);
    if (biosApplied(names, bios, view)) return { done: true, value: undefined };
    const discarded = names.filter((n) => !biosEqual(view.current[n], bios[n]!) && !(n in view.pending));
    if (discarded.length > 0) {
      throw new ProviderError(
        `redfish ${s.targetName}: the reset cleared the staged BIOS settings without applying them (${discarded.map((n) => `${n} is ${show(view.current[n])}, wanted ${show(bios[n])}`).join('; ')}); check the BMC's job queue and logs`,
      );
    }
    if (stale && Date.now() >= stale.at) {
      ctx.log.warn({ target: s.targetName, id: r.id }, 'a reset journaled before a crash shows no effect; issuing it again');
      const reissue = stale.reissue;
      stale = undefined;
      await reissue();
    }
    return { done: false };
  });
}

/**
 * GracefulShutdown, then ForceOff once the grace period of a shutdown that was
 * really issued (or whose outcome is unknown) has run out; or ForceOff at once
 * with `powerOff: ForceOff`. A refused shutdown is not journaled (see issue), so
 * a retry sends GracefulShutdown again rather than counting down to ForceOff.
 * A journaled ForceOff is waited for, up to `resetStale`, then sent again.
 */
async function powerOff(s: RedfishSession, r: Resource<SystemSpec>, uri: string, system: JsonObject, ctx: OpContext): Promise<void> {
  const reset = await resetAction(s, system, ctx.signal);
  const what = `redfish ${s.targetName}: power off`;
  const force = async (): Promise<void> => {
    const type = chooseResetType(reset.allowed, ['ForceOff'], what);
    // Keeps the shutdown's progress beside it: a refused ForceOff goes back to waiting on that shutdown.
    await issue(s, r, ctx, { ...(recall(s, r) ?? {}), forceOffIssuedAt: Date.now() }, () => postResetTowards(s, uri, reset.target, type, 'Off', ctx.signal));
    await waitForPower(s, uri, 'Off', ctx);
  };
  const forcedAt = numberField(recall(s, r), 'forceOffIssuedAt');
  if (forcedAt !== undefined) {
    ctx.log.info({ target: s.targetName, id: r.id, issuedAt: forcedAt }, 'a ForceOff for this spec was already issued; waiting for it');
    if (await waitForPower(s, uri, 'Off', ctx, forcedAt + s.resetStaleMs)) return;
    ctx.log.warn({ target: s.targetName, id: r.id }, 'a journaled ForceOff shows no effect; issuing it again');
    return force();
  }
  if ((r.spec.powerOff ?? 'GracefulShutdown') === 'ForceOff') return force();
  let issuedAt = numberField(recall(s, r), 'shutdownIssuedAt');
  if (issuedAt === undefined) {
    const type = chooseResetType(reset.allowed, ['GracefulShutdown'], what);
    issuedAt = Date.now();
    await issue(s, r, ctx, { shutdownIssuedAt: issuedAt, shutdownType: type }, () => postResetTowards(s, uri, reset.target, type, 'Off', ctx.signal));
  } else {
    ctx.log.info({ target: s.targetName, id: r.id, issuedAt }, 'a graceful shutdown for this spec was already issued; waiting for it');
  }
  // The grace period runs from when the shutdown was issued, also across a crash.
  if (await waitForPower(s, uri, 'Off', ctx, issuedAt + graceMs(r.spec))) return;
  ctx.log.warn({ target: s.targetName, id: r.id }, 'graceful shutdown did not finish within the grace period; forcing off');
  await force();
}

/**
 * Powers on (On, else PowerCycle), journaled before it is sent. A journaled power
 * on (a crash, or an unknown outcome) is waited for up to `resetStale`, then sent
 * once more.
 */
async function powerOn(s: RedfishSession, r: Resource<SystemSpec>, uri: string, system: JsonObject, ctx: OpContext): Promise<void> {
  const reset = await resetAction(s, system, ctx.signal);
  const type = chooseResetType(reset.allowed, ['On', 'PowerCycle'], `redfish ${s.targetName}: power on`);
  const send = (): Promise<void> => issue(s, r, ctx, { powerOnIssuedAt: Date.now(), resetType: type }, () => postResetTowards(s, uri, reset.target, type, 'On', ctx.signal));
  const issuedAt = numberField(recall(s, r), 'powerOnIssuedAt');
  if (issuedAt !== undefined) {
    ctx.log.info({ target: s.targetName, id: r.id, issuedAt }, 'a power on for this spec was already issued; waiting for it');
    if (await waitForPower(s, uri, 'On', ctx, issuedAt + s.resetStaleMs)) return;
    ctx.log.warn({ target: s.targetName, id: r.id }, 'a journaled power on shows no effect; issuing it again');
  }
  await send();
  await waitForPower(s, uri, 'On', ctx);
}

/**
 * A boot source the BMC does not list in its AllowableValues would only be
 * refused (PropertyValueNotInList): said before any write, with the list.
 */
function refuseUnlistedBootSource(s: RedfishSession, r: Resource<SystemSpec>, system: JsonObject, source: string): void {
  const boot = isObject(system.Boot) ? system.Boot : {};
  const listed = boot['BootSourceOverrideTarget@Redfish.AllowableValues'];
  if (!Array.isArray(listed) || listed.length === 0) return;
  const allowed = listed.filter((v): v is string => typeof v === 'string');
  if (allowed.some((v) => v.toLowerCase() === source.toLowerCase())) return;
  throw new SpecError(`${r.id}: boot.source ${source} is not offered by ${s.targetName} (BootSourceOverrideTarget@Redfish.AllowableValues: ${allowed.join(', ')})`, { pointer: '/boot/source', notSent: true });
}

/** Room for a server to reboot through POST (some take 10 minutes with many DIMMs). */
const LONG_OPERATION_MS = 20 * 60_000;

export const systemKind: KindHandler<SystemSpec, SystemActual, RedfishSession> = {
  kind: 'redfish.System',
  schema: 'redfish.system.schema.json',
  claims: (spec) => systemClaims(spec),

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    const uri = await systemUri(s, ctx.signal);
    const system = await s.getJson(uri, ctx.signal);
    const actual = actualOf(system);
    const names = Object.keys(r.spec.bios ?? {});
    if (names.length > 0) {
      const res = await readBios(s, system, ctx.signal);
      const view = biosView(names, res.bios, res.settings);
      if (view.unknown.length > 0) throw new SpecError(`${r.id}: the BIOS has no attribute ${view.unknown.map((n) => JSON.stringify(n)).join(', ')}`);
      actual.bios = { current: view.current, pending: view.pending };
    }
    return actual;
  },

  diff(r, actual) {
    if (!actual) return [{ path: '/powerState', before: null, after: r.spec.powerState ?? null, note: 'system not read' }];
    const spec = r.spec;
    const changes: Change[] = [...bootChanges(r, actual), ...biosChanges(r, actual)];
    if (spec.assetTag !== undefined && actual.assetTag !== spec.assetTag) changes.push({ path: '/assetTag', before: actual.assetTag, after: spec.assetTag });
    if (spec.indicatorLed !== undefined && actual.indicatorLed !== spec.indicatorLed) changes.push({ path: '/indicatorLed', before: actual.indicatorLed, after: spec.indicatorLed });
    if (spec.powerState !== undefined && settledPower(actual.powerState) !== spec.powerState) {
      const how = spec.powerState === 'On' ? 'power on' : (spec.powerOff ?? 'GracefulShutdown') === 'ForceOff' ? 'ForceOff' : `GracefulShutdown, ForceOff after ${spec.gracePeriod ?? '5m'}`;
      changes.push({ path: '/powerState', before: actual.powerState, after: spec.powerState, note: `${actual.powerState} -> ${spec.powerState} (${how})` });
    }
    return changes;
  },

  pendingReboot(r, actual) {
    const bios = r.spec.bios;
    if (!bios || !actual.bios || resetsForBios(r.spec, actual.powerState)) return undefined;
    const staged = Object.entries(bios).filter(([name, want]) => attrState(actual.bios!.current[name], actual.bios!.pending[name], want) === 'pending');
    if (staged.length === 0) return undefined;
    const list = staged.map(([name, want]) => `${name}=${typeof want === 'string' ? want : JSON.stringify(want)}`).join(', ');
    return `BIOS ${list} staged; applies at next reboot`;
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const spec = r.spec;
    const paths = new Set(changes.map((c) => c.path));
    const has = (p: string): boolean => [...paths].some((q) => pointerCovers(p, q));
    const uri = await systemUri(s, ctx.signal);
    let memo: JsonObject | undefined;

    // 1. Boot override, asset tag, LED: one PATCH of the system, planned against what is there.
    const bootOnce = spec.boot?.enabled === 'Once' && has('/boot');
    await s.patch(
      uri,
      (system) => {
        const now = actualOf(system);
        const body: JsonObject = {};
        const boot: JsonObject = {};
        if (spec.boot && has('/boot')) {
          const b = spec.boot;
          // Continuous/Disabled: only the fields planned (ignore: may hold some back); Once: the whole override.
          const planned = (field: string): boolean => bootOnce || paths.has('/boot') || paths.has(`/boot/${field}`);
          const sourceDiffers = planned('source') && b.enabled !== 'Disabled' && b.source !== undefined && now.boot.source !== b.source;
          const modeDiffers = planned('mode') && b.mode !== undefined && now.boot.mode !== b.mode;
          const enabledDiffers = planned('enabled') && now.boot.enabled !== b.enabled;
          // A one-shot override already set exactly so (by someone, or by us before a crash) needs no write.
          if (sourceDiffers) {
            refuseUnlistedBootSource(s, r, system, b.source!);
            boot.BootSourceOverrideTarget = b.source!;
          }
          if (enabledDiffers || (bootOnce && (sourceDiffers || modeDiffers))) boot.BootSourceOverrideEnabled = b.enabled;
          if (modeDiffers) boot.BootSourceOverrideMode = b.mode!;
        }
        if (!spec.boot && paths.has('/boot/enabled') && bootOverrideToWithdraw(spec, r.lastApplied) && now.boot.enabled === 'Continuous') boot.BootSourceOverrideEnabled = 'Disabled';
        if (Object.keys(boot).length > 0) body.Boot = boot;
        if (spec.assetTag !== undefined && paths.has('/assetTag') && now.assetTag !== spec.assetTag) body.AssetTag = spec.assetTag;
        if (spec.indicatorLed !== undefined && paths.has('/indicatorLed') && now.indicatorLed !== spec.indicatorLed) body.IndicatorLED = spec.indicatorLed;
        return body;
      },
      ctx.signal,
    );
    if (bootOnce) memo = { ...(isObject(r.memo) ? r.memo : {}), bootOnceApplied: hashOf(spec.boot) };

    // 2. BIOS: stage what is not staged yet, in the settings object, never in Bios itself.
    const managed = Object.keys(spec.bios ?? {}).filter((n) => paths.has(biosPointer(n)));
    let staged = false;
    let biosInForce = false;
    if (managed.length > 0) {
      const system = s.lastRead(uri)?.body ?? (await s.getJson(uri, ctx.signal));
      const res = await readBios(s, system, ctx.signal);
      // The attributes' states as the latest reads of Bios and its Settings show them.
      const states = (): AttrState[] => {
        const view = biosView(managed, s.lastRead(res.biosUri)?.body ?? res.bios, s.lastRead(res.settingsUri)?.body ?? res.settings);
        return managed.map((n) => attrState(view.current[n], view.pending[n], spec.bios![n]!));
      };
      // Bios, then its Settings, are two reads: a reboot that applies the staged values between
      // them shows the old values with nothing staged. Before staging anything, read Bios again.
      if (states().some((st) => st === 'write' || st === 'restage')) await s.getJson(res.biosUri, ctx.signal);
      staged = !!(await s.patch(
        res.settingsUri,
        (settings) => {
          const view = biosView(managed, s.lastRead(res.biosUri)?.body ?? res.bios, settings);
          const attrs: JsonObject = {};
          for (const name of managed) {
            const want = spec.bios![name]!;
            const state = attrState(view.current[name], view.pending[name], want);
            if (state === 'write' || state === 'restage') attrs[name] = biosWireValue(view.current[name], want);
          }
          if (Object.keys(attrs).length === 0) return undefined;
          const body: JsonObject = { Attributes: attrs };
          // iDRAC refuses a settings PATCH without an apply time; a BMC that lists OnReset gets one.
          if (res.applyTimes.includes('OnReset')) body['@Redfish.SettingsApplyTime'] = { ApplyTime: 'OnReset' };
          return body;
        },
        ctx.signal,
      ));
      // Nothing staged now and every value already in force (someone's reboot applied them): no reset is due.
      biosInForce = !staged && states().every((st) => st === 'converged');
    }

    // 3. Power, and the reset that applies staged BIOS settings (reboot: IfRequired).
    let system = await s.getJson(uri, ctx.signal);
    // Values staged just now are newer than any journaled reset: that reset cannot apply them.
    if (managed.length > 0 && !staged && numberField(recall(s, r), 'resetIssuedAt') !== undefined) {
      // A reset for this very spec is already under way (a crash, or a deadline mid-wait): wait for it, never a second one.
      await resetForBios(s, r, uri, system, managed, ctx, true);
    } else {
      if (powerStateOf(system) !== 'On' && powerStateOf(system) !== 'Off' && (has('/powerState') || managed.length > 0)) system = await waitSettled(s, uri, ctx);
      const power = powerStateOf(system);
      const biosNeedsReset = managed.length > 0 && resetsForBios(spec, power);
      if (spec.powerState === 'Off' && paths.has('/powerState') && power !== 'Off') {
        await powerOff(s, r, uri, system, ctx);
      } else if (spec.powerState === 'On' && paths.has('/powerState') && power !== 'On') {
        await powerOn(s, r, uri, system, ctx);
        // Power-on passes through POST: staged BIOS settings apply now.
        if (biosNeedsReset) await waitForBios(s, r, uri, managed, ctx, undefined);
      } else if (biosNeedsReset && power === 'On' && !biosInForce) {
        await resetForBios(s, r, uri, system, managed, ctx, !staged);
      }
    }
    settle(s, r);
    return memo ? { memo } : undefined;
  },

  released(r) {
    return releasedSystem(r.spec, r.lastApplied);
  },

  /** A reboot (BIOS, power on, graceful shutdown with its grace period) takes minutes, not the default 2. */
  deadlineMs(r) {
    const mayReset = (r.spec.bios !== undefined && r.spec.reboot === 'IfRequired') || r.spec.powerState !== undefined;
    return mayReset ? LONG_OPERATION_MS : undefined;
  },

  summarize(actual) {
    if (!actual) return null;
    const out: JsonObject = {
      powerState: actual.powerState,
      boot: `${actual.boot.source ?? '-'}/${actual.boot.enabled ?? '-'}${actual.boot.mode ? `/${actual.boot.mode}` : ''}`,
    };
    if (actual.assetTag !== null) out.assetTag = actual.assetTag;
    if (actual.indicatorLed !== null) out.indicatorLed = actual.indicatorLed;
    if (actual.bios) {
      const bios: JsonObject = {};
      for (const [k, v] of Object.entries(actual.bios.current)) bios[k] = k in actual.bios.pending ? { current: v, pending: actual.bios.pending[k]! } : v;
      out.bios = bios;
    }
    return out;
  },
};

/**
 * Resets to apply staged BIOS settings, at most once per plan: the reset is
 * journaled (checkpoint) before it is issued; after a crash or a retry the
 * journaled reset is waited for instead of issuing another.
 */
async function resetForBios(s: RedfishSession, r: Resource<SystemSpec>, uri: string, system: JsonObject, names: string[], ctx: OpContext, resumeAllowed: boolean): Promise<void> {
  const reset = await resetAction(s, system, ctx.signal);
  const type = chooseResetType(reset.allowed, ['ForceRestart', 'PowerCycle', 'GracefulRestart'], `redfish ${s.targetName}: reset to apply BIOS settings`);
  const reissue = (): Promise<void> => issue(s, r, ctx, { resetIssuedAt: Date.now(), resetType: type }, () => postReset(s, reset.target, type, ctx.signal));
  const issuedAt = numberField(recall(s, r), 'resetIssuedAt');
  if (issuedAt !== undefined && resumeAllowed) {
    ctx.log.info({ target: s.targetName, id: r.id, issuedAt }, 'a reset for this spec was already issued; waiting for it instead of resetting again');
    await waitForBios(s, r, uri, names, ctx, { at: issuedAt + s.resetStaleMs, reissue });
    return;
  }
  await reissue();
  await waitForBios(s, r, uri, names, ctx, undefined);
}
