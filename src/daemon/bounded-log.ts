import type { Log } from '../provider.js';

export interface LogBudget {
  /** Lines written as they come in each interval (default 5). */
  lines: number;
  /** The interval (default 60 s). */
  intervalMs: number;
}

export const DEFAULT_LOG_BUDGET: LogBudget = { lines: 5, intervalMs: 60_000 };

/**
 * Log lines that anyone who can reach the listener can cause, bounded: in each
 * interval the first `lines` are written as they come, the rest are only
 * counted, and one summary line at the end of the interval says how many were
 * left out, from how many addresses and for what. A flood from any number of
 * addresses costs a few lines a minute, not one per request.
 */
export class BoundedLog {
  /** Distinct addresses counted per interval; past this the count says "at least". */
  static readonly MAX_ADDRESSES = 10_000;
  readonly #log: Log;
  readonly #level: 'warn' | 'error';
  readonly #summary: string;
  readonly #budget: LogBudget;
  readonly #now: () => number;
  #start = Number.NEGATIVE_INFINITY;
  #written = 0;
  #left = 0;
  readonly #addresses = new Set<string>();
  readonly #by = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Log, level: 'warn' | 'error', summary: string, budget: LogBudget = DEFAULT_LOG_BUDGET, now: () => number = Date.now) {
    this.#log = log;
    this.#level = level;
    this.#summary = summary;
    this.#budget = budget;
    this.#now = now;
  }

  /** Writes the line if this interval's budget allows, else counts it (by `remote`, and by `tally` in the summary). */
  write(remote: string, fields: Record<string, unknown>, msg: string, tally?: string): void {
    const now = this.#roll();
    if (this.#written < this.#budget.lines) {
      this.#written++;
      this.#log[this.#level](fields, msg);
      return;
    }
    this.#leaveOut(now, remote, tally);
  }

  /** Counts a line for the summary without writing it (one already said that the rest will only be counted). */
  count(remote: string, tally?: string): void {
    const now = this.#roll();
    this.#leaveOut(now, remote, tally);
  }

  /** The time now, having closed the interval (and said what it left out) if it is over. */
  #roll(): number {
    const now = this.#now();
    if (now - this.#start >= this.#budget.intervalMs) {
      this.#flush(now);
      this.#start = now;
      this.#written = 0;
    }
    return now;
  }

  #leaveOut(now: number, remote: string, tally: string | undefined): void {
    this.#left++;
    if (this.#addresses.size < BoundedLog.MAX_ADDRESSES) this.#addresses.add(remote);
    if (tally !== undefined) this.#by.set(tally, (this.#by.get(tally) ?? 0) + 1);
    if (!this.#timer) {
      // The summary comes at the end of the interval even if nothing else arrives.
      this.#timer = setTimeout(() => this.#flush(this.#now()), Math.max(0, this.#start + this.#budget.intervalMs - now));
      this.#timer.unref();
    }
  }

  /** Writes the summary of what is pending now (at shutdown: nothing counted goes unsaid). */
  close(): void {
    this.#flush(this.#now());
  }

  #flush(now: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#left === 0) return;
    const fields: Record<string, unknown> = {
      count: this.#left,
      addresses: this.#addresses.size,
      ...(this.#addresses.size >= BoundedLog.MAX_ADDRESSES ? { addressesCapped: true } : {}),
      seconds: Math.max(1, Math.round((Math.min(now, this.#start + this.#budget.intervalMs) - this.#start) / 1_000)),
      ...(this.#by.size > 0 ? { by: Object.fromEntries(this.#by) } : {}),
    };
    this.#left = 0;
    this.#addresses.clear();
    this.#by.clear();
    this.#log[this.#level](fields, this.#summary);
  }
}
