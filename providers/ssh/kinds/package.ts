/**
 * ssh.Package: OS packages through the host's own package manager (apt/dpkg or
 * dnf/rpm, detected once per session). Reads are one query for every package of
 * a unit (readMany); every package a pass changes on a host is written by one
 * package-manager run (applyBatch). Plumb never removes a package a spec does not
 * name `state: absent`, not even one the manager would take along.
 */
import { CommandFailedError, ProviderError, SpecError } from '../../../src/errors.js';
import { throwIfAborted } from '../../../src/provider.js';
import type { Applied, BatchItem, Change, Claim, Json, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import { redactText } from '../../../src/secrets/redact.js';
import { shellQuote } from '../remote.js';
import type { SshSession } from '../session.js';

export interface PackageSpec {
  name?: string;
  names?: string[];
  state?: 'present' | 'absent' | 'latest';
  /** Exact version (dpkg `Version`, or rpm `[EPOCH:]VERSION[-RELEASE]`); one package, state present only. */
  version?: string;
}

export interface PackageState {
  installed: boolean;
  version?: string;
  /** What the manager would install now (state latest only; from its local metadata, no network). */
  candidate?: string;
}

export interface PackageActual {
  manager: ManagerKind;
  /** By name as the spec spells it. */
  packages: Record<string, PackageState>;
}

export type ManagerKind = 'apt' | 'dnf';

export interface PackageManager {
  kind: ManagerKind;
  /** The command that changes things: apt-get, dnf or yum. */
  command: string;
}

const FACT = 'ssh.Package:manager';
const MARK = '--plumb-package-manager--';
const LOCK_TIMEOUT_S = 120; // how long apt waits for another apt/dpkg run to finish
const OPERATION_MS = 15 * 60_000; // a package run downloads and unpacks: longer than a file write
const OUTPUT_LIMIT = 4 * 1024;
const FAILURE_LINES = 20;

/** The package names of a spec, in the spec's order, with their JSON pointers. */
export function packageNames(spec: PackageSpec): Array<{ name: string; pointer: string }> {
  if (spec.name !== undefined) return [{ name: spec.name, pointer: '/name' }];
  return (spec.names ?? []).map((name, i) => ({ name, pointer: `/names/${i}` }));
}

// ---- detection ----------------------------------------------------------------------------

/** `KEY=value` lines of /etc/os-release, quotes removed. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * Which manager to drive: apt when dpkg-query and apt-get are there, dnf (or yum)
 * when rpm is; both (an rpm on Debian, say): the os-release family decides.
 */
export function choosePackageManager(target: string, osRelease: Record<string, string>, tools: Set<string>): PackageManager {
  const apt = tools.has('dpkg-query') && tools.has('apt-get');
  const dnfCommand = tools.has('dnf') ? 'dnf' : tools.has('yum') ? 'yum' : undefined;
  const dnf = tools.has('rpm') && dnfCommand !== undefined;
  const family = `${osRelease.ID ?? ''} ${osRelease.ID_LIKE ?? ''}`.toLowerCase();
  if (apt && dnf) return /\b(fedora|rhel|centos|rocky|almalinux|amzn|ol)\b/.test(family) ? { kind: 'dnf', command: dnfCommand } : { kind: 'apt', command: 'apt-get' };
  if (apt) return { kind: 'apt', command: 'apt-get' };
  if (dnf) return { kind: 'dnf', command: dnfCommand };
  const os = osRelease.PRETTY_NAME ?? osRelease.ID ?? 'an unknown OS';
  throw new ProviderError(
    `ssh ${target}: no supported package manager on ${target} (${os}); ssh.Package needs apt-get and dpkg-query (Debian, Ubuntu) or dnf/yum and rpm (Fedora, RHEL and relatives)`,
  );
}

/** Detected once per session (one exec), shared by every package resource of the host. */
export function packageManager(s: SshSession, signal: AbortSignal): Promise<PackageManager> {
  let known = s.facts.get(FACT) as Promise<PackageManager> | undefined;
  if (!known) {
    known = (async () => {
      const res = await s.exec(`cat /etc/os-release 2>/dev/null; echo ${MARK}; command -v dpkg-query apt-get rpm dnf yum 2>/dev/null; true`, signal, { maxOutput: 16 * 1024 });
      const at = res.output.indexOf(MARK);
      const os = parseOsRelease(at >= 0 ? res.output.slice(0, at) : '');
      const tools = new Set((at >= 0 ? res.output.slice(at + MARK.length) : '').split('\n').map((l) => l.trim().split('/').pop() ?? '').filter(Boolean));
      return choosePackageManager(s.targetName, os, tools);
    })();
    s.facts.set(FACT, known);
    // A failed look (a lost connection) is not a fact: the next read asks again.
    known.catch(() => s.facts.delete(FACT));
  }
  return known;
}

// ---- reading -----------------------------------------------------------------------------

const DPKG_FORMAT = '${Package}\\t${Architecture}\\t${db:Status-Abbrev}\\t${Version}\\n';
const RPM_FORMAT = '%{NAME}\\t%{ARCH}\\tii \\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n';

/** One exec: the installed state of every name, plus candidates for the names that want `latest`. */
export function queryCommand(manager: PackageManager, names: string[], latest: string[]): string {
  const quoted = names.map(shellQuote).join(' ');
  if (manager.kind === 'apt') {
    const policy = latest.length > 0 ? `; echo ${MARK}; apt-cache policy ${latest.map(shellQuote).join(' ')} 2>/dev/null` : '';
    return `LC_ALL=C dpkg-query -W -f=${shellQuote(DPKG_FORMAT)} ${quoted} 2>/dev/null${policy}; true`;
  }
  const upgrades = latest.length > 0 ? `; echo ${MARK}; LC_ALL=C ${manager.command} -q -C list --upgrades ${latest.map(shellQuote).join(' ')} 2>/dev/null` : '';
  return `LC_ALL=C rpm -q --qf ${shellQuote(RPM_FORMAT)} ${quoted} 2>/dev/null${upgrades}; true`;
}

interface Row {
  name: string;
  arch: string;
  installed: boolean;
  version: string;
}

/**
 * `dpkg-query -W -f '${Package}\t${Architecture}\t${db:Status-Abbrev}\t${Version}\n'`
 * (and rpm's answer in the same shape). Installed: the status letter is i
 * (installed), W or t (installed, triggers pending); c (config files left), U,
 * F, H (half done) and n are not.
 */
export function parseInstalled(text: string): Row[] {
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length !== 4 || !f[0]) continue;
    const status = f[2] ?? '';
    rows.push({ name: f[0], arch: f[1] ?? '', installed: /^.[iWt]/.test(status), version: (f[3] ?? '').replace(/^\(none\):/, '') });
  }
  return rows;
}

/** `apt-cache policy A B`: each package's Candidate ("(none)" when no source has it). */
export function parseAptPolicy(text: string): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) {
      current = head[1]!;
      out.set(current, undefined);
      continue;
    }
    const cand = /^\s+Candidate:\s*(\S+)/.exec(line);
    if (cand && current !== undefined) out.set(current, cand[1] === '(none)' ? undefined : cand[1]);
  }
  return out;
}

/** `dnf list --upgrades`: `name.arch  version  repo` lines, by name. */
export function parseDnfUpgrades(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\.([A-Za-z0-9_]+)\s+(\S+)\s+\S+\s*$/.exec(line);
    if (m && !/^(Available|Upgraded|Last)/.test(line)) out.set(m[1]!, m[3]!);
  }
  return out;
}

/** The row a spec name means: `name`, or `name:arch`. */
function rowsFor(rows: Row[], name: string): Row[] {
  return rows.filter((r) => r.name === name || `${r.name}:${r.arch}` === name);
}

/** Whether an installed version is the one a spec pins: exact, or rpm's without a 0 epoch, or without its release. */
export function versionMatches(manager: ManagerKind, installed: string | undefined, wanted: string): boolean {
  if (installed === undefined) return false;
  if (installed === wanted) return true;
  if (manager === 'apt') return false;
  const noEpoch = installed.replace(/^0:/, '');
  return noEpoch === wanted || noEpoch.replace(/-[^-]*$/, '') === wanted || installed.replace(/-[^-]*$/, '') === wanted;
}

async function readAll(s: SshSession, rs: Resource<PackageSpec>[], ctx: OpContext): Promise<Array<PackageActual | undefined>> {
  const manager = await packageManager(s, ctx.signal);
  const names = [...new Set(rs.flatMap((r) => packageNames(r.spec).map((p) => p.name)))];
  const latest = [...new Set(rs.filter((r) => r.spec.state === 'latest').flatMap((r) => packageNames(r.spec).map((p) => p.name)))];
  if (names.length === 0) return rs.map(() => undefined);
  const res = await s.exec(queryCommand(manager, names, latest), ctx.signal, { maxOutput: 1024 * 1024 });
  if (res.code !== 0) throw new ProviderError(`ssh ${s.targetName}: querying packages exited ${res.code ?? res.signal ?? 'abnormally'}`);
  const at = res.output.indexOf(MARK);
  const rows = parseInstalled(at >= 0 ? res.output.slice(0, at) : res.output);
  const tail = at >= 0 ? res.output.slice(at + MARK.length) : '';
  const candidates = manager.kind === 'apt' ? parseAptPolicy(tail) : parseDnfUpgrades(tail);
  return rs.map((r) => {
    const packages: Record<string, PackageState> = {};
    let any = false;
    for (const { name } of packageNames(r.spec)) {
      const installed = rowsFor(rows, name).find((row) => row.installed);
      const state: PackageState = { installed: installed !== undefined, ...(installed ? { version: installed.version } : {}) };
      if (r.spec.state === 'latest') {
        const c = candidates.get(name);
        // dnf lists only upgrades: no line means the installed version is the newest it knows.
        const candidate = manager.kind === 'apt' ? c : (c ?? installed?.version);
        if (candidate !== undefined) state.candidate = candidate;
      }
      packages[name] = state;
      any ||= state.installed;
    }
    return any ? { manager: manager.kind, packages } : undefined;
  });
}

// ---- diff --------------------------------------------------------------------------------

function packageChanges(r: Resource<PackageSpec>, actual: PackageActual | undefined): Change[] {
  const spec = r.spec;
  const state = spec.state ?? 'present';
  const changes: Change[] = [];
  for (const { name, pointer } of packageNames(spec)) {
    const now = actual?.packages[name] ?? { installed: false };
    if (state === 'absent') {
      if (now.installed) changes.push({ path: pointer, before: now.version ?? 'installed', after: null, note: `remove ${name}` });
      continue;
    }
    if (!now.installed) {
      changes.push({ path: pointer, before: null, after: spec.version ?? 'installed', note: `install ${name}${spec.version !== undefined ? ` ${spec.version}` : ''}` });
      continue;
    }
    if (spec.version !== undefined && !versionMatches(actual?.manager ?? 'apt', now.version, spec.version)) {
      changes.push({ path: '/version', before: now.version ?? null, after: spec.version, note: `${name} ${now.version ?? '?'} -> ${spec.version}` });
    } else if (state === 'latest' && now.candidate !== undefined && isUpgrade(actual?.manager ?? 'apt', now.version, now.candidate)) {
      changes.push({ path: pointer, before: now.version ?? null, after: now.candidate, note: `upgrade ${name} ${now.version ?? '?'} -> ${now.candidate}` });
    }
  }
  return changes;
}

/**
 * Whether the candidate is newer than what is installed. apt's candidate can be
 * older (a newer .deb installed by hand, a pinned-down source): `apt-get
 * install` then changes nothing, so calling it an upgrade would fail its verify
 * on every pass. dnf lists only real upgrades.
 */
function isUpgrade(manager: ManagerKind, installed: string | undefined, candidate: string): boolean {
  if (installed === undefined || installed === candidate) return installed === undefined;
  return manager === 'apt' ? compareDebianVersions(candidate, installed) > 0 : true;
}

/** deb-version(7) ordering: epoch numerically, then upstream version and Debian revision by dpkg's rules (`~` sorts before everything, even the end). */
export function compareDebianVersions(a: string, b: string): number {
  const split = (v: string): [number, string, string] => {
    const colon = v.indexOf(':');
    const epoch = colon > 0 && /^\d+$/.test(v.slice(0, colon)) ? Number(v.slice(0, colon)) : 0;
    const rest = colon > 0 ? v.slice(colon + 1) : v;
    const dash = rest.lastIndexOf('-');
    return dash >= 0 ? [epoch, rest.slice(0, dash), rest.slice(dash + 1)] : [epoch, rest, ''];
  };
  const [ea, ua, ra] = split(a);
  const [eb, ub, rb] = split(b);
  return Math.sign(ea - eb) || comparePart(ua, ub) || comparePart(ra, rb);
}

/** dpkg's verrevcmp: alternating non-digit runs (letters before non-letters, `~` first) and digit runs (numerically). */
function comparePart(a: string, b: string): number {
  const order = (c: string | undefined): number => {
    if (c === undefined || /\d/.test(c)) return 0;
    if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
    return c === '~' ? -1 : c.charCodeAt(0) + 256;
  };
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const d = order(a[i]) - order(b[j]);
      if (d !== 0) return Math.sign(d);
      i++;
      j++;
    }
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i]!)) na += a[i++];
    while (j < b.length && /\d/.test(b[j]!)) nb += b[j++];
    const x = na.replace(/^0+/, '');
    const y = nb.replace(/^0+/, '');
    if (x.length !== y.length) return Math.sign(x.length - y.length);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

// ---- writing -----------------------------------------------------------------------------

/** What one run must do: names to install (with `=version`/`-version` already joined), to upgrade, to remove. */
export interface PackagePlan {
  install: string[];
  upgrade: string[];
  remove: string[];
  pinned: boolean;
}

/** Pure: the package operations the changes of the batch's items call for. */
export function planPackages(manager: ManagerKind, items: Array<{ r: Resource<PackageSpec>; changes: Change[] }>): PackagePlan {
  const plan: PackagePlan = { install: [], upgrade: [], remove: [], pinned: false };
  for (const { r, changes } of items) {
    if (changes.length === 0) continue;
    const spec = r.spec;
    const state = spec.state ?? 'present';
    const changed = new Set(changes.map((c) => c.path));
    for (const { name, pointer } of packageNames(spec)) {
      if (!changed.has(pointer) && !(changed.has('/version') && spec.version !== undefined)) continue;
      if (state === 'absent') plan.remove.push(name);
      else if (spec.version !== undefined) {
        plan.install.push(`${name}${manager === 'apt' ? '=' : '-'}${spec.version}`);
        plan.pinned = true;
      } else if (state === 'latest' && changes.some((c) => c.path === pointer && c.before !== null)) plan.upgrade.push(name);
      else plan.install.push(name);
    }
  }
  return plan;
}

const APT_OPTIONS = `-q -y -o DPkg::Lock::Timeout=${LOCK_TIMEOUT_S} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold`;

/** The one package-manager run, for the login user's POSIX shell. `simulate`: apt's dry run (-s), which takes no lock and changes nothing. */
export function managerCommand(manager: PackageManager, plan: PackagePlan, simulate = false): string {
  if (manager.kind === 'apt') {
    // One apt-get call does all of it: `install` also upgrades named packages, and `name-` removes.
    const args = [...plan.install, ...plan.upgrade, ...plan.remove.map((n) => `${n}-`)].map(shellQuote).join(' ');
    const downgrades = plan.pinned ? ' --allow-downgrades' : '';
    return `export DEBIAN_FRONTEND=noninteractive LC_ALL=C; apt-get ${simulate ? '-s ' : ''}${APT_OPTIONS}${downgrades} install ${args} 2>&1`;
  }
  // dnf cannot mix installs and removals in one command line: one exec runs its steps in turn, stopping at the first failure.
  const steps: string[] = [];
  const cmd = `LC_ALL=C ${manager.command} -y -q`;
  if (plan.install.length > 0) steps.push(`${cmd} install ${plan.install.map(shellQuote).join(' ')}`);
  if (plan.upgrade.length > 0) steps.push(`${cmd} upgrade ${plan.upgrade.map(shellQuote).join(' ')}`);
  if (plan.remove.length > 0) steps.push(`${cmd} remove --noautoremove ${plan.remove.map(shellQuote).join(' ')}`);
  return `{ ${steps.join(' && ')}; } 2>&1`;
}

/** `Remv name [version]` lines of `apt-get -s`: what the run would remove. */
export function simulatedRemovals(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    const m = /^Remv (\S+)/.exec(line);
    if (m) out.push(m[1]!.replace(/:[a-z0-9]+$/, ''));
  }
  return out;
}

function lastLines(text: string, n: number): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-n).join('\n');
}

function tail(text: string, limit: number): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= limit ? text : bytes.subarray(bytes.length - limit).toString('utf8');
}

function describePlan(plan: PackagePlan): string {
  return [plan.install.length > 0 ? `install ${plan.install.join(' ')}` : '', plan.upgrade.length > 0 ? `upgrade ${plan.upgrade.join(' ')}` : '', plan.remove.length > 0 ? `remove ${plan.remove.join(' ')}` : '']
    .filter(Boolean)
    .join('; ');
}

async function runBatch(s: SshSession, items: BatchItem[], ctx: OpContext): Promise<Array<Applied | void>> {
  throwIfAborted(ctx.signal, `ssh ${s.targetName}: packages`);
  const manager = await packageManager(s, ctx.signal);
  const plan = planPackages(
    manager.kind,
    items.filter((i) => !i.remove).map((i) => ({ r: i.r as Resource<PackageSpec>, changes: i.changes })),
  );
  if (plan.install.length + plan.upgrade.length + plan.remove.length === 0) return items.map(() => undefined);
  const what = describePlan(plan);
  if (manager.kind === 'apt') {
    // Plumb removes exactly what a spec names: a run that would take other packages along (dependents, conflicts) is refused unsent.
    const dry = await s.exec(managerCommand(manager, plan, true), ctx.signal, { maxOutput: 256 * 1024 });
    if (dry.code !== 0) {
      throw new CommandFailedError(`ssh ${s.targetName}: apt-get -s (${what}) exited ${dry.code ?? dry.signal ?? 'abnormally'}; nothing was changed:\n${lastLines(redactText(dry.output), FAILURE_LINES)}`, { notSent: true });
    }
    const asked = new Set(plan.remove);
    const extra = [...new Set(simulatedRemovals(dry.output))].filter((n) => !asked.has(n));
    if (extra.length > 0) {
      throw new SpecError(
        `ssh ${s.targetName}: ${what} would also remove ${extra.join(', ')}, which no spec sets to state: absent; Plumb removes only packages a spec names. Nothing was changed`,
        { notSent: true },
      );
    }
  }
  const res = await s.exec(managerCommand(manager, plan), ctx.signal, { maxOutput: 256 * 1024 });
  const output = tail(redactText(res.output), OUTPUT_LIMIT);
  if (res.code !== 0) {
    throw new CommandFailedError(`ssh ${s.targetName}: ${manager.command} (${what}) exited ${res.code ?? `by signal ${res.signal ?? 'unknown'}`}:\n${lastLines(output, FAILURE_LINES)}`);
  }
  return items.map(() => ({ output }));
}

export const packageKind: KindHandler<PackageSpec, PackageActual, SshSession> = {
  kind: 'ssh.Package',
  schema: 'ssh.package.schema.json',

  normalize(spec) {
    if (spec.names !== undefined && new Set(spec.names).size !== spec.names.length) throw new SpecError('names lists a package twice', { pointer: '/names' });
    return spec;
  },

  claims(spec): Claim[] {
    return packageNames(spec).map(({ name, pointer }) => ({ key: ['package', name], label: `package ${name}`, pointer }));
  },

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    return (await readAll(s, [r], ctx))[0];
  },

  async readMany(s, rs, ctx) {
    throwIfAborted(ctx.signal, `ssh ${s.targetName}: read packages`);
    return readAll(s, rs, ctx);
  },

  diff(r, actual) {
    return packageChanges(r, actual);
  },

  async apply(s, r, changes, ctx, actual) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    return (await runBatch(s, [{ r, changes, remove: false, actual }], ctx))[0];
  },

  applyBatch(s, items, ctx) {
    return runBatch(s, items, ctx);
  },

  // No remove(): deleting the resource leaves its packages installed. Removing a package takes what depends on it along; that takes a spec saying state: absent.

  deadlineMs() {
    return OPERATION_MS;
  },

  released(r) {
    const last = r.lastApplied;
    if (!last) return [];
    const out: Array<{ path: string; note: string }> = [];
    const now = new Set(packageNames(r.spec).map((p) => p.name));
    const lastState = last.state ?? 'present';
    for (const { name } of packageNames(last)) {
      if (now.has(name) || lastState === 'absent') continue;
      out.push({ path: r.spec.name !== undefined ? '/name' : '/names', note: `${name} is no longer managed and stays installed (Plumb uninstalls only what a spec sets to state: absent)` });
    }
    if (last.version !== undefined && r.spec.version === undefined && now.has(packageNames(last)[0]?.name ?? '')) {
      out.push({ path: '/version', note: `no longer pinned; keeps version ${last.version} until something upgrades it` });
    }
    return out;
  },

  summarize(actual): Json {
    if (!actual) return { installed: [] };
    return Object.fromEntries(Object.entries(actual.packages).map(([name, p]) => [name, p.installed ? (p.version ?? 'installed') : null]));
  },
};
