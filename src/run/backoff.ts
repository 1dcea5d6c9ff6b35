export interface BackoffOptions {
  /** First delay; default 1s. */
  baseMs: number;
  /** Ceiling; default 60s. */
  maxMs: number;
}

/** Exponential backoff with equal jitter (half fixed, half random): spreads retries of many targets apart, never ~0. */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
