import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { ConfigError } from '../errors.js';
import { formatDiagnostic, type Diagnostic } from '../load/types.js';
import { parseYaml } from '../load/yaml.js';
import { checkBranch, checkRemote, checkScopePath } from '../source/remote.js';
import { parseDuration } from '../util/duration.js';
import { schemasDir } from '../util/package-root.js';
import { DEFAULT_RUNNER_OPTIONS, type RunnerOptions } from '../run/runner.js';
import type { LoadLimits } from '../load/loader.js';
import { DEFAULT_LOAD_LIMITS } from '../load/loader.js';

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
}

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
export const RESTART_ONLY = ['repo.url', 'repo.branch', 'repo.path', 'repo.fetchTimeout', 'stateDir', 'control.socket', 'control.group'];

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
  };
  return config;
}
