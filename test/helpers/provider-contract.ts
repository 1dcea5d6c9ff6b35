/**
 * The provider contract suite: the same scenario, run against every provider
 * (ssh against OpenSSH and the simulator, redfish, netconf). A provider passes
 * when, for every case, read/diff/apply/remove behave as src/provider.ts says.
 */
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, TimeoutError } from '../../src/errors.js';
import { keyedHasher } from '../../src/secrets/keyed-hash.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import type { Applied, Change, KindHandler, Log, OpContext, Provider, Resource, Secrets, Session, Target } from '../../src/provider.js';

/** A Log that drops everything (or collects, to assert on). */
export function testLog(lines?: Array<{ level: string; fields: object; msg: string }>): Log {
  const log: Log = {
    debug: (fields, msg) => lines?.push({ level: 'debug', fields, msg }),
    info: (fields, msg) => lines?.push({ level: 'info', fields, msg }),
    warn: (fields, msg) => lines?.push({ level: 'warn', fields, msg }),
    error: (fields, msg) => lines?.push({ level: 'error', fields, msg }),
    child: () => log,
  };
  return log;
}

const testHashKey = randomBytes(32);

/** An OpContext as the runner builds it; `secrets` resolves against `env` (default: none). */
export function opContext(signal: AbortSignal = AbortSignal.timeout(30_000), env: Record<string, string | undefined> = {}): OpContext {
  return { signal, log: testLog(), secrets: new SecretResolver({ env }), keyedHash: keyedHasher(testHashKey) };
}

export interface ContractCase {
  kind: string;
  /** A resource that does not exist on the target yet. */
  create: Resource;
  /** Same id as `create`, a different spec. */
  update: Resource;
}

export interface ContractSetup<S extends Session = Session> {
  provider: Provider<S>;
  target: Target;
  secrets: Secrets;
  cases: ContractCase[];
  /** Writes the target has seen so far (any mutation: file write, setstat, command run, config commit). */
  writes(): number | Promise<number>;
  teardown(): Promise<void>;
  connectTimeoutMs?: number;
}

/** JSON pointers of the leaves that differ between two specs. */
export function changedPointers(a: unknown, b: unknown, base = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => changedPointers(a[k], b[k], `${base}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`));
  }
  return isDeepStrictEqual(a, b) ? [] : [base];
}

function related(p: string, q: string): boolean {
  return p === q || p.startsWith(`${q}/`) || q.startsWith(`${p}/`);
}

function withMemo<T>(r: Resource<T>, applied: Applied | void): Resource<T> {
  return applied?.memo !== undefined ? { ...r, memo: applied.memo } : r;
}

export function describeProviderContract<S extends Session>(name: string, setup: () => Promise<ContractSetup<S>>): void {
  describe(`provider contract: ${name}`, () => {
    let env: ContractSetup<S>;
    let session: S;
    /** The resource as the engine would hand it now (with the memo of its last apply). */
    const current = new Map<string, Resource>();

    const handler = (kind: string): KindHandler<unknown, unknown, S> => {
      const h = env.provider.kinds.find((k) => k.kind === kind);
      if (!h) throw new Error(`provider ${env.provider.name} has no kind ${kind}`);
      return h;
    };
    const open = (signal: AbortSignal = AbortSignal.timeout(30_000)): Promise<S> =>
      env.provider.open(env.target, { secrets: env.secrets, signal, log: testLog(), connectTimeoutMs: env.connectTimeoutMs ?? 10_000 });
    const converge = async (r: Resource): Promise<Resource> => {
      const h = handler(r.kind);
      const changes = h.diff(r, await h.read(session, r, opContext()));
      const applied = await h.apply(session, r, changes, opContext());
      const next = withMemo(r, applied);
      current.set(r.id, next);
      return next;
    };
    const expectConverged = async (r: Resource): Promise<void> => {
      const h = handler(r.kind);
      expect(h.diff(r, await h.read(session, r, opContext()))).toEqual([]);
    };

    beforeAll(async () => {
      env = await setup();
      expect(env.cases.length).toBeGreaterThan(0);
      session = await open();
    });

    afterAll(async () => {
      await session?.close();
      await env?.teardown();
    });

    it('declares well-formed kinds', () => {
      expect(env.provider.name).toMatch(/^[a-z]+$/);
      expect(env.provider.targetSchema).toMatch(/\.schema\.json$/);
      const kinds = env.provider.kinds.map((k) => k.kind);
      expect(new Set(kinds).size).toBe(kinds.length);
      for (const k of env.provider.kinds) {
        expect(k.kind.startsWith(`${env.provider.name}.`)).toBe(true);
        expect(k.schema).toMatch(/\.schema\.json$/);
      }
      expect(session.alive).toBe(true);
    });

    it('an already-aborted signal rejects every call quickly and writes nothing', async () => {
      const before = await env.writes();
      const reasons: Array<[unknown, typeof CancelledError | typeof TimeoutError]> = [
        [undefined, CancelledError],
        [new DOMException('deadline', 'TimeoutError'), TimeoutError],
        [new TimeoutError('deadline'), TimeoutError],
      ];
      for (const [reason, expected] of reasons) {
        const signal = AbortSignal.abort(reason);
        await expect(open(signal)).rejects.toBeInstanceOf(expected);
        for (const c of env.cases) {
          const h = handler(c.kind);
          const started = Date.now();
          await expect(h.read(session, c.create, opContext(signal))).rejects.toBeInstanceOf(expected);
          await expect(h.apply(session, c.create, h.diff(c.create, undefined), opContext(signal))).rejects.toBeInstanceOf(expected);
          if (h.remove) await expect(h.remove(session, c.create, opContext(signal))).rejects.toBeInstanceOf(expected);
          expect(Date.now() - started).toBeLessThan(1_000);
        }
      }
      expect(await env.writes()).toBe(before);
      expect(session.alive).toBe(true);
    });

    it('reads an absent resource as undefined and plans a create', async () => {
      for (const c of env.cases) {
        const h = handler(c.kind);
        const actual = await h.read(session, c.create, opContext());
        // Kinds without remove() (imperative ones) have no "absent": they read as pending instead.
        if (h.remove) expect(actual).toBeUndefined();
        expect(h.diff(c.create, actual).length).toBeGreaterThan(0);
        expect(h.diff(c.create, undefined).length).toBeGreaterThan(0);
      }
    });

    it('apply converges: a re-read diffs to []', async () => {
      for (const c of env.cases) {
        const r = await converge(c.create);
        await expectConverged(r);
      }
    });

    it('a converged resource costs reads only: read + diff again writes nothing', async () => {
      const before = await env.writes();
      for (const c of env.cases) {
        const r = current.get(c.create.id) ?? c.create;
        const h = handler(c.kind);
        for (let i = 0; i < 2; i++) expect(h.diff(r, await h.read(session, r, opContext()))).toEqual([]);
      }
      expect(await env.writes()).toBe(before);
    });

    it('diff is pure: same output twice, and it works with every session closed', async () => {
      const other = await open();
      const reads: Array<[Resource, unknown]> = [];
      for (const c of env.cases) {
        const r = current.get(c.create.id) ?? c.create;
        reads.push([r, await handler(c.kind).read(other, r, opContext())]);
        reads.push([c.update, await handler(c.kind).read(other, c.update, opContext())]);
      }
      await other.close();
      expect(other.alive).toBe(false);
      for (const [r, actual] of reads) {
        const h = handler(r.kind);
        const snapshot = structuredClone(actual);
        const first: Change[] = h.diff(r, actual);
        expect(h.diff(r, actual)).toEqual(first);
        expect(h.diff(structuredClone(r), structuredClone(actual))).toEqual(first);
        expect(actual).toEqual(snapshot); // diff does not mutate what read returned
        for (const change of first) expect(change.path).toMatch(/^\/[^/]/);
      }
    });

    it('update: diff lists only the changed paths, and apply converges', async () => {
      for (const c of env.cases) {
        expect(c.update.id).toBe(c.create.id);
        const h = handler(c.kind);
        const prev = current.get(c.create.id) ?? c.create;
        const update: Resource = prev.memo !== undefined ? { ...c.update, memo: prev.memo } : c.update;
        const changed = changedPointers(c.create.spec, c.update.spec);
        expect(changed.length).toBeGreaterThan(0);
        const changes = h.diff(update, await h.read(session, update, opContext()));
        expect(changes.length).toBeGreaterThan(0);
        for (const change of changes) {
          expect(
            changed.some((p) => related(change.path, p)),
            `${c.kind}: change ${change.path} is not among the edited fields ${changed.join(', ')}`,
          ).toBe(true);
        }
        const applied = await h.apply(session, update, changes, opContext());
        const next = withMemo(update, applied);
        current.set(c.create.id, next);
        await expectConverged(next);
      }
    });

    it('remove: the resource reads as absent, and removing again is fine', async () => {
      for (const c of [...env.cases].reverse()) {
        const h = handler(c.kind);
        const r = current.get(c.create.id) ?? c.update;
        if (!h.remove) continue;
        await h.remove(session, r, opContext());
        expect(await h.read(session, c.update, opContext())).toBeUndefined();
        await h.remove(session, r, opContext());
      }
      expect(session.alive).toBe(true);
    });
  });
}
