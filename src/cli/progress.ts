import type { OpResult } from '../run/runner.js';
import { redactText } from '../secrets/redact.js';
import { printable } from '../util/printable.js';
import type { Out } from './output.js';
import { formatChange } from './plan.js';

/**
 * Live progress of a pass. On a terminal: what changed or failed scrolls by,
 * and one status line at the bottom says done/total, failures and the slowest
 * targets. Elsewhere: plain lines, one per thing that happened (not per
 * resource that was already fine).
 */
export class Progress {
  readonly #out: Out;
  #total = 0;
  #done = 0;
  #failed = 0;
  readonly #slowest = new Map<string, number>();
  #statusShown = false;

  constructor(out: Out) {
    this.#out = out;
  }

  /** A pass begins (again, if the one before was superseded by a newer commit): counts start over. */
  plan(commit: string, total: number): void {
    this.finish();
    this.#total = total;
    this.#done = 0;
    this.#failed = 0;
    this.#slowest.clear();
    if (total > 0) this.#print(`${commit.slice(0, 12)}: ${total} resource(s) to check`);
  }

  result(r: OpResult): void {
    this.#done++;
    if (r.status === 'failed' || r.status === 'blocked') this.#failed++;
    if (r.target) this.#slowest.set(r.target, Math.max(this.#slowest.get(r.target) ?? 0, r.durationMs));
    if (r.status !== 'converged') this.#print(describe(r, this.#done, this.#total));
    else if (this.#out.isTTY) this.#status();
  }

  /** Clears the status line before the summary. */
  finish(): void {
    if (this.#statusShown) this.#out.write('\r\x1b[K');
    this.#statusShown = false;
  }

  #print(line: string): void {
    if (this.#statusShown) this.#out.write('\r\x1b[K');
    this.#out.write(line + '\n');
    this.#statusShown = false;
    if (this.#out.isTTY && this.#total > 0) this.#status();
  }

  #status(): void {
    const slow = [...this.#slowest].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([t, ms]) => `${t} ${(ms / 1000).toFixed(1)}s`);
    const line = `[${String(this.#done).padStart(String(this.#total).length)}/${this.#total}] ${this.#failed} failed${slow.length ? ` · slowest: ${slow.join(', ')}` : ''}`;
    this.#out.write(`\r\x1b[K${line.slice(0, Math.max(20, this.#out.columns - 1))}`);
    this.#statusShown = true;
  }
}

function describe(r: OpResult, done: number, total: number): string {
  const counter = `[${String(done).padStart(String(total).length)}/${total}]`;
  const what = r.status === 'changed' ? r.action : r.status;
  const detail = r.error ? `  ${r.error.code}: ${redactText(r.error.message)}` : r.note ? `  ${r.note}` : r.changes.length > 0 ? `  ${r.changes.map(formatChange).join('; ')}` : '';
  return printable(`${counter} ${what.padEnd(9)} ${r.id}${r.target ? ` on ${r.target}` : ''}${detail}`);
}
