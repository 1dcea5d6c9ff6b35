import { SpecError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DURATION_PATTERN = /^([0-9]+)(ms|s|m|h|d)$/;

/** `90s`, `5m`, `2h` -> milliseconds. Throws on anything else (schemas check the pattern first). */
export function parseDuration(text: string): number {
  const match = DURATION_PATTERN.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration like 500ms, 30s, 5m, 2h or 1d`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

/** A Target's optional duration field in ms (`fallback` when unset); anything else is a SpecError naming the target and field. */
export function durationField(target: string, field: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  try {
    return parseDuration(text);
  } catch {
    throw new SpecError(`target ${target}: ${field} "${text}" is not a duration like 30s or 2m`);
  }
}
