import { join } from 'node:path';
import { ConfigError, describeError, GitError, StateError, UsageError } from '../errors.js';
import { loadDelta, loadFull, type DeltaLoad } from '../load/loader.js';
import { SchemaRegistry } from '../load/schemas.js';
import { targetId, type DesiredSet, type Diagnostic, type LoadedResource } from '../load/types.js';
import { plan as makePlan } from '../plan/planner.js';
import { deltaScope, notifyScope } from '../plan/scope.js';
import type { PendingTombstone, Plan } from '../plan/types.js';
import type { Log, Provider, TargetSpec } from '../provider.js';
import { backoffDelay } from '../run/backoff.js';
import { ProviderRegistry } from '../run/registry.js';
import { Runner, type OpResult, type RunReport } from '../run/runner.js';
import { SessionPool } from '../run/sessions.js';
import { keyedHasher, loadHashKey } from '../secrets/keyed-hash.js';
import { SecretResolver } from '../secrets/resolve.js';
import { GitMirror } from '../source/git.js';
import { openWritable, WriterLock } from '../state/db.js';
import { Store, type PauseView } from '../state/store.js';
import { configChanges, RESTART_ONLY, type Config } from './config.js';

export interface EngineDeps {
  config: Config;
  providers: Provider[];
  log: Log;
  /** The environment `env:` secret references resolve against (the edge passes process.env). */
  env: Record<string, string | undefined>;
  now?: () => number;
}

export interface PassOptions {
  /** Read every resource (start-up, periodic drift sweep, `apply --all`), not only what changed. */
  sweep?: boolean;
  /** Stop starting new work: a newer commit superseded this pass, or shutdown began. */
  stop?: AbortSignal;
  /** Abort operations in flight. */
  abort?: AbortSignal;
  onPlan?: (plan: Plan) => void;
  onResult?: (result: OpResult) => void;
  /** `plumb sync TARGET|KIND/NAME`: besides what changed, read (and converge) only what matches. */
  only?: string[];
}

export interface PassReport {
  /** The commit whose desired state this pass converged toward (the newest valid one). */
  commit: string | null;
  /** The branch head fetched, when the fetch worked. */
  fetched: string | null;
  rejected?: { commit: string; diagnostics: Diagnostic[] };
  fetchError?: string;
  plan?: Plan;
  run?: RunReport;
  /** Everything Plumb manages is converged at `commit`. */
  converged: boolean;
  /** The pass itself broke (not a target: the state store, a bug); the daemon logged it and goes on. */
  error?: { code: string; message: string };
  timings: { fetchMs: number; loadMs: number; planMs: number; runMs: number };
  filesRead: number;
}

/**
 * Composes the stages: source -> load -> plan -> run, with state. One pass at a
 * time (the daemon serialises them). Holds the desired set of the accepted
 * commit in memory so that a new commit costs a delta, not a reload.
 */
export class Engine {
  #config: Config;
  readonly store: Store;
  readonly mirror: GitMirror;
  readonly registry: ProviderRegistry;
  readonly schemas: SchemaRegistry;
  readonly pool: SessionPool;
  readonly #runner: Runner;
  readonly #lock: WriterLock;
  readonly #log: Log;
  readonly #now: () => number;
  #desired: DesiredSet | undefined;
  #rejected: string | undefined;
  /** The commit the running pass works toward, from its fetch on: a poll that sees it again supersedes nothing. */
  #workingToward: string | undefined;

  private constructor(deps: EngineDeps, lock: WriterLock, store: Store) {
    const { config } = deps;
    this.#config = config;
    this.#lock = lock;
    this.store = store;
    this.#log = deps.log;
    this.#now = deps.now ?? Date.now;
    this.registry = new ProviderRegistry(deps.providers);
    this.schemas = new SchemaRegistry(deps.providers);
    this.mirror = new GitMirror({
      url: config.repo.url,
      branch: config.repo.branch,
      path: config.repo.path,
      mirrorDir: join(config.stateDir, 'mirror.git'),
      env: deps.env as NodeJS.ProcessEnv,
      timeoutMs: config.repo.fetchTimeoutMs,
    });
    const secrets = new SecretResolver({ env: deps.env });
    this.pool = new SessionPool({
      secrets,
      log: deps.log,
      connectTimeoutMs: config.run.connectTimeoutMs,
      // A target that can't be reached (or that hangs) costs at most this many attempts per pass.
      maxConnectFailures: config.run.maxAttempts,
      onReachability: (target, reachable, error) => this.store.markTargetReachable(target, reachable, error),
    });
    this.#runner = new Runner({
      registry: this.registry,
      pool: this.pool,
      journal: store,
      log: deps.log,
      secrets,
      keyedHash: keyedHasher(loadHashKey(config.stateDir, { create: true })!),
      options: config.run,
      now: this.#now,
    });
  }

  /** Takes the writer lock, opens (and migrates) the state, and gives a crash's open intents an unknown outcome (re-read first). */
  static async open(deps: EngineDeps): Promise<Engine> {
    const lock = WriterLock.acquire(deps.config.stateDir);
    let store: Store | undefined;
    try {
      store = new Store(openWritable(deps.config.stateDir), deps.now);
      const engine = new Engine(deps, lock, store);
      const source = store.source();
      if (source.remote !== null && source.remote !== engine.mirror.url) {
        throw new StateError(`the state in ${deps.config.stateDir} belongs to ${source.remote}, not ${engine.mirror.url}; use another stateDir`);
      }
      store.setSourceConfig(engine.mirror.url, engine.mirror.branch, engine.mirror.scope);
      const interrupted = store.markInterrupted();
      if (interrupted > 0) deps.log.warn({ operations: interrupted }, 'interrupted operations found; their resources are re-read first');
      return engine;
    } catch (err) {
      store?.close();
      lock.release();
      throw err;
    }
  }

  get config(): Config {
    return this.#config;
  }

  /** A config reload: applies what can change at run time; refuses the rest (restart needed). Returns what changed. */
  reconfigure(next: Config): string[] {
    const changed = configChanges(this.#config, next);
    const refused = changed.filter((c) => RESTART_ONLY.includes(c));
    if (refused.length > 0) throw new ConfigError(`changing ${refused.join(', ')} needs a restart (systemctl restart plumb); nothing was reloaded`);
    this.#config = next;
    this.#runner.configure(next.run);
    this.pool.configure({ connectTimeoutMs: next.run.connectTimeoutMs, maxConnectFailures: next.run.maxAttempts });
    return changed;
  }

  /** Fetches and returns the branch head without planning (the daemon uses it to notice a newer commit mid-pass). */
  async fetchHead(signal?: AbortSignal): Promise<string> {
    const head = await this.mirror.fetch(signal);
    this.store.recordFetched(head);
    return head;
  }

  /** For the daemon's poll: a commit worth superseding the running pass for (not the one it already works toward). */
  isNew(commit: string): boolean {
    return this.#differsFromDesired(commit) && commit !== this.#workingToward;
  }

  /** The pauses in force, by selector: re-read only when one is made or lifted, or one runs out. */
  #pauseIndex(): () => Map<string, PauseView> {
    let generation = -1;
    let expires = 0;
    let index = new Map<string, PauseView>();
    return () => {
      const now = this.#now();
      if (generation !== this.store.pauseGeneration || now >= expires) {
        generation = this.store.pauseGeneration;
        const pauses = this.store.pauses(now);
        expires = Math.min(Infinity, ...pauses.map((p) => p.until ?? Infinity));
        index = new Map(pauses.map((p) => [p.selector, p]));
      }
      return index;
    };
  }

  #differsFromDesired(commit: string): boolean {
    return commit !== this.#desired?.commit && commit !== this.#rejected;
  }

  #loadOptions(): Parameters<typeof loadFull>[1] {
    return { objects: this.mirror.objects, registry: this.schemas, scope: this.mirror.scope, limits: this.#config.limits };
  }

  async pass(options: PassOptions = {}): Promise<PassReport> {
    try {
      return await this.#pass(options);
    } finally {
      this.#workingToward = undefined;
    }
  }

  async #pass(options: PassOptions): Promise<PassReport> {
    const never = new AbortController().signal;
    const stop = options.stop ?? never;
    const timings = { fetchMs: 0, loadMs: 0, planMs: 0, runMs: 0 };
    let t = this.#now();
    const lap = (key: keyof typeof timings): void => {
      const now = this.#now();
      timings[key] = now - t;
      t = now;
    };

    let head: string | null = null;
    let fetchError: string | undefined;
    try {
      head = await this.fetchHead(stop);
      this.#workingToward = head;
    } catch (err) {
      fetchError = describeError(err).message;
      this.store.recordSourceError(fetchError);
      this.#log.warn({ error: fetchError }, 'fetch failed; the last accepted commit stays in force');
    }
    lap('fetchMs');

    const report: PassReport = { commit: null, fetched: head, converged: false, timings, filesRead: 0, ...(fetchError ? { fetchError } : {}) };
    const accepted = this.store.source().acceptedCommit;
    let delta: DeltaLoad | undefined;
    let everything = options.sweep === true;
    let cold = false;

    if (!this.#desired) {
      const candidate = head ?? accepted;
      if (!candidate) return report;
      const loaded = await this.#loadFull(candidate, report);
      if (!loaded) return report;
      this.#desired = loaded;
      everything = true; // cold: compare every desired and recorded resource (only a sweep reads them all)
      cold = true;
    } else if (head && this.#differsFromDesired(head)) {
      try {
        const options = this.#loadOptions();
        delta = await loadDelta(this.#desired, head, options);
        report.filesRead = delta.filesRead;
        if (delta.diagnostics.length > 0) {
          // Rejections are rare and read by people: report exactly what `plumb validate` says for this commit.
          const full = await loadFull(head, options);
          report.filesRead += full.filesRead;
          if (full.diagnostics.length > 0) this.#reject(head, full.diagnostics, report);
          else {
            this.#log.error({ commit: head, first: delta.diagnostics[0] }, 'the delta load refused a commit that loads in full; using the full load (please report this)');
            this.#desired = full.set;
            everything = true;
          }
          delta = undefined;
        }
      } catch (err) {
        if (!(err instanceof GitError)) throw err;
        // The delta base is gone (history rewritten and collected): start over from a full load.
        this.#log.warn({ error: err.message }, 'cannot diff from the accepted commit; loading the new commit in full');
        const loaded = await this.#loadFull(head, report);
        if (loaded) {
          this.#desired = loaded;
          everything = true;
        }
      }
    }
    lap('loadMs');

    const desired = this.#desired!;
    const commit = delta?.commit ?? desired.commit;
    const lookup = delta ?? { get: (id: string) => desired.resources.get(id) };
    const scope = new Set<string>();
    const changedTargets = new Set<string>();
    // A cold pass compares everything anyway; a selection narrows only a warm one.
    const only = !cold && options.only && options.only.length > 0 ? new Set(options.only) : undefined;
    if (everything && !only) {
      for (const id of desired.resources.keys()) scope.add(id);
    } else if (only) {
      for (const [id, r] of desired.resources) if (only.has(id) || (r.meta.target !== undefined && only.has(r.meta.target))) scope.add(id);
    }
    if (delta) {
      const found = deltaScope(desired, delta);
      for (const id of found.scope) scope.add(id);
      for (const name of found.changedTargets) changedTargets.add(name);
    }
    const retry = new Set(this.store.retryDue(this.#now()));
    // Interrupted side effects are re-read every pass until a read settles them (a cancelled re-read is not lost).
    for (const id of this.store.unknownIds()) retry.add(id);
    for (const id of retry) scope.add(id);
    const notify = notifyScope(scope, this.store.notifiedIds(), lookup, desired);

    const recorded = everything && !only ? this.store.allRecorded() : this.store.recorded(scope);
    if (everything && !only) for (const id of recorded.keys()) scope.add(id);
    const pending = this.store.pendingTombstones();
    const tombstones = this.#dueTombstones(pending);
    const plan = makePlan({
      commit,
      mode: options.sweep || only ? 'full' : 'delta',
      ...(delta ? { base: delta.base } : {}),
      desired: lookup,
      scope,
      recorded,
      tombstones,
      retry,
      changedTargets,
      blockingTombstones: pending,
      notify,
    });
    lap('planMs');

    // Accept: the new desired state and its tombstones, in one transaction; then the in-memory set follows.
    this.store.accept(plan.acceptance, this.#targetSpecs(plan, lookup), { quiet: commit === accepted });
    delta?.apply();
    // Deletions accepted just now learn the id of the tombstone they settle.
    for (const op of plan.ops) if (op.action === 'delete' && op.tombstoneId === undefined) op.tombstoneId = this.store.pendingTombstoneId(op.id, op.target);
    if (commit !== accepted) {
      // Alongside the run, not before it: a git spawn is ~50 ms the first op needn't wait for.
      void this.mirror.pin(commit).catch((err: unknown) => this.#log.warn({ error: describeError(err).message }, 'cannot pin the accepted commit in the mirror'));
      this.#log.info({ commit, ops: plan.ops.length, mode: plan.mode }, 'commit accepted');
    }
    report.commit = commit;
    report.plan = plan;
    options.onPlan?.(plan);

    const pausedBy = this.#pauseIndex();
    const run = await this.#runner.run(plan, {
      mode: 'apply',
      // Asked as each op is queued and again when its turn comes: a pause made mid-pass holds what has not started.
      paused: (op) => {
        const index = pausedBy();
        const p = index.get(op.id) ?? (op.target !== null ? index.get(op.target) : undefined);
        return p ? `paused by ${p.by}${p.until ? ` until ${new Date(p.until).toISOString()}` : ''}: ${p.reason}` : undefined;
      },
      stop,
      abort: options.abort ?? never,
      targets: (name) => (lookup.get(targetId(name))?.spec as TargetSpec | undefined) ?? undefined,
      ...(options.onResult ? { onResult: options.onResult } : {}),
    });
    // What the run recorded without an fsync of its own (converged, done, failed) is made durable before the pass reports.
    await this.store.durable();
    lap('runMs');
    report.run = run;

    const unsettled = this.store.unsettledCount();
    report.converged = unsettled === 0 && this.store.pendingTombstoneCount() === 0 && !this.#rejected;
    if (unsettled === 0 && run.results.every((r) => r.status !== 'failed' && r.status !== 'cancelled' && r.status !== 'blocked')) this.store.recordApplied(commit);
    return report;
  }

  /**
   * `plumb resolve KIND/NAME --ran | --not-run`: an operator settles writes of
   * unknown outcome (audited). "It ran" also records what the kind would have
   * remembered (a guardless command's ran-spec hash), so it is not run again.
   * Returns how many journal entries it settled.
   */
  resolve(input: { id: string; ran: boolean; by: string; reason: string }): number {
    const rec = this.store.recorded([input.id]).get(input.id);
    if (!rec) throw new UsageError(`nothing called ${input.id} is recorded (use Kind/name, as plumb status shows it)`);
    const handler = this.registry.kind(rec.kind)?.handler;
    const open = this.store.unknownOutcome(rec.id, rec.specHash);
    const r = { id: rec.id, kind: rec.kind, name: rec.name, meta: rec.meta, spec: rec.spec, attachments: {}, ...(rec.memo !== null ? { memo: rec.memo } : {}) };
    const memo = input.ran && open && handler?.ranMemo ? handler.ranMemo(r) : undefined;
    const settled = this.store.resolveOutcome({ ...input, ...(memo !== undefined ? { memo } : {}) });
    if (settled === 0) throw new UsageError(`${input.id} has no write of unknown outcome to resolve (plumb history ${input.id} shows what happened)`);
    this.#log.warn({ id: input.id, by: input.by, ran: input.ran, reason: input.reason, settled }, 'unknown outcome resolved by an operator');
    return settled;
  }

  async #loadFull(commit: string, report: PassReport): Promise<DesiredSet | undefined> {
    const options = this.#loadOptions();
    const full = await loadFull(commit, options);
    report.filesRead += full.filesRead;
    if (full.diagnostics.length === 0) {
      this.#rejected = undefined;
      return full.set;
    }
    this.#reject(commit, full.diagnostics, report);
    const accepted = this.store.source().acceptedCommit;
    if (!accepted || accepted === commit) return undefined;
    // The last good commit stays in force.
    const fallback = await loadFull(accepted, options);
    report.filesRead += fallback.filesRead;
    if (fallback.diagnostics.length > 0) {
      this.#log.error({ commit: accepted, errors: fallback.diagnostics.length }, 'the accepted commit no longer validates (schemas changed?); nothing is applied');
      return undefined;
    }
    return fallback.set;
  }

  #reject(commit: string, diagnostics: Diagnostic[], report: PassReport): void {
    this.#rejected = commit;
    this.store.rejectCommit(commit, diagnostics);
    report.rejected = { commit, diagnostics };
    this.#log.warn({ commit, errors: diagnostics.length, first: diagnostics[0] }, 'commit rejected: nothing from it is applied');
  }

  /** Pending deletions whose retry time has come (failures back off like resources do). */
  #dueTombstones(pending: PendingTombstone[]): PendingTombstone[] {
    const now = this.#now();
    return pending.filter((t) => t.attempts === 0 || t.updatedAt + backoffDelay(t.attempts, this.#config.run.retryLater, () => 0) <= now);
  }

  #targetSpecs(plan: Plan, lookup: { get(id: string): LoadedResource | undefined }): Map<string, TargetSpec> {
    const specs = new Map<string, TargetSpec>();
    for (const r of plan.acceptance.upserts) {
      const name = r.meta.target;
      if (name && !specs.has(name)) {
        const target = lookup.get(targetId(name));
        if (target) specs.set(name, target.spec as TargetSpec);
      }
    }
    return specs;
  }

  async close(): Promise<void> {
    await this.pool.closeAll();
    this.mirror.close();
    this.store.close();
    this.#lock.release();
  }
}

