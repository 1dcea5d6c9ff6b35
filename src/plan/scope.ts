import type { DeltaLoad } from '../load/loader.js';
import { connectionSettings, type TargetSpec } from '../provider.js';
import { canonicalJson } from '../util/canonical.js';
import { TARGET_KIND, type DesiredSet, type LoadedResource } from '../load/types.js';
import type { RecordedResource } from './types.js';

/**
 * Which ids a delta re-evaluates: what the changed files defined before and
 * define now, the previous names of renamed resources, and every resource on a
 * Target whose own settings (not its template vars) changed. Nothing else is looked at.
 */
export function deltaScope(prev: DesiredSet, delta: DeltaLoad): { scope: Set<string>; changedTargets: Set<string> } {
  const scope = new Set<string>(delta.removed);
  const changedTargets = new Set<string>();
  for (const [id, r] of delta.added) {
    scope.add(id);
    for (const old of r.meta.previousNames) scope.add(`${r.kind}/${old}`);
    if (r.kind !== TARGET_KIND) continue;
    const before = prev.resources.get(id);
    // Vars alone are not target settings: the loader re-parses the files whose templates render differently (delta.added).
    if (before && before.specHash !== r.specHash && canonicalJson(connectionSettings(before.spec as TargetSpec)) !== canonicalJson(connectionSettings(r.spec as TargetSpec))) {
      changedTargets.add(r.name);
      for (const onIt of prev.byTarget.get(r.name) ?? []) scope.add(onIt);
    }
  }
  return { scope, changedTargets };
}

/** Records as if `set` had been applied and converged: the base of `plumb plan --from A --to B`. */
export function recordedFromDesired(set: { get(id: string): LoadedResource | undefined }, ids: Iterable<string>, targetSpec: (name: string) => RecordedResource['targetSpec']): Map<string, RecordedResource> {
  const out = new Map<string, RecordedResource>();
  for (const id of ids) {
    const r = set.get(id);
    if (!r) continue;
    out.set(id, {
      id,
      kind: r.kind,
      name: r.name,
      target: r.meta.target ?? null,
      file: r.file,
      spec: r.spec as RecordedResource['spec'],
      meta: r.meta,
      specHash: r.specHash,
      appliedSpec: r.spec as RecordedResource['spec'],
      targetSpec: r.meta.target ? targetSpec(r.meta.target) : null,
      status: 'converged',
      appliedCommit: 'base',
      appliedHash: r.specHash,
      memo: null,
      hasJournal: false,
    });
  }
  return out;
}

/**
 * Subscribers of what is in scope (ssh.Service restartOn), added to it: the
 * planner keeps them if what they subscribe to makes the plan. Those with
 * journaled notifications (a crash came between a write and the restart) are
 * worked on every pass until they act.
 */
export function notifyScope(scope: Set<string>, notified: string[], lookup: { get(id: string): LoadedResource | undefined }, desired: DesiredSet): { candidates: Set<string>; pending: Set<string> } {
  const pending = new Set(notified.filter((id) => lookup.get(id) !== undefined));
  const candidates = new Set<string>();
  const work = [...scope, ...pending];
  for (const id of pending) scope.add(id);
  while (work.length > 0) {
    const id = work.pop()!;
    for (const dependent of desired.dependents.get(id) ?? []) {
      if (candidates.has(dependent) || !lookup.get(dependent)?.meta.subscribes?.includes(id)) continue;
      candidates.add(dependent);
      scope.add(dependent);
      work.push(dependent);
    }
  }
  return { candidates, pending };
}
