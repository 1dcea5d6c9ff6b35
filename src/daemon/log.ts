import { pino, type Logger } from 'pino';
import type { Log } from '../provider.js';
import { redactDeep, redactText } from '../secrets/redact.js';

/** Field names that must never carry a value into a log line, wherever they appear. */
const SECRET_PATHS = ['password', 'privateKey', 'passphrase', 'secret', 'token', 'authorization'];

/**
 * Structured JSON logs on stderr (journald keeps them). Constant messages with
 * fields; secret-named fields are censored by path, and every string is scrubbed
 * of resolved secret values before it is written (invariant 7).
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
          const scrubbed = args.map((a) => (typeof a === 'string' ? redactText(a) : a && typeof a === 'object' ? redactDeep(a) : a));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
  return logger as unknown as Log & { level: string };
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
