/**
 * Last line of defence for invariant 7: every resolved secret value is registered
 * here, and anything about to be logged or stored (error messages, command output)
 * is scrubbed of it. The first lines of defence are that secret fields only ever
 * hold references and that Secret objects print as [REDACTED].
 */
const MIN_LENGTH = 4; // shorter values would scrub ordinary words
const known = new Set<string>();

export function registerSecretValue(value: Buffer | string): void {
  const text = typeof value === 'string' ? value : value.toString('utf8');
  for (const candidate of [text, text.trim()]) {
    if (candidate.length >= MIN_LENGTH) known.add(candidate);
  }
  // Multi-line secrets (PEM keys) are also scrubbed line by line, so a fragment never leaks.
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed.length >= 16 && !/^-----(BEGIN|END) /.test(trimmed)) known.add(trimmed);
  }
}

export function redactText(text: string): string {
  if (known.size === 0 || text.length === 0) return text;
  let out = text;
  for (const value of known) {
    if (out.includes(value)) out = out.split(value).join('[REDACTED]');
  }
  return out;
}

/** Deep copy of a JSON-ish value with every string scrubbed. */
export function redactDeep<T>(value: T): T {
  if (known.size === 0) return value;
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}
