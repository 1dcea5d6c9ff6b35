import { expect, test } from 'vitest';
import { Progress } from '../../src/cli/progress.js';
import type { OpResult } from '../../src/run/runner.js';

const result = (id: string, status: OpResult['status']): OpResult => ({ key: id, id, target: 't1', action: 'update', cause: 'intent', status, changes: [], attempts: 1, durationMs: 5 });

test('a pass that starts over (the one before was superseded) starts the counters over', () => {
  let text = '';
  const progress = new Progress({ isTTY: true, columns: 120, write: (t) => void (text += t) });
  progress.plan('a'.repeat(40), 3);
  progress.result(result('fake.Item/x', 'failed'));
  progress.result(result('fake.Item/y', 'cancelled'));
  text = '';
  progress.plan('b'.repeat(40), 2);
  progress.result(result('fake.Item/x', 'changed'));
  expect(text).toContain('[1/2] update    fake.Item/x on t1');
  expect(text.split('\r\x1b[K').at(-1)).toBe('[1/2] 0 failed · slowest: t1 0.0s');
});
