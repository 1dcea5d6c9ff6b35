import { expect, test } from 'vitest';
import { canonicalJson, hashJson } from '../../src/util/canonical.js';

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
