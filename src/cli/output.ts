/** Output helpers: aligned tables on a TTY, plain lines otherwise, JSON for scripts. */

export interface Out {
  isTTY: boolean;
  columns: number;
  write(text: string): void;
}

/** Set once the reader of stdout has gone away (`plumb history | head -1`): the rest of the output has nowhere to go. */
let stdoutClosed = false;

export function stdout(): Out {
  return {
    // PLUMB_TABLES=1 asks for the terminal layout on a pipe (the demo, `| less`).
    isTTY: Boolean(process.stdout.isTTY) || process.env.PLUMB_TABLES === '1',
    columns: process.stdout.columns ?? 120,
    write: (text) => {
      if (!stdoutClosed) process.stdout.write(text);
    },
  };
}

/**
 * Installed once, before any command runs. A reader that stops early (`| head`)
 * is not an error: the rest of the output is dropped and the command finishes
 * its work (apply finishes its pass) and exits as usual, with no EPIPE trace.
 * Any other write error (a full disk behind `> file`) is one line and exit 1.
 */
export function guardOutputStreams(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (stdoutClosed) return; // writes already in flight fail the same way
    stdoutClosed = true;
    if (err.code === 'EPIPE') return;
    process.exitCode = 1;
    process.stderr.write(`plumb: cannot write the output: ${err.message}\n`);
  });
  // Nothing is left to tell when stderr itself is closed (`2>&1 | head`).
  process.stderr.on('error', () => {});
}

/**
 * Lines gathered into writes of about 64 KiB: a plan of 100k ops is a few hundred
 * writes to stdout, not 100k. `flush()` writes what is left.
 */
export function batched(out: Out): Out & { flush(): void } {
  let pending = '';
  return {
    isTTY: out.isTTY,
    columns: out.columns,
    write(text) {
      pending += text;
      if (pending.length >= 65536) this.flush();
    },
    flush() {
      if (pending !== '') out.write(pending);
      pending = '';
    },
  };
}

export function printJson(out: Out, value: unknown): void {
  out.write(JSON.stringify(value, null, 2) + '\n');
}

/** Aligned columns; the last column is cut to the terminal width on a TTY, tab-separated otherwise. */
export function printTable(out: Out, headers: string[], rows: string[][]): void {
  if (!out.isTTY) {
    for (const row of rows) out.write(row.join('\t') + '\n');
    return;
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => {
    const text = cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
    return text.length > out.columns ? text.slice(0, out.columns - 1) + '…' : text;
  };
  out.write(line(headers) + '\n');
  for (const row of rows) out.write(line(row) + '\n');
}

/** "3m ago" on a TTY, ISO time otherwise. */
export function when(out: Out, at: number | null | undefined, now = Date.now()): string {
  if (at === null || at === undefined) return '-';
  if (!out.isTTY) return new Date(at).toISOString();
  const s = Math.round((now - at) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function short(commit: string | null | undefined): string {
  return commit ? commit.slice(0, 12) : '-';
}
