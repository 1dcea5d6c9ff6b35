import { expect, test } from 'vitest';
import { canonicalJson, hashJson, sha256Hex, sortKeys } from '../../src/util/canonical.js';

test('canonical JSON sorts keys at every level, so equal values hash equal whatever their key order', () => {
  expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
  expect(hashJson({ x: 1, y: 2 })).toBe(hashJson({ y: 2, x: 1 }));
  expect(hashJson({ x: 1 })).not.toBe(hashJson({ x: 2 }));
});

test('a __proto__ key stays a key: it is hashed, and never becomes the prototype', () => {
  const withProto = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as object;
  expect(canonicalJson(withProto)).toBe('{"__proto__":{"polluted":true},"a":1}');
  expect(hashJson(withProto)).not.toBe(hashJson({ a: 1 }));
  expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
});

test('the canonical text is exactly JSON.stringify of the key-sorted copy (stored spec hashes were made from that)', () => {
  const copy = (v: unknown): string => JSON.stringify(sortKeys(v));
  const cases: unknown[] = [
    { '10': 'a', '9': 'b', x: 1, '1x': 2, '': 3 },
    { b: [1, undefined, () => 1, null, -0, NaN, Infinity, 1e21, 0.1], a: undefined, c: () => 2 },
    { date: new Date(0), map: new Map([[1, 2]]), nested: { toJSON: () => 'x' } },
    ['\u2028', 'é', '"quoted"\n', '\ud800', { 'ü': 1, u: 2, U: 3 }],
    'plain',
    42,
    null,
    true,
  ];
  // And random JSON-shaped values, with keys in random order.
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const randomValue = (depth: number): unknown => {
    switch (rand(depth > 3 ? 4 : 6)) {
      case 0: return rand(1000) - 500;
      case 1: return ['a', 'b/c', '~', 'x y', ''][rand(5)];
      case 2: return rand(2) === 0;
      case 3: return null;
      case 4: return Array.from({ length: rand(4) }, () => randomValue(depth + 1));
      default: return Object.fromEntries(Array.from({ length: rand(5) }, () => [['k', 'a', 'Z', '_', '2', '01', 'b-c'][rand(7)]! + rand(3), randomValue(depth + 1)]));
    }
  };
  for (let i = 0; i < 500; i++) cases.push(randomValue(0));
  for (const v of cases) expect(canonicalJson(v)).toBe(copy(v));
  expect(canonicalJson(undefined)).toBe(JSON.stringify(undefined));
});

test('hashJson is the first 128 bits of the SHA-256 of the canonical text', () => {
  const v = { spec: { path: '/etc/x' }, target: 't', blobs: {} };
  expect(hashJson(v)).toBe(sha256Hex(canonicalJson(v)).slice(0, 32));
});
