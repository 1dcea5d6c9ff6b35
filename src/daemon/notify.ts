import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { describeError } from '../errors.js';
import { delay, type Log, type Secrets } from '../provider.js';
import { redactText } from '../secrets/redact.js';
import { signBody } from '../source/webhook.js';
import type { NotifySinkConfig } from './config.js';
import type { PassReport } from './engine.js';

/** A commit's outcome as CI sees it. */
export type CommitState = 'success' | 'failure';

/** What is sent for one commit: the JSON body of the generic webhook, and the basis of every commit status. */
export interface CommitOutcome {
  commit: string;
  state: CommitState;
  converged: boolean;
  failed: Array<{ id: string; code: string }>;
  rejected: { file: string; line: number; col: number; message: string } | null;
  /** One line, at most 140 characters (GitHub's limit). */
  description: string;
}

export interface NotifierOptions {
  sinks: NotifySinkConfig[];
  /** Resolves token and secret references at send time; nothing is cached. */
  secrets: Secrets;
  log: Log;
  /** Per request, connect to last byte (default 10 s). */
  timeoutMs?: number;
  /** Tries after the first, for timeouts, connection errors, 408, 429 and 5xx (default 2). */
  retries?: number;
  /** First wait between tries, doubling (default 1 s). */
  backoffMs?: number;
  /** Notifications waiting per sink; past it the oldest is dropped (default 100). */
  queueSize?: number;
  now?: () => number;
}

const MAX_DESCRIPTION = 140;
const MAX_RESPONSE_BYTES = 4096;
const MAX_FAILED_LISTED = 100;
const REMEMBERED_COMMITS = 1000;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

class SendError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

interface SinkState {
  config: NotifySinkConfig;
  /** The last state sent (or being sent) per commit; the oldest are forgotten first, a failed one at once. */
  states: Map<string, CommitState>;
  queue: CommitOutcome[];
  running: boolean;
  dispatcher: Dispatcher | undefined;
}

/**
 * Reports each commit's outcome to CI: a commit status on GitHub, GitLab or
 * Gitea, or a signed JSON webhook. Sent once per change of state of a commit
 * (converged: success; rejected or resources failed: failure; later converged:
 * success), never every pass. Never blocks the daemon loop: `onPass` only
 * queues; each sink drains its own bounded queue in order, so one dead server
 * delays nobody else.
 */
export class Notifier {
  readonly #sinks: SinkState[];
  readonly #secrets: Secrets;
  readonly #log: Log;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #queueSize: number;
  readonly #now: () => number;
  readonly #closing = new AbortController();
  #pending = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(options: NotifierOptions) {
    this.#sinks = options.sinks.map((config) => ({ config, states: new Map(), queue: [], running: false, dispatcher: undefined }));
    this.#secrets = options.secrets;
    this.#log = options.log;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retries = options.retries ?? 2;
    this.#backoffMs = options.backoffMs ?? 1_000;
    this.#queueSize = options.queueSize ?? 100;
    this.#now = options.now ?? Date.now;
  }

  /** Feed every finished pass (daemon.onPass). Returns at once; sending happens in the background. */
  onPass(report: PassReport): void {
    if (this.#sinks.length === 0 || this.#closing.signal.aborted) return;
    for (const outcome of outcomesOf(report)) {
      const due = this.#sinks.filter((sink) => sink.states.get(outcome.commit) !== outcome.state);
      if (due.length === 0) continue;
      this.#log.info({ commit: outcome.commit, state: outcome.state, description: outcome.description }, 'notifying commit state');
      for (const sink of due) {
        sink.states.delete(outcome.commit);
        sink.states.set(outcome.commit, outcome.state);
        if (sink.states.size > REMEMBERED_COMMITS) sink.states.delete(sink.states.keys().next().value!);
        this.#enqueue(sink, outcome);
      }
    }
  }

  /** Resolves when every queue is empty and nothing is in flight (tests; shutdown). */
  idle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Lets queued notifications go out for up to `drainMs` (default 5 s), then aborts the rest and closes connections. */
  async close(drainMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))]);
    clearTimeout(timer);
    this.#closing.abort();
    for (const sink of this.#sinks) sink.queue.length = 0;
    await Promise.all(this.#sinks.map((s) => s.dispatcher?.close().catch(() => {})));
  }

  #enqueue(sink: SinkState, outcome: CommitOutcome): void {
    if (sink.queue.length >= this.#queueSize) {
      const dropped = sink.queue.shift()!;
      this.#settle();
      this.#log.warn({ sink: sinkName(sink.config), commit: dropped.commit, state: dropped.state, queue: this.#queueSize }, 'notification queue full: dropped the oldest');
    }
    sink.queue.push(outcome);
    this.#pending++;
    if (!sink.running) void this.#drain(sink);
  }

  async #drain(sink: SinkState): Promise<void> {
    sink.running = true;
    try {
      while (sink.queue.length > 0 && !this.#closing.signal.aborted) {
        const outcome = sink.queue.shift()!;
        try {
          await this.#deliver(sink, outcome);
        } finally {
          this.#settle();
        }
      }
    } finally {
      sink.running = false;
    }
  }

  #settle(): void {
    this.#pending = Math.max(0, this.#pending - 1);
    if (this.#pending === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /**
   * Tries, with backoff on what may pass. A final failure is logged with a code
   * (never a token) and the sink forgets it sent this state, so the next pass
   * (a poll, a sweep) sends it again.
   */
  async #deliver(sink: SinkState, outcome: CommitOutcome): Promise<void> {
    const delivery = randomUUID(); // the same on every try, so a receiver can drop repeats
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#send(sink, outcome, delivery);
        this.#log.debug({ sink: sinkName(sink.config), commit: outcome.commit, state: outcome.state, attempt }, 'notification sent');
        return;
      } catch (err) {
        const e = err instanceof SendError ? err : new SendError(describeError(err).message, describeError(err).code, false);
        const last = !e.retryable || attempt > this.#retries || this.#closing.signal.aborted;
        const fields = { sink: sinkName(sink.config), commit: outcome.commit, state: outcome.state, attempt, code: e.code, ...(e.httpStatus !== undefined ? { httpStatus: e.httpStatus } : {}), error: redactText(e.message) };
        if (last) {
          this.#log.warn(fields, 'notification failed; the next pass tries again');
          if (sink.states.get(outcome.commit) === outcome.state) sink.states.delete(outcome.commit);
          return;
        }
        this.#log.debug(fields, 'notification failed; trying again');
        await delay(this.#backoffMs * 2 ** (attempt - 1), this.#closing.signal, 'notification backoff').catch(() => {}); // closing: the loop sees it
      }
    }
  }

  async #send(sink: SinkState, outcome: CommitOutcome, delivery: string): Promise<void> {
    const c = sink.config;
    if (!SHA.test(outcome.commit)) throw new SendError('not a commit id', 'PLUMB_INTERNAL', false);
    let url: string;
    let headers: Record<string, string>;
    let body: string;
    if (c.type === 'webhook') {
      const secret = await this.#secret(c.secret);
      body = JSON.stringify({ commit: outcome.commit, state: outcome.state, converged: outcome.converged, failed: outcome.failed, rejected: outcome.rejected, at: new Date(this.#now()).toISOString() });
      url = c.url;
      headers = { 'x-plumb-signature': `sha256=${signBody(secret.reveal(), body)}`, 'x-plumb-delivery': delivery };
    } else {
      const token = (await this.#secret(c.token)).revealString().trim();
      const repo = c.repo.split('/').map(encodeURIComponent).join('/');
      if (c.type === 'github') {
        url = `${c.api}/repos/${repo}/statuses/${outcome.commit}`;
        headers = { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' };
        body = JSON.stringify({ state: outcome.state, context: c.context, description: outcome.description });
      } else if (c.type === 'gitea') {
        url = `${c.api}/repos/${repo}/statuses/${outcome.commit}`;
        headers = { authorization: `token ${token}` };
        body = JSON.stringify({ state: outcome.state, context: c.context, description: outcome.description });
      } else {
        url = `${c.api}/projects/${encodeURIComponent(c.repo)}/statuses/${outcome.commit}`;
        headers = { 'private-token': token };
        body = JSON.stringify({ state: outcome.state === 'success' ? 'success' : 'failed', name: c.context, description: outcome.description });
      }
    }
    const signal = AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#closing.signal]);
    let status: number;
    try {
      // undici's request() never follows redirects (that takes the redirect interceptor): a 3xx is an answer, not a hop.
      const res = await request(url, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'user-agent': 'plumb' },
        body,
        signal,
        dispatcher: this.#dispatcher(sink),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      status = res.statusCode;
      await discardBounded(res.body);
    } catch (err) {
      if (signal.aborted) throw new SendError(`no answer within ${this.#timeoutMs} ms`, 'PLUMB_TIMEOUT', true);
      const code = (err as { code?: string }).code;
      throw new SendError(`${code ?? 'error'}: ${describeError(err).message}`, 'PLUMB_UNREACHABLE', true);
    }
    if (status >= 200 && status < 300) return;
    if (status === 401 || status === 403) throw new SendError(`the server refused the credentials (HTTP ${status})`, 'PLUMB_AUTH', false, status);
    const retryable = status === 408 || status === 429 || status >= 500;
    throw new SendError(`HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`, 'PLUMB_PROVIDER', retryable, status);
  }

  async #secret(ref: string): Promise<{ reveal(): Buffer; revealString(): string }> {
    try {
      return await this.#secrets.resolve(ref);
    } catch (err) {
      throw new SendError(describeError(err).message, describeError(err).code, false);
    }
  }

  #dispatcher(sink: SinkState): Dispatcher {
    if (!sink.dispatcher) {
      const ca = sink.config.caFile ? readFileSync(sink.config.caFile) : undefined;
      sink.dispatcher = new Agent({ connect: { timeout: this.#timeoutMs, ...(ca ? { ca } : {}) }, connections: 2 });
    }
    return sink.dispatcher;
  }
}

/** What a pass says about each commit it touched: its rejected commit (if any) and the commit it converged toward. */
function outcomesOf(report: PassReport): CommitOutcome[] {
  const out: CommitOutcome[] = [];
  if (report.rejected) {
    const first = report.rejected.diagnostics.find((d) => d.severity === 'error') ?? report.rejected.diagnostics[0];
    const rejected = first ? { file: first.file, line: first.line, col: first.col, message: first.message } : null;
    out.push({
      commit: report.rejected.commit,
      state: 'failure',
      converged: false,
      failed: [],
      rejected,
      description: clip(rejected ? `rejected: ${rejected.file}:${rejected.line}:${rejected.col}: ${rejected.message}` : 'rejected'),
    });
  }
  if (report.commit !== null && report.commit !== report.rejected?.commit) {
    if (report.converged) {
      out.push({ commit: report.commit, state: 'success', converged: true, failed: [], rejected: null, description: 'converged' });
    } else {
      const failed = (report.run?.results ?? []).filter((r) => r.status === 'failed' || r.status === 'blocked');
      if (failed.length > 0) {
        const first = failed.find((r) => r.status === 'failed') ?? failed[0]!;
        out.push({
          commit: report.commit,
          state: 'failure',
          converged: false,
          failed: failed.slice(0, MAX_FAILED_LISTED).map((r) => ({ id: r.id, code: r.error?.code ?? 'PLUMB_INTERNAL' })),
          rejected: null,
          description: clip(`${failed.length} failed: ${first.id}: ${first.error?.code ?? first.status}`),
        });
      }
    }
  }
  return out;
}

function clip(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= MAX_DESCRIPTION ? line : `${line.slice(0, MAX_DESCRIPTION - 1)}…`;
}

/** Where a notification goes, for logs: never a token, never a URL path (webhook URLs often carry secrets in theirs). */
function sinkName(c: NotifySinkConfig): string {
  if (c.type === 'webhook') {
    try {
      return `webhook ${new URL(c.url).host}`;
    } catch {
      return 'webhook';
    }
  }
  return `${c.type} ${c.repo}`;
}

async function discardBounded(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<void> {
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy();
      return;
    }
  }
}
