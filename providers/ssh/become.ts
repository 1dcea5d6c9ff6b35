/**
 * Privilege escalation for a non-root login (`become:` on an ssh Target): every
 * command runs as `sudo -u USER -- sh -c '...'` or `doas -u USER sh -c '...'`,
 * built by becomeCommand with shellQuote like every other command line. SFTP
 * stays the login user's (see remote.ts for how writes are moved into place).
 */
import { ProviderError, SpecError } from '../../src/errors.js';
import type { Secrets } from '../../src/provider.js';
import type { Secret } from '../../src/secrets/secret.js';
import { shellQuote } from './quote.js';

/** `become:` as the Target spec gives it. */
export interface BecomeSpec {
  method: 'sudo' | 'doas';
  /** Default root. */
  user?: string;
  /** Secret reference to the login user's sudo password (sudo only); fed on stdin, never on a command line. */
  password?: string;
}

/** Resolved at session open: the password as a Secret (prints [REDACTED]; its value is scrubbed from logs and errors). */
export interface Become {
  method: 'sudo' | 'doas';
  user: string;
  password?: Secret;
}

export const DEFAULT_BECOME_USER = 'root';

/**
 * The command line that runs `command` as the become user through its own
 * `sh -c`. The inner shell's stdin is /dev/null first: with a sudo password,
 * what sudo did not read (a NOPASSWD rule reads nothing) never reaches a command.
 * `-n` (never prompt) makes a missing sudoers rule fail at once instead of
 * waiting for a password; with a password, `-k -S -p ''` always reads it from
 * stdin (never a cached timestamp, so the line is never left for the command).
 */
export function becomeCommand(become: { method: 'sudo' | 'doas'; user: string; password?: unknown }, command: string): string {
  const inner = shellQuote(`exec </dev/null; ${command}`);
  const user = shellQuote(become.user);
  if (become.method === 'doas') return `doas -n -u ${user} sh -c ${inner}`;
  if (become.password !== undefined) return `sudo -k -S -p '' -u ${user} -- sh -c ${inner}`;
  return `sudo -n -u ${user} -- sh -c ${inner}`;
}

/** The Target's become settings with the password reference resolved; undefined without `become:`. */
export async function resolveBecome(name: string, spec: BecomeSpec | undefined, secrets: Secrets): Promise<Become | undefined> {
  if (spec === undefined) return undefined;
  if (spec.method !== 'sudo' && spec.method !== 'doas') throw new SpecError(`target ${name}: become.method must be sudo or doas`, { pointer: '/become/method' });
  if (spec.password !== undefined && spec.method !== 'sudo') throw new SpecError(`target ${name}: become.password works with sudo only (doas cannot read a password from stdin)`, { pointer: '/become/password' });
  const user = spec.user ?? DEFAULT_BECOME_USER;
  return { method: spec.method, user, ...(spec.password !== undefined ? { password: await secrets.resolve(spec.password) } : {}) };
}

export const LOGIN_MARK = 'plumb-login:';
export const BECOME_MARK = 'plumb-become:';

/** One exec at session open: the login user's ids, then the become user's uid through the wrapper. */
export function probeCommand(become: Become): string {
  return `printf '${LOGIN_MARK}%s:%s\\n' "$(id -u)" "$(id -g)"; ${becomeCommand(become, `printf '${BECOME_MARK}%s\\n' "$(id -u)"`)}`;
}

/**
 * What the probe printed: the login user's uid and gid. No become line means
 * the escalation was refused (no sudoers rule, a password wanted, doas not
 * permitted): a ProviderError naming the host and what to change, not retried.
 */
export function parseProbe(where: string, login: string, become: Become, output: string, code: number | null): { uid: number; gid: number } {
  const ids = new RegExp(`^${LOGIN_MARK}(\\d+):(\\d+)$`, 'm').exec(output);
  const escalated = new RegExp(`^${BECOME_MARK}(\\d+)$`, 'm').exec(output);
  if (ids && escalated) return { uid: Number(ids[1]), gid: Number(ids[2]) };
  const said = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith(LOGIN_MARK))
    .slice(-2)
    .join('; ');
  const fix =
    become.method === 'sudo'
      ? `allow it in sudoers (a drop-in such as /etc/sudoers.d/plumb with "${login} ALL=(${become.user}) NOPASSWD: ALL", checked with visudo -cf)${become.password ? ', or fix become.password' : ', or set become.password (a secret reference)'}`
      : `allow it in /etc/doas.conf ("permit nopass ${login} as ${become.user}")`;
  throw new ProviderError(`${where}: become: ${become.method} refused to run commands as ${become.user} for login user ${login} (exit ${code ?? 'by signal'}${said ? `: ${said}` : ''}); ${fix}`);
}
