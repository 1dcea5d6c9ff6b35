import { pino, type Logger } from 'pino';
import type { Log } from '../provider.js';
import { redactDeep, redactText } from '../secrets/redact.js';

/** Field names that must never carry a value into a log line, wherever they appear. */
const SECRET_PATHS = ['password', 'privateKey', 'passphrase', 'secret', 'token', 'authorization'];

/**
 * Structured JSON logs on stderr (journald keeps them). Constant messages with
 * fields; secret-named fields are censored by path, and every string is scrubbed
 * of resolved secret values before it is written (invariant 7). One binding per
 * key: a child binds only keys its parents have not bound, and a line's fields
 * drop what the logger already binds (pino would print both: `"target":"n1",...,
 * "target":"n1"`); a field that differs from its binding is kept under `inner`.
 */
export function createLogger(options: { level: string; destination?: NodeJS.WritableStream; name?: string }): Log & { level: string } {
  const logger: Logger = pino(
    {
      name: options.name ?? 'plumb',
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: SECRET_PATHS.flatMap((p) => [p, `*.${p}`, `*.*.${p}`]), censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const bound = this.bindings();
          const scrubbed = args.map((a, i) => {
            if (typeof a === 'string') return redactText(a);
            if (!a || typeof a !== 'object') return a;
            return redactDeep(i === 0 && !(a instanceof Error) ? unbound(a as Record<string, unknown>, bound) : a);
          });
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
  return wrap(logger);
}

/** The fields a line adds to what its logger binds: equal ones dropped, different ones under `inner`. */
function unbound(fields: Record<string, unknown>, bound: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    if (!(key in bound)) continue;
    out ??= { ...fields };
    const value = out[key];
    delete out[key];
    if (JSON.stringify(value) !== JSON.stringify(bound[key])) out.inner = { ...(out.inner as object | undefined), [key]: value };
  }
  return out ?? fields;
}

function wrap(logger: Logger): Log & { level: string } {
  const log = {
    get level(): string {
      return logger.level;
    },
    set level(value: string) {
      logger.level = value;
    },
    debug: (fields: object, msg: string) => logger.debug(fields, msg),
    info: (fields: object, msg: string) => logger.info(fields, msg),
    warn: (fields: object, msg: string) => logger.warn(fields, msg),
    error: (fields: object, msg: string) => logger.error(fields, msg),
    child(fields: object): Log {
      const bound = logger.bindings();
      const fresh = Object.fromEntries(Object.entries(fields).filter(([key]) => !(key in bound)));
      return Object.keys(fresh).length > 0 ? wrap(logger.child(fresh)) : log;
    },
  };
  return log;
}

/** A logger that drops everything (tests, and CLI commands that print their own output). */
export const silentLog: Log = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLog;
  },
};
