/** What ssh.User and ssh.Group share: getent parsing, the admin commands (shadow-utils) and their failures. */
import { CommandFailedError, SpecError } from '../../src/errors.js';
import { redactText } from '../../src/secrets/redact.js';
import type { SshSession } from './session.js';

export const MARK = '--plumb-account--';

/** SshSession.exclusive() key for changes to the account database (ssh.User, ssh.Group). */
export const ACCOUNTS = 'accounts';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** One `getent passwd` line (`name:x:uid:gid:gecos:home:shell`); anything else → undefined. */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const f = line.replace(/\r$/, '').split(':');
  if (f.length !== 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), gecos: f[4]!, home: f[5]!, shell: f[6]! };
}

/** One `getent group` line (`name:x:gid:a,b`); anything else → undefined. */
export function parseGroupLine(line: string): GroupEntry | undefined {
  const f = line.replace(/\r$/, '').split(':');
  if (f.length !== 4 || !/^\d+$/.test(f[2]!)) return undefined;
  return { name: f[0]!, gid: Number(f[2]), members: f[3] === '' ? [] : f[3]!.split(',') };
}

/** The first line of `text` that parses (login shells may print noise before it). */
export function firstEntry<T>(text: string, parse: (line: string) => T | undefined): T | undefined {
  for (const line of text.split('\n')) {
    const e = parse(line);
    if (e) return e;
  }
  return undefined;
}

/** `text` cut at MARK lines: the sections a read script printed. */
export function sections(text: string): string[] {
  return text.split(`${MARK}\n`);
}

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join('\n');
}

/** Runs one admin command (useradd, groupmod, ...); a non-zero exit is PLUMB_COMMAND_FAILED with its output. */
export async function runAdmin(s: SshSession, id: string, command: string, signal: AbortSignal): Promise<string> {
  const res = await s.exec(`LC_ALL=C ${command} 2>&1`, signal, { maxOutput: 16 * 1024 });
  const output = redactText(res.output);
  if (res.code !== 0) {
    const exit = res.code !== null ? String(res.code) : `by signal ${res.signal ?? 'unknown'}`;
    const hint = res.code === 127 ? ' (not installed: ssh.User and ssh.Group need shadow-utils: useradd, usermod, userdel, groupadd, groupmod, groupdel, gpasswd)' : '';
    throw new CommandFailedError(`${id}: ${command.split(' ')[0]} on ${s.targetName} exited ${exit}${hint}${output.trim() ? `:\n${lastLines(output, 10)}` : ''}`);
  }
  return output;
}

/** A name given as a number is an id; shadow-utils would take an all-digit user or group name for one. */
export function refuseNumericName(name: string, pointer: string): void {
  if (/^\d+$/.test(name)) throw new SpecError(`${JSON.stringify(name)} is all digits; give a name (the id goes in its own field)`, { pointer });
}
