/**
 * One owner per object: every resource's claims on its target (KindHandler.claims),
 * indexed per target so that a delta load checks only what it adds. Two claims
 * overlap when their keys are equal, or one is `whole` and the other lies below it.
 */
import type { Claim } from '../provider.js';

/** Keys are joined with a control character, which no claimed name can contain (the schemas refuse them). */
const SEP = '\u001f';

const NONE: readonly never[] = [];

export interface ClaimOwner {
  id: string;
  label: string;
  whole: boolean;
}

interface TargetClaims {
  /** Joined key -> the resources claiming exactly it. */
  exact: Map<string, ClaimOwner[]>;
  /** Joined proper prefix -> resources with a claim below it (for a new `whole` claim). */
  below: Map<string, Set<string>>;
}

export class ClaimIndex {
  readonly #targets = new Map<string, TargetClaims>();
  /** The last claim joined and its key: a load checks a claim (overlaps), then adds it, joining it once. */
  #joinedClaim: Claim | undefined;
  #joinedKey = '';

  add(target: string, id: string, claims: Claim[]): void {
    let t = this.#targets.get(target);
    if (!t) this.#targets.set(target, (t = { exact: new Map(), below: new Map() }));
    for (const c of claims) {
      const key = this.#join(c);
      const owners = t.exact.get(key);
      const owner = { id, label: c.label, whole: c.whole === true };
      if (owners) owners.push(owner);
      else t.exact.set(key, [owner]);
      for (const prefix of prefixes(c.key)) {
        let ids = t.below.get(prefix);
        if (!ids) t.below.set(prefix, (ids = new Set()));
        ids.add(id);
      }
    }
  }

  /** Drops every claim of `id` on `target` (`claims`: all of them, as added). */
  remove(target: string, id: string, claims: Claim[]): void {
    const t = this.#targets.get(target);
    if (!t) return;
    for (const c of claims) {
      const key = c.key.join(SEP);
      const owners = t.exact.get(key)?.filter((o) => o.id !== id);
      if (owners && owners.length > 0) t.exact.set(key, owners);
      else t.exact.delete(key);
      for (const prefix of prefixes(c.key)) {
        const ids = t.below.get(prefix);
        ids?.delete(id);
        if (ids?.size === 0) t.below.delete(prefix);
      }
    }
    if (t.exact.size === 0) this.#targets.delete(target);
  }

  /** Owners (other than `id`, and not in `ignore`) whose claims overlap `claim` on `target`. */
  overlaps(target: string, id: string, claim: Claim, ignore?: (id: string) => boolean): ClaimOwner[] {
    const t = this.#targets.get(target);
    if (!t) return [];
    const skip = (other: string): boolean => other === id || (ignore?.(other) ?? false);
    // Allocated only once something overlaps: this runs for every claim of every resource loaded.
    let found: Map<string, ClaimOwner> | undefined;
    const key = this.#join(claim);
    for (const o of t.exact.get(key) ?? NONE) if (!skip(o.id)) (found ??= new Map()).set(o.id, o);
    // A whole claim above this one.
    let prefix = '';
    for (let n = 1; n < claim.key.length; n++) {
      prefix = n === 1 ? claim.key[0]! : prefix + SEP + claim.key[n - 1]!;
      for (const o of t.exact.get(prefix) ?? NONE) if (o.whole && !skip(o.id)) (found ??= new Map()).set(o.id, o);
    }
    // This whole claim over claims below it.
    if (claim.whole) {
      for (const other of t.below.get(key) ?? NONE) {
        if (skip(other) || found?.has(other)) continue;
        (found ??= new Map()).set(other, { id: other, label: this.#labelBelow(t, key, other) ?? claim.label, whole: false });
      }
    }
    return found ? [...found.values()] : [];
  }

  /** Every claim as `target key: ids`, sorted: a delta-maintained index must equal a fresh one. */
  describe(): string[] {
    const out: string[] = [];
    for (const [target, t] of this.#targets) {
      for (const [key, owners] of t.exact) out.push(`${target} ${key.split(SEP).join(' / ')}: ${owners.map((o) => o.id + (o.whole ? ' (whole)' : '')).sort().join(', ')}`);
      for (const [prefix, ids] of t.below) out.push(`${target} below ${prefix.split(SEP).join(' / ')}: ${[...ids].sort().join(', ')}`);
    }
    return out.sort();
  }

  #join(claim: Claim): string {
    if (claim !== this.#joinedClaim) {
      this.#joinedKey = claim.key.join(SEP);
      this.#joinedClaim = claim;
    }
    return this.#joinedKey;
  }

  #labelBelow(t: TargetClaims, key: string, id: string): string | undefined {
    for (const [k, owners] of t.exact) {
      if (!k.startsWith(key + SEP)) continue;
      const o = owners.find((x) => x.id === id);
      if (o) return o.label;
    }
    return undefined;
  }
}

/** Joined proper prefixes of a key, shortest first (none for a one-segment key). */
function prefixes(key: string[]): string[] {
  const out: string[] = [];
  for (let n = 1; n < key.length; n++) out.push(n === 1 ? key[0]! : out[n - 2]! + SEP + key[n - 1]!);
  return out;
}
