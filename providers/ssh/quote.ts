/**
 * The one quoting function of the ssh provider: every value a spec or Plumb puts
 * on a remote command line (names, paths, modes, the become wrapper's inner
 * command) goes through it. NUL cannot be quoted; the schemas refuse it first.
 */

/** POSIX shell single-quoting: safe for any string without NUL. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new TypeError('a NUL character cannot be passed on a shell command line');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
