import { printable } from '../util/printable.js';

/** Lines per side above which no line diff is computed (the table is lines × lines). */
const MAX_LINES = 2000;

/**
 * The lines that differ between two texts, as `-old` / `+new` / `@@ line N`
 * rows (a longest-common-subsequence diff, no context lines), at most `limit`
 * rows; every row terminal-safe. For a plan: what a file's content becomes.
 */
export function lineDiff(before: string, after: string, limit = 40): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length > MAX_LINES || b.length > MAX_LINES) return [`(${a.length} lines -> ${b.length} lines: too long to show)`];
  // lcs[i][j]: common lines of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const rows: string[] = [];
  let i = 0;
  let j = 0;
  let inHunk = false;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      i++;
      j++;
      inHunk = false;
      continue;
    }
    if (!inHunk) rows.push(`@@ line ${j + 1}`);
    inHunk = true;
    if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) rows.push(`-${printable(a[i++]!)}`);
    else rows.push(`+${printable(b[j++]!)}`);
  }
  return rows.length > limit ? [...rows.slice(0, limit), `... ${rows.length - limit} more line(s)`] : rows;
}
