import { describeError, PlumbError, UnreachableError } from '../errors.js';
import { connectionSettings, type Log, type Provider, type Secrets, type Session, type TargetSpec } from '../provider.js';
import { canonicalJson } from '../util/canonical.js';
import { deadline } from './deadline.js';

export interface SessionPoolOptions {
  secrets: Secrets;
  log: Log;
  /** Connect + handshake deadline; default 15s. */
  connectTimeoutMs: number;
  /** Failed connects to one target per pass before its remaining ops fail fast; default 2. */
  maxConnectFailures: number;
  /** Told when a target becomes reachable or not (for `plumb status`). */
  onReachability?: (target: string, reachable: boolean, error?: string) => void;
}

interface Entry {
  key: string;
  session: Promise<Session>;
  lastUsed: number;
}

/**
 * One session per target, opened on first use and reused across operations and
 * passes (Ansible's biggest cost is reconnecting per task). A dead target is
 * tried a bounded number of times per pass; after that its ops fail fast
 * instead of each waiting out a connect timeout.
 */
export class SessionPool {
  #options: SessionPoolOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #failures = new Map<string, { count: number; error: unknown }>();
  readonly #reachable = new Map<string, boolean>();
  /** Sessions dropped (broken, or their settings changed) whose close is still under way. */
  readonly #closing = new Set<Promise<void>>();

  constructor(options: SessionPoolOptions) {
    this.#options = options;
  }

  configure(options: Partial<Pick<SessionPoolOptions, 'connectTimeoutMs' | 'maxConnectFailures'>>): void {
    this.#options = { ...this.#options, ...options };
  }

  /** Forget connect failures: a new pass tries unreachable targets again. */
  newPass(): void {
    this.#failures.clear();
  }

  async session(name: string, spec: TargetSpec, provider: Provider, signal: AbortSignal): Promise<Session> {
    // Template vars are not connection settings: a vars-only change keeps the session.
    const key = `${provider.name}:${canonicalJson(connectionSettings(spec))}`;
    const existing = this.#entries.get(name);
    if (existing && existing.key === key) {
      try {
        const session = await existing.session;
        if (session.alive) {
          existing.lastUsed = Date.now();
          return session;
        }
      } catch {
        // fall through: a failed open is retried below under the failure budget
      }
    }
    if (existing) this.#drop(name, existing);

    const failure = this.#failures.get(name);
    if (failure && failure.count >= this.#options.maxConnectFailures) {
      const { message } = describeError(failure.error);
      throw failure.error instanceof PlumbError ? failure.error : new UnreachableError(`target ${name} is unreachable in this pass: ${message}`);
    }

    const limit = deadline(this.#options.connectTimeoutMs, signal, `connecting to ${name}`);
    const opening = provider
      .open({ name, spec }, { secrets: this.#options.secrets, signal: limit.signal, log: this.#options.log.child({ target: name }), connectTimeoutMs: this.#options.connectTimeoutMs })
      .finally(() => limit.dispose());
    const entry: Entry = { key, session: opening, lastUsed: Date.now() };
    this.#entries.set(name, entry);
    try {
      const session = await opening;
      this.#failures.delete(name);
      this.#setReachable(name, true);
      return session;
    } catch (err) {
      if (this.#entries.get(name) === entry) this.#entries.delete(name);
      const previous = this.#failures.get(name);
      this.#failures.set(name, { count: (previous?.count ?? 0) + 1, error: err });
      this.#setReachable(name, false, describeError(err).message);
      throw err;
    }
  }

  #setReachable(name: string, reachable: boolean, error?: string): void {
    if (this.#reachable.get(name) === reachable && reachable) return;
    this.#reachable.set(name, reachable);
    this.#options.onReachability?.(name, reachable, error);
  }

  #drop(name: string, entry: Entry): void {
    if (this.#entries.get(name) === entry) this.#entries.delete(name); // never a newer session another op just opened
    // Not awaited here, but closeAll waits for it: a session closing in the background must not outlive the pool.
    const closing = entry.session.then((s) => s.close()).catch(() => {});
    this.#closing.add(closing);
    void closing.finally(() => this.#closing.delete(closing));
  }

  /**
   * An operation timed out or lost its session: the session is not trusted
   * again, and the failure counts against the target's budget for this pass,
   * so a target that accepts connections and then hangs can't hold queue slots
   * op after op.
   */
  markBroken(name: string, error: unknown): void {
    const entry = this.#entries.get(name);
    if (entry) this.#drop(name, entry);
    const previous = this.#failures.get(name);
    this.#failures.set(name, { count: (previous?.count ?? 0) + 1, error });
  }

  /** Closes sessions unused for `idleMs` (a BMC has few session slots; a host has MaxSessions). */
  async closeIdle(idleMs: number): Promise<void> {
    const now = Date.now();
    const idle = [...this.#entries].filter(([, e]) => now - e.lastUsed > idleMs);
    for (const [name] of idle) this.#entries.delete(name);
    await Promise.allSettled(idle.map(([, e]) => e.session.then((s) => s.close())));
  }

  async closeAll(): Promise<void> {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled([...all.map((e) => e.session.then((s) => s.close())), ...this.#closing]);
  }
}
