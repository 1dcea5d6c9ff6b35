import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { ConfigError } from '../errors.js';
import { formatDiagnostic, type Diagnostic } from '../load/types.js';
import { parseYaml } from '../load/yaml.js';
import { SECRET_REF_PATTERN } from '../secrets/resolve.js';
import { checkBranch, checkRemote, checkScopePath } from '../source/remote.js';
import { parseDuration } from '../util/duration.js';
import { schemasDir } from '../util/package-root.js';
import { DEFAULT_RUNNER_OPTIONS, type RunnerOptions } from '../run/runner.js';
import type { LoadLimits } from '../load/loader.js';
import { DEFAULT_LOAD_LIMITS } from '../load/loader.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FAILURES_TOTAL } from './http.js';

/** Options after defaults, with durations in ms: compiled once at the edge, read everywhere else. */
export interface Config {
  repo: { url: string; branch: string; path: string; pollIntervalMs: number; pollJitter: number; fetchTimeoutMs: number };
  stateDir: string;
  run: RunnerOptions & { connectTimeoutMs: number; sessionIdleMs: number };
  sweepIntervalMs: number;
  limits: LoadLimits;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  drainMs: number;
  control: { socket: string; group?: string };
  /** The HTTP listener (webhooks, metrics, health); null: off. */
  http: { host: string; port: number; maxConnections: number } | null;
  /** The webhook receiver on the HTTP listener; null: off. Secrets stay references. */
  webhook: WebhookConfig | null;
  /** Where each commit's outcome is reported. */
  notify: NotifySinkConfig[];
}

export interface WebhookConfig {
  path: string;
  /** Secret reference (file:/path, env:NAME), resolved for each request. */
  secret: string;
  maxBodyBytes: number;
  minFetchIntervalMs: number;
  dedupeWindowMs: number;
  maxFailuresPerMinute: number;
  maxFailuresPerMinuteTotal: number;
}

/** A commit status API (token by reference) or a signed generic JSON webhook. */
export type NotifySinkConfig =
  | { type: 'github' | 'gitlab' | 'gitea'; api: string; repo: string; token: string; context: string; caFile?: string }
  | { type: 'webhook'; url: string; secret: string; caFile?: string };

/** The YAML as written (see schemas/config.schema.json for every field and its default). */
export interface RawConfig {
  repo: { url: string; branch?: string; path?: string; pollInterval?: string; pollJitter?: number; fetchTimeout?: string };
  stateDir?: string;
  run?: {
    concurrency?: number;
    perTarget?: number;
    opTimeout?: string;
    connectTimeout?: string;
    maxAttempts?: number;
    backoff?: string;
    maxBackoff?: string;
    retryAfter?: string;
    maxRetryAfter?: string;
    sessionIdle?: string;
  };
  sweep?: { interval?: string };
  limits?: { maxFileBytes?: number; maxNodes?: number; maxAttachmentBytes?: number };
  log?: { level?: Config['logLevel'] };
  shutdown?: { drain?: string };
  control?: { socket?: string; group?: string };
  http?: { listen: string; maxConnections?: number };
  webhook?: { path?: string; secret: string; maxBodyBytes?: number; minFetchInterval?: string; dedupeWindow?: string; maxFailuresPerMinute?: number; maxFailuresPerMinuteTotal?: number };
  notify?: Array<
    | { type: 'github' | 'gitlab' | 'gitea'; api: string; repo: string; token: string; context?: string; caFile?: string }
    | { type: 'webhook'; url: string; secret: string; caFile?: string }
  >;
}

/** Reads, validates (file:line:col on errors) and compiles a config file. */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const yaml = parseYaml(text, path);
  const fail = (diagnostics: Diagnostic[]): never => {
    throw new ConfigError(`invalid config:\n${diagnostics.map((d) => `  ${formatDiagnostic(d)}`).join('\n')}`);
  };
  if (yaml.diagnostics.length > 0) fail(yaml.diagnostics);
  const doc = yaml.documents.find((d) => d.value !== null && d.value !== '');
  if (!doc) fail([{ severity: 'error', file: path, line: 1, col: 1, message: 'the config file is empty; it needs at least repo.url' }]);
  const validate = configValidator();
  if (!validate(doc!.value)) {
    fail(
      (validate.errors ?? []).map((e) => {
        const pointer = e.keyword === 'additionalProperties' ? `${e.instancePath}/${String((e.params as { additionalProperty: string }).additionalProperty)}` : e.instancePath;
        const hint = (e.parentSchema as { 'x-hint'?: string } | undefined)?.['x-hint'];
        const what = e.keyword === 'additionalProperties' ? `unknown setting "${String((e.params as { additionalProperty: string }).additionalProperty)}"` : `${e.instancePath || 'config'} ${e.message ?? 'is invalid'}${hint ? ` (${hint})` : ''}`;
        return { severity: 'error' as const, ...doc!.positionOf(pointer, { key: e.keyword === 'additionalProperties' || e.keyword === 'required' }), message: what };
      }),
    );
  }
  const raw = doc!.value as RawConfig;
  // A relative stateDir is relative to the config file, not to wherever the command was started.
  const base = resolve(path, '..');
  return compileConfig({
    ...raw,
    ...(raw.stateDir && !isAbsolute(raw.stateDir) ? { stateDir: join(base, raw.stateDir) } : {}),
    ...(raw.control?.socket && !isAbsolute(raw.control.socket) ? { control: { ...raw.control, socket: join(base, raw.control.socket) } } : {}),
  });
}

let compiledValidator: ReturnType<Ajv['compile']> | undefined;
function configValidator(): ReturnType<Ajv['compile']> {
  if (!compiledValidator) {
    const ajv = new Ajv({ allErrors: true, strict: true, verbose: true, keywords: ['x-hint'] });
    compiledValidator = ajv.compile(JSON.parse(readFileSync(join(schemasDir(), 'config.schema.json'), 'utf8')) as object);
  }
  return compiledValidator;
}

/** Settings that need a restart to change (the daemon refuses them on reload). */
export const RESTART_ONLY = ['repo.url', 'repo.branch', 'repo.path', 'repo.fetchTimeout', 'stateDir', 'control.socket', 'control.group', 'http', 'webhook', 'notify'];

/** What differs between two configs, as dotted setting names. */
export function configChanges(a: Config, b: Config): string[] {
  const flat = (c: Config): Record<string, string> => ({
    'repo.url': c.repo.url,
    'repo.branch': c.repo.branch,
    'repo.path': c.repo.path,
    'repo.pollInterval': String(c.repo.pollIntervalMs),
    'repo.pollJitter': String(c.repo.pollJitter),
    'repo.fetchTimeout': String(c.repo.fetchTimeoutMs),
    stateDir: c.stateDir,
    run: JSON.stringify(c.run),
    'sweep.interval': String(c.sweepIntervalMs),
    limits: JSON.stringify(c.limits),
    'log.level': c.logLevel,
    'shutdown.drain': String(c.drainMs),
    'control.socket': c.control.socket,
    'control.group': c.control.group ?? '',
    http: JSON.stringify(c.http),
    webhook: JSON.stringify(c.webhook),
    notify: JSON.stringify(c.notify),
  });
  const fa = flat(a);
  const fb = flat(b);
  return Object.keys(fa).filter((k) => fa[k] !== fb[k]);
}

/** Applies defaults and converts durations. Also used by the CLI's `--repo DIR --state DIR` mode. */
export function compileConfig(raw: RawConfig): Config {
  const d = DEFAULT_RUNNER_OPTIONS;
  const ms = (value: string | undefined, fallback: number): number => (value === undefined ? fallback : parseDuration(value));
  const run = raw.run ?? {};
  const config: Config = {
    repo: {
      url: checkRemote(raw.repo.url),
      branch: checkBranch(raw.repo.branch ?? 'main'),
      path: checkScopePath(raw.repo.path ?? ''),
      pollIntervalMs: ms(raw.repo.pollInterval, 60_000),
      pollJitter: raw.repo.pollJitter ?? 0.1,
      fetchTimeoutMs: ms(raw.repo.fetchTimeout, 120_000),
    },
    stateDir: resolve(raw.stateDir ?? '/var/lib/plumb'),
    run: {
      concurrency: run.concurrency ?? d.concurrency,
      perTarget: run.perTarget ?? d.perTarget,
      opTimeoutMs: ms(run.opTimeout, d.opTimeoutMs),
      maxAttempts: run.maxAttempts ?? d.maxAttempts,
      backoff: { baseMs: ms(run.backoff, d.backoff.baseMs), maxMs: ms(run.maxBackoff, d.backoff.maxMs) },
      retryLater: { baseMs: ms(run.retryAfter, d.retryLater.baseMs), maxMs: ms(run.maxRetryAfter, d.retryLater.maxMs) },
      connectTimeoutMs: ms(run.connectTimeout, 15_000),
      sessionIdleMs: ms(run.sessionIdle, 10 * 60_000),
    },
    sweepIntervalMs: ms(raw.sweep?.interval, 30 * 60_000),
    limits: { ...DEFAULT_LOAD_LIMITS, ...raw.limits },
    logLevel: raw.log?.level ?? 'info',
    drainMs: ms(raw.shutdown?.drain, 30_000),
    control: { socket: resolve(raw.control?.socket ?? join(resolve(raw.stateDir ?? '/var/lib/plumb'), 'plumb.sock')), ...(raw.control?.group ? { group: raw.control.group } : {}) },
    http: raw.http ? { ...parseListen(raw.http.listen), maxConnections: raw.http.maxConnections ?? DEFAULT_MAX_CONNECTIONS } : null,
    webhook: raw.webhook
      ? {
          path: raw.webhook.path ?? '/hooks/git',
          secret: checkSecretRef(raw.webhook.secret, 'webhook.secret'),
          maxBodyBytes: raw.webhook.maxBodyBytes ?? 1024 * 1024,
          minFetchIntervalMs: ms(raw.webhook.minFetchInterval, 1_000),
          dedupeWindowMs: ms(raw.webhook.dedupeWindow, 24 * 3_600_000),
          maxFailuresPerMinute: raw.webhook.maxFailuresPerMinute ?? 10,
          maxFailuresPerMinuteTotal: raw.webhook.maxFailuresPerMinuteTotal ?? DEFAULT_MAX_FAILURES_TOTAL,
        }
      : null,
    notify: (raw.notify ?? []).map(compileNotifySink),
  };
  if (config.webhook && !config.http) throw new ConfigError('webhook needs the HTTP listener: set http.listen (e.g. 127.0.0.1:9180)');
  return config;
}

/** `127.0.0.1:9180`, `[::1]:9180`, `localhost:9180`; port 0 picks a free one (tests). */
function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(listen.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65_535) throw new ConfigError(`http.listen "${listen}" is not host:port (e.g. 127.0.0.1:9180 or [::1]:9180)`);
  return { host: match[1] ?? match[2]!, port };
}

function checkSecretRef(ref: string, setting: string): string {
  if (!SECRET_REF_PATTERN.test(ref)) throw new ConfigError(`${setting} must be a secret reference (file:/absolute/path or env:NAME), never the secret itself`);
  return ref;
}

/** An http(s) URL without credentials in it (they would end up in logs): tokens go by reference. */
function checkUrl(value: string, setting: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${setting} "${value.slice(0, 100)}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${setting} must be an http(s) URL`);
  if (url.username || url.password) throw new ConfigError(`${setting} must not hold credentials; give them by reference (token:, secret:)`);
  return value.replace(/\/+$/, '');
}

function compileNotifySink(raw: NonNullable<RawConfig['notify']>[number], index: number): NotifySinkConfig {
  const at = `notify[${index}]`;
  if (raw.type === 'webhook') {
    return { type: 'webhook', url: checkUrl(raw.url, `${at}.url`), secret: checkSecretRef(raw.secret, `${at}.secret`), ...(raw.caFile ? { caFile: raw.caFile } : {}) };
  }
  if (raw.type !== 'gitlab' && !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(raw.repo)) throw new ConfigError(`${at}.repo "${raw.repo}" must be owner/name for ${raw.type}`);
  return {
    type: raw.type,
    api: checkUrl(raw.api, `${at}.api`),
    repo: raw.repo,
    token: checkSecretRef(raw.token, `${at}.token`),
    context: raw.context ?? 'plumb',
    ...(raw.caFile ? { caFile: raw.caFile } : {}),
  };
}
