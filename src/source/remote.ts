import { isAbsolute, posix } from 'node:path';
import { ConfigError } from '../errors.js';

/**
 * Transports git may use for the config remote. `ext::` (runs arbitrary commands)
 * and everything else is refused, both here and through GIT_ALLOW_PROTOCOL.
 */
export const ALLOWED_PROTOCOLS = 'file:https:http:ssh:git';

/** Remote, branch and path come only from Plumb's configuration; check them once at the edge. */
export function checkRemote(url: string): string {
  const value = url.trim();
  if (value === '') throw new ConfigError('repo.url is empty');
  if (value.startsWith('-')) throw new ConfigError(`repo.url "${value}" looks like a command-line option; refusing it`);
  if (/^[a-z][a-z0-9+.-]*::/i.test(value)) throw new ConfigError(`repo.url "${value}" uses a git remote helper (e.g. ext::), which can run commands; use https://, ssh:// or a path`);
  if (/[\0\n\r]/.test(value)) throw new ConfigError('repo.url contains control characters');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (!ALLOWED_PROTOCOLS.split(':').includes(scheme)) throw new ConfigError(`repo.url scheme "${scheme}://" is not allowed; use https://, ssh://, git://, file:// or a path`);
    // A password or token in the URL would be a secret in the config, the state and every log line naming the repo.
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(value)) {
      throw new ConfigError(`repo.url "${redactUrl(value)}" carries a password or token; give the plumb user a git credential helper (https) or an SSH key (ssh://) instead`);
    }
    refuseOptionHost(value, value.slice(scheme.length + 3).replace(/^[^/@]*@/, ''));
    return value;
  }
  if (isAbsolute(value)) return value;
  const scp = /^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):/.exec(value); // scp-like ssh: git@host:org/repo.git
  if (scp) {
    refuseOptionHost(value, scp[1]!);
    return value;
  }
  throw new ConfigError(`repo.url "${redactUrl(value)}" is neither a URL (https://, ssh://, git://, file://), user@host:path, nor an absolute path`);
}

/** Credentials never belong in the URL; if they are there anyway, keep them out of messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}

/** ssh would take a host like `-oProxyCommand=...` for an option (git refuses it too; this says why, earlier). */
function refuseOptionHost(url: string, host: string): void {
  if (host.startsWith('-')) throw new ConfigError(`repo.url "${redactUrl(url)}" has a host starting with "-", which ssh would read as an option; refusing it`);
}

/** A branch name as `git check-ref-format --branch` would accept it, and never an option. */
export function checkBranch(branch: string): string {
  const value = branch.trim();
  const bad =
    value === '' ||
    value.startsWith('-') ||
    value.startsWith('/') ||
    value.endsWith('/') ||
    value.endsWith('.') ||
    value.endsWith('.lock') ||
    value.includes('..') ||
    value.includes('@{') ||
    value.includes('//') ||
    /[\0-\x20\x7f~^:?*[\\]/.test(value);
  if (bad) throw new ConfigError(`repo.branch "${branch}" is not a valid branch name`);
  return value;
}

/** The subfolder of the repo Plumb reads (`envs/prod`), normalised; '' for the whole repo. */
export function checkScopePath(path: string): string {
  const trimmed = path.trim().replace(/^\.\/+/, '').replace(/\/+$/, '');
  if (trimmed === '' || trimmed === '.') return '';
  const normal = posix.normalize(trimmed);
  if (normal.startsWith('/') || normal === '..' || normal.startsWith('../') || normal.startsWith('-') || /[\0\n\r]/.test(normal)) {
    throw new ConfigError(`repo.path "${path}" must be a relative folder inside the repo, like envs/prod`);
  }
  return normal;
}
