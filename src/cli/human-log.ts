import type { Log } from '../provider.js';
import { redactDeep, redactText } from '../secrets/redact.js';
import { hasControl, printable } from '../util/printable.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

/** For one-shot commands on a terminal: `warn  operation failed  id=... error=...` lines on stderr, secrets scrubbed. */
export function humanLog(level: Level, write: (line: string) => void = (line) => void process.stderr.write(line), bound: object = {}): Log {
  const min = LEVELS.indexOf(level);
  const emit = (at: Level, fields: object, msg: string): void => {
    if (LEVELS.indexOf(at) < min) return;
    const all = redactDeep({ ...bound, ...fields }) as Record<string, unknown>;
    const pairs = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) || hasControl(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
    write(`${at.padEnd(5)} ${printable(redactText(msg))}${pairs.length ? '  ' + pairs.join(' ') : ''}\n`);
  };
  return {
    debug: (f, m) => emit('debug', f, m),
    info: (f, m) => emit('info', f, m),
    warn: (f, m) => emit('warn', f, m),
    error: (f, m) => emit('error', f, m),
    child: (f) => humanLog(level, write, { ...bound, ...f }),
  };
}
