import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import * as errors from '../src/errors.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

test('docs/errors.md lists exactly the codes in src/errors.ts', () => {
  const documented = [...doc.matchAll(/^\| `(PLUMB_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  expect(documented.sort()).toEqual([...errors.ERROR_CODES].sort());
});

test('every error class has a catalogued code and the documented retry behaviour', () => {
  const classes = (Object.values(errors) as unknown[]).filter(
    (v): v is new (m: string) => errors.PlumbError => typeof v === 'function' && (v as { prototype: unknown }).prototype instanceof errors.PlumbError,
  );
  expect(classes.length).toBeGreaterThan(10);
  for (const Class of classes) {
    const e = new Class('x');
    expect(errors.ERROR_CODES).toContain(e.code);
    const row = new RegExp(`^\\| \`${e.code}\` \\| ([a-z ]+) \\|`, 'm').exec(doc)![1]!;
    if (row === 'yes') expect(e.retryable, e.code).toBe(true);
    if (row === 'no') expect(e.retryable, e.code).toBe(false);
  }
});
