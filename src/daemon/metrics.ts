import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Plan } from '../plan/types.js';
import type { OpResult } from '../run/runner.js';
import type { WebhookProvider } from '../source/webhook.js';
import type { Store } from '../state/store.js';
import type { PassEvent } from './daemon.js';
import type { PassReport } from './engine.js';
import type { WebhookOutcome } from './http.js';

/** Statuses always exported (0 when none), so a series does not vanish when its count drops to nothing. */
const STATUSES = ['pending', 'converged', 'pending-reboot', 'drifted', 'failed', 'blocked', 'deleting'] as const;

type PassKindLabel = 'delta' | 'sweep';

/**
 * Prometheus metrics, in a registry of their own (no global default, no
 * process metrics). Counters are fed from the daemon's events; gauges are read
 * from the Store when scraped, with indexed queries only, so a scrape costs
 * the same whatever the number of converged resources.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #store: Store;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #ops: Counter<'kind' | 'result'>;
  readonly #passes: Counter<'kind' | 'outcome'>;
  readonly #fetchErrors: Counter;
  readonly #webhooks: Counter<'provider' | 'outcome'>;
  readonly #dropped: Counter;
  readonly #commitToConverged: Histogram;
  /** Ops of the running pass not finished yet. */
  #queueDepth = 0;
  /** Results already counted through onResult, so onPass counts only the rest (each result exactly once). */
  readonly #counted = new WeakSet<OpResult>();
  #lastObservedCommit: string | undefined;
  /** Status counts for the scrape in progress: two gauges need them, one query serves both. */
  #scrapeCounts: Record<string, number> | undefined;

  constructor(options: { store: Store; now?: () => number }) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    const registers = [this.registry];
    this.#ops = new Counter({ name: 'plumb_ops_total', help: 'Operations finished, by resource kind and result (converged, changed, deleted, drifted, failed, blocked, cancelled, paused, pending-reboot).', labelNames: ['kind', 'result'], registers });
    this.#passes = new Counter({ name: 'plumb_passes_total', help: 'Passes finished, by kind (delta, sweep) and outcome (converged, rejected, failed, incomplete, empty).', labelNames: ['kind', 'outcome'], registers });
    this.#fetchErrors = new Counter({ name: 'plumb_fetch_errors_total', help: 'Passes whose fetch of the config repo failed (the last accepted commit stayed in force).', registers });
    this.#webhooks = new Counter({ name: 'plumb_webhooks_total', help: 'Webhook requests, by sender and outcome (accepted, duplicate, unauthorized, bad_request, rate_limited, too_large, secret_unavailable).', labelNames: ['provider', 'outcome'], registers });
    this.#dropped = new Counter({ name: 'plumb_http_connections_dropped_total', help: 'HTTP connections closed on arrival because http.maxConnections were open.', registers });
    this.#commitToConverged = new Histogram({
      name: 'plumb_commit_to_converged_seconds',
      help: 'From a commit being accepted to the end of the first pass that found everything converged at it; observed once per commit.',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600],
      registers,
    });
    // collect() runs with the gauge as `this`; these reach back into the Metrics.
    const store = this.#store;
    const now = this.#now;
    const statusCounts = (): Record<string, number> => this.#scrapeCounts ?? store.statusCounts();
    const queueDepth = (): number => this.#queueDepth;
    const targetLag = (): Map<string, number> => this.targetLag();
    new Gauge({
      name: 'plumb_resources',
      help: 'Resources (Targets excluded) by status.',
      labelNames: ['status'],
      registers,
      collect() {
        const counts = statusCounts();
        for (const status of new Set<string>([...STATUSES, ...Object.keys(counts)])) this.set({ status }, counts[status] ?? 0);
      },
    });
    new Gauge({
      name: 'plumb_drifted_resources',
      help: 'Resources whose target differs from the accepted spec (drift found and not, or not yet, remediated).',
      registers,
      collect() {
        this.set(statusCounts().drifted ?? 0);
      },
    });
    new Gauge({
      name: 'plumb_pending_tombstones',
      help: 'Deletions accepted and not yet confirmed by the provider.',
      registers,
      collect() {
        this.set(store.pendingTombstoneCount());
      },
    });
    new Gauge({
      name: 'plumb_paused',
      help: 'Pauses in force (targets or resources neither read nor changed).',
      registers,
      collect() {
        this.set(store.pauses(now()).length);
      },
    });
    new Gauge({
      name: 'plumb_queue_depth',
      help: 'Operations of the running pass not finished yet (0 between passes).',
      registers,
      collect() {
        this.set(queueDepth());
      },
    });
    new Gauge({
      name: 'plumb_target_lag_seconds',
      help: 'Per target: seconds since the accepted commit was accepted, while the target still has resources pending, failed, blocked or being deleted (or a pending removal); 0 otherwise.',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const [target, lag] of targetLag()) this.set({ target }, lag);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition format, for `GET /metrics`. */
  async render(): Promise<string> {
    this.#scrapeCounts = this.#store.statusCounts();
    try {
      return await this.registry.metrics();
    } finally {
      this.#scrapeCounts = undefined;
    }
  }

  /** A pass planned its ops (PassEvent 'plan'): they are the queue now. */
  onPlan(plan: Pick<Plan, 'ops'>): void {
    this.#queueDepth = plan.ops.length;
  }

  /** An op finished (PassEvent 'result'). */
  onResult(result: OpResult): void {
    this.#queueDepth = Math.max(0, this.#queueDepth - 1);
    this.#count(result);
  }

  #count(result: OpResult): void {
    if (this.#counted.has(result)) return;
    this.#counted.add(result);
    this.#ops.inc({ kind: kindOf(result.id), result: result.status });
  }

  /** Both of the above, for wiring straight to a daemon's PassEvent stream. */
  onEvent(event: PassEvent): void {
    if (event.type === 'plan') this.#queueDepth = event.total;
    else this.onResult(event.result);
  }

  /**
   * A pass finished (daemon.onPass). `kind` when the caller knows it; otherwise
   * a full plan counts as a sweep. Results not seen through onResult are counted here.
   */
  onPass(report: PassReport, kind?: PassKindLabel): void {
    this.#queueDepth = 0;
    for (const result of report.run?.results ?? []) this.#count(result);
    this.#passes.inc({ kind: kind ?? (report.plan?.mode === 'full' ? 'sweep' : 'delta'), outcome: passOutcome(report) });
    if (report.fetchError !== undefined) this.#fetchErrors.inc();
    if (report.converged && report.commit !== null && report.commit !== this.#lastObservedCommit) {
      this.#lastObservedCommit = report.commit;
      const source = this.#store.source();
      // A commit that had already converged before this process started is not a new observation.
      const convergedBefore = source.appliedCommit === report.commit && source.appliedAt !== null && source.appliedAt < this.#startedAt;
      if (source.acceptedCommit === report.commit && source.acceptedAt !== null && !convergedBefore) {
        this.#commitToConverged.observe(Math.max(0, (this.#now() - source.acceptedAt) / 1_000));
      }
    }
  }

  onWebhook(provider: WebhookProvider | 'unknown', outcome: WebhookOutcome): void {
    this.#webhooks.inc({ provider, outcome });
  }

  onConnectionDropped(): void {
    this.#dropped.inc();
  }

  /** plumb_target_lag_seconds, by target (exported for tests and `plumb status`-like uses). */
  targetLag(): Map<string, number> {
    const lag = new Map<string, number>();
    for (const name of this.#store.targetNames()) lag.set(name, 0);
    const lagging = this.#store.laggingTargets();
    const acceptedAt = this.#store.source().acceptedAt;
    const seconds = acceptedAt === null ? 0 : Math.max(0, (this.#now() - acceptedAt) / 1_000);
    for (const target of lagging) lag.set(target, seconds);
    return lag;
  }
}

function kindOf(id: string): string {
  const slash = id.indexOf('/');
  return slash < 0 ? id : id.slice(0, slash);
}

/** converged; rejected (a new commit refused); failed (an op failed or was blocked); incomplete (anything else short of converged); empty (nothing accepted yet). */
function passOutcome(report: PassReport): string {
  if (report.converged) return 'converged';
  if (report.rejected) return 'rejected';
  if (report.run?.results.some((r) => r.status === 'failed' || r.status === 'blocked')) return 'failed';
  if (report.commit === null) return 'empty';
  return 'incomplete';
}
