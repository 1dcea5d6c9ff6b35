/**
 * Log lines carry each key once (issue 10): the runner binds target and id, a
 * provider session binds target again and call sites repeat them; pino alone
 * prints every copy.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/daemon/log.js';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { stream, lines };
}

const count = (line: string, key: string): number => line.split(`"${key}":`).length - 1;

describe('log bindings', () => {
  it('binds a key once however often children and call sites repeat it', () => {
    const { stream, lines } = capture();
    const log = createLogger({ level: 'debug', destination: stream });
    const op = log.child({ target: 'node1', id: 'ssh.File/motd' });
    const session = op.child({ target: 'node1' });
    session.info({ target: 'node1', id: 'ssh.File/motd', bytes: 12 }, 'wrote');
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect([count(line, 'target'), count(line, 'id'), count(line, 'bytes')]).toEqual([1, 1, 1]);
    expect(JSON.parse(line)).toMatchObject({ target: 'node1', id: 'ssh.File/motd', bytes: 12, msg: 'wrote' });
  });

  it('keeps a field that differs from its binding, under inner, and leaves unbound fields alone', () => {
    const { stream, lines } = capture();
    const log = createLogger({ level: 'info', destination: stream });
    log.child({ target: 'node1' }).warn({ target: 'node2', attempt: 3 }, 'moved');
    log.info({ target: 'node3' }, 'root');
    const [moved, root] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(moved).toMatchObject({ target: 'node1', inner: { target: 'node2' }, attempt: 3 });
    expect(count(lines[0]!, 'target')).toBe(2); // the binding, and inner's own key
    expect(root).toMatchObject({ target: 'node3' });
  });

  it('still censors secret-named fields and the level can change at run time', () => {
    const { stream, lines } = capture();
    const log = createLogger({ level: 'warn', destination: stream });
    log.info({ a: 1 }, 'dropped');
    log.level = 'info';
    log.child({ target: 'n' }).info({ password: 'hunter2' }, 'kept');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('hunter2');
    expect(lines[0]).toContain('[REDACTED]');
  });
});
