/**
 * Power and reset of a ComputerSystem: the reset type chosen from what the BMC
 * allows, the PowerState polled until it settles. Transitional states count as
 * where they are heading, so a reset in progress is never mistaken for drift.
 */
import { ProviderError, SpecError } from '../../src/errors.js';
import type { JsonObject } from '../../src/provider.js';
import { action } from './discovery.js';
import { pollUntil, type PollLimit } from './long-ops.js';
import type { RedfishSession } from './session.js';

export type PowerState = 'On' | 'Off' | 'PoweringOn' | 'PoweringOff' | 'Paused' | string;

const POWER_STATES = ['On', 'Off', 'PoweringOn', 'PoweringOff', 'Paused'];

/** Case-insensitive match against canonical values; unknown values are returned as given. */
export function canonicalEnum(value: unknown, canonical: readonly string[]): string | null {
  if (typeof value !== 'string') return null;
  return canonical.find((c) => c.toLowerCase() === value.toLowerCase()) ?? value;
}

export function powerStateOf(system: JsonObject): PowerState {
  return canonicalEnum(system.PowerState, POWER_STATES) ?? 'Unknown';
}

/** Where a power state is heading: PoweringOn counts as On, PoweringOff as Off. */
export function settledPower(state: PowerState): string {
  if (state === 'PoweringOn') return 'On';
  if (state === 'PoweringOff') return 'Off';
  return state;
}

/** The first of `preferences` the BMC allows (all of them, when it does not say). */
export function chooseResetType(allowed: string[] | undefined, preferences: string[], what: string): string {
  if (!allowed || allowed.length === 0) return preferences[0]!;
  const found = preferences.find((p) => allowed.includes(p));
  if (!found) throw new SpecError(`${what}: the BMC allows ResetType ${allowed.join(', ')}; none of ${preferences.join(', ')}`);
  return found;
}

export async function resetAction(s: RedfishSession, system: JsonObject, signal: AbortSignal): Promise<{ target: string; allowed?: string[] }> {
  const info = await action(s, system, '#ComputerSystem.Reset', 'ResetType', signal);
  if (!info) throw new SpecError(`redfish ${s.targetName}: the system lists no #ComputerSystem.Reset action`);
  return info;
}

/** POST the reset; no If-Match on actions. */
export async function postReset(s: RedfishSession, target: string, resetType: string, signal: AbortSignal): Promise<void> {
  s.log.info({ target: s.targetName, resetType }, 'redfish reset');
  await s.post(target, { ResetType: resetType }, signal);
}

/**
 * POSTs a reset that takes the system to `want`. The power state can change
 * between Plumb's read and the reset (a button pressed, a shutdown finishing as
 * its grace period does), and real BMCs refuse a reset that is no longer needed:
 * iDRAC with 409 "Server is already powered ON/OFF", iLO with 400
 * InvalidOperationForSystemState. A refusal after which the system reads as
 * `want` (or on its way there) is success; any other refusal stands.
 */
export async function postResetTowards(s: RedfishSession, systemUri: string, target: string, resetType: string, want: 'On' | 'Off', signal: AbortSignal): Promise<void> {
  try {
    await postReset(s, target, resetType, signal);
  } catch (err) {
    // Only an answer of the BMC's: a lost or unsent request says nothing about the power state.
    if (!(err instanceof ProviderError || err instanceof SpecError) || (err as { requestSent?: unknown }).requestSent === false) throw err;
    const system = await s.getJson(systemUri, signal).catch(() => undefined);
    if (system === undefined || settledPower(powerStateOf(system)) !== want) throw err;
    s.log.info({ target: s.targetName, resetType, powerState: powerStateOf(system) }, 'redfish reset refused: the system is already where it was to go');
  }
}

/** Polls until PowerState is `want` (true), or until `untilMs` (epoch ms) passes (false). */
export async function waitForPower(s: RedfishSession, systemUri: string, want: 'On' | 'Off', limit: PollLimit, untilMs?: number): Promise<boolean> {
  return pollUntil<boolean>(s, limit, `redfish ${s.targetName}: waiting for power ${want}`, async () => {
    const system = await s.getJson(systemUri, limit.signal);
    if (powerStateOf(system) === want) return { done: true, value: true };
    if (untilMs !== undefined && Date.now() >= untilMs) return { done: true, value: false };
    return { done: false };
  });
}

/** Polls until the system is On or Off (not on its way). */
export async function waitSettled(s: RedfishSession, systemUri: string, limit: PollLimit): Promise<JsonObject> {
  return pollUntil<JsonObject>(s, limit, `redfish ${s.targetName}: waiting for the power state to settle`, async () => {
    const system = await s.getJson(systemUri, limit.signal);
    const state = powerStateOf(system);
    return state === 'On' || state === 'Off' ? { done: true, value: system } : { done: false };
  });
}
