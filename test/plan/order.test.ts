import { expect, test } from 'vitest';
import type { LoadedResource } from '../../src/load/types.js';
import { plan } from '../../src/plan/planner.js';
import type { Op, RecordedResource } from '../../src/plan/types.js';

/** The order as it was defined before the heap: Kahn, the ready list re-sorted (stably) with localeCompare. */
function referenceOrder(ops: Op[]): string[] {
  const byKey = new Map(ops.map((op) => [op.key, op]));
  const indegree = new Map(ops.map((op) => [op.key, op.waitFor.filter((k) => byKey.has(k)).length]));
  const dependents = new Map<string, string[]>();
  for (const op of ops) for (const k of op.waitFor) (dependents.get(k) ?? dependents.set(k, []).get(k)!).push(op.key);
  const rank = (op: Op): string => `${op.action === 'delete' ? 1 : 0}\u0000${op.target ?? ''}\u0000${op.id}`;
  const ready = ops.filter((op) => indegree.get(op.key) === 0).sort((a, b) => rank(a).localeCompare(rank(b)));
  const out: Op[] = [];
  while (ready.length > 0) {
    const op = ready.shift()!;
    out.push(op);
    let added = false;
    for (const k of dependents.get(op.key) ?? []) {
      const n = indegree.get(k)! - 1;
      indegree.set(k, n);
      if (n === 0) {
        ready.push(byKey.get(k)!);
        added = true;
      }
    }
    if (added) ready.sort((a, b) => rank(a).localeCompare(rank(b)));
  }
  return out.map((op) => op.key);
}

const meta = (name: string, target: string, dependsOn: string[]) => ({ name, target, dependsOn, deletionPolicy: 'Delete' as const, previousNames: [], ignore: [], drift: 'remediate' as const });

test('plans are ordered as the sorted ready list ordered them: dependencies first, then deletions last, by target, then id (collation, not code units)', () => {
  let seed = 11;
  const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  // Names that sort differently by collation and by code unit, and ties only collation sees.
  const names = ['a', 'B', 'b', 'é', 'e', 'Z', '10', '9', 'a-b', 'a_b', 'ab'];
  for (let round = 0; round < 20; round++) {
    const desired = new Map<string, LoadedResource>();
    const recorded = new Map<string, RecordedResource>();
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const name = `${names[rand(names.length)]}${i % 7 === 0 ? '' : i}`;
      const id = `ssh.File/${name}`;
      if (desired.has(id) || recorded.has(id)) continue;
      const target = ['t1', 'T1', 't2', 'é'][rand(4)]!;
      // Depend only on earlier ids: a DAG, as validation guarantees.
      const dependsOn = ids.length > 0 && rand(3) === 0 ? [ids[rand(ids.length)]!] : [];
      ids.push(id);
      const spec = { path: `/x/${i}` };
      if (rand(4) === 0) {
        // Only recorded: a deletion.
        recorded.set(id, { id, kind: 'ssh.File', name, target, file: 'f.yaml', spec, meta: meta(name, target, dependsOn), specHash: 'h', targetSpec: null, status: 'converged', appliedCommit: 'c0', appliedHash: 'h', appliedSpec: spec, memo: null, hasJournal: false });
      } else {
        desired.set(id, { id, kind: 'ssh.File', name, meta: meta(name, target, dependsOn), spec, attachments: {}, file: 'f.yaml', line: 1, col: 1, specHash: `h${i}`, claims: [] });
      }
    }
    const p = plan({ commit: 'c1', mode: 'delta', desired, scope: [...desired.keys(), ...recorded.keys()], recorded, tombstones: [], retry: new Set(), changedTargets: new Set() });
    expect(p.ops.length).toBe(desired.size + recorded.size);
    expect(p.ops.map((op) => op.key)).toEqual(referenceOrder(p.ops));
    expect(referenceOrder([...p.ops].reverse())).toEqual(referenceOrder(p.ops)); // no ties: the order does not depend on the input's
  }
});
