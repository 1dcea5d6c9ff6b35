import { expect, test } from 'vitest';
import { Progress } from '../../src/cli/progress.js';
import { humanLog } from '../../src/cli/human-log.js';
import type { OpResult } from '../../src/run/runner.js';

/** A path with a NUL, a device error with an ANSI escape: shown as escapes, never written raw to a terminal. */
test('progress lines and log lines never carry raw control characters', () => {
  const lines: string[] = [];
  const out = { isTTY: false, columns: 120, write: (t: string) => void lines.push(t) };
  const progress = new Progress(out);
  progress.plan('a'.repeat(40), 1);
  const result: OpResult = {
    key: 'ssh.File/x',
    id: 'ssh.File/x',
    target: 'web1',
    action: 'update',
    cause: 'intent',
    status: 'failed',
    changes: [],
    error: { code: 'PLUMB_PROVIDER', message: 'lstat /etc/a\u0000b failed: \u001b[31mdenied\u001b[0m' },
    attempts: 1,
    durationMs: 1,
  };
  progress.result(result);
  const text = lines.join('');
  expect(text).toContain('lstat /etc/a\\u0000b failed: \\u001b[31mdenied');
  // eslint-disable-next-line no-control-regex
  expect(text.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f]/);

  const logged: string[] = [];
  humanLog('warn', (l) => void logged.push(l)).warn({ path: '/etc/a\u0000b' }, 'bad \u001b[2J path');
  // eslint-disable-next-line no-control-regex
  expect(logged.join('').replace(/\n$/, '')).not.toMatch(/[\u0000-\u001f]/);
  expect(logged[0]).toContain('path="/etc/a\\u0000b"');
});
