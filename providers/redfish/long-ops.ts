/**
 * Long side effects (a reset, a power on or off, a media change, a firmware
 * update) are never started twice for one plan. Two memories say one is already
 * under way:
 * - within a process, an in-flight record per resource and spec (a deadline that
 *   passed mid-wait, then a retry by the queue, must wait, not reset again);
 * - across a crash, the progress journaled through OpContext.checkpoint before the
 *   side effect was issued, handed back as Resource.resume.
 * Both hold only what may really have happened: a request the BMC refused, or
 * that never left Plumb, is withdrawn from both.
 */
import { PlumbError, ProviderError, retryAfterOf } from '../../src/errors.js';
import { delay, type Json, type JsonObject, type OpContext, type Resource } from '../../src/provider.js';
import { isObject } from '../../src/util/object.js';
import { specHash } from '../canonical.js';
import { outcomeUnknownAfterSend } from './http.js';
import type { RedfishSession } from './session.js';

const inFlight = new Map<string, { specHash: string; progress: JsonObject }>();

/** Short stable hash of a JSON value (object keys sorted). */
export function hashOf(value: unknown): string {
  return specHash(value).slice(0, 32);
}

function key(s: RedfishSession, r: Resource): string {
  return `${s.targetName}\u0000${r.id}`;
}

/**
 * Progress of a long operation already started for exactly this spec: earlier in
 * this process (newest, so it wins), or before a crash (Resource.resume).
 */
export function recall(s: RedfishSession, r: Resource): JsonObject | undefined {
  const mine = inFlight.get(key(s, r));
  if (mine && mine.specHash === hashOf(r.spec)) return mine.progress;
  const resumed = r.resume?.progress;
  return isObject(resumed) ? resumed : undefined;
}

/** Journals progress BEFORE the side effect it describes is issued. */
export async function remember(s: RedfishSession, r: Resource, ctx: OpContext, progress: JsonObject): Promise<void> {
  await ctx.checkpoint?.(progress as Json);
  inFlight.set(key(s, r), { specHash: hashOf(r.spec), progress });
}

export function settle(s: RedfishSession, r: Resource): void {
  inFlight.delete(key(s, r));
}

/**
 * Journals `progress`, then sends the side effect. When the BMC clearly refused it
 * (any HTTP error status, a partial refusal in a 2xx, a refused log-in) or it
 * never left Plumb (no connection, a certificate refused in the handshake, an
 * abort before the first byte), it was not performed: the journal and the
 * in-process record go back to what they held before this step (nothing: null),
 * so a retry issues it again as new. Only an unknown outcome (sent, then a drop,
 * a timeout or a cancellation) stays journaled, and a retry waits for it.
 */
export async function issue<T>(s: RedfishSession, r: Resource, ctx: OpContext, progress: JsonObject, send: () => Promise<T>): Promise<T> {
  const previous = recall(s, r);
  await remember(s, r, ctx, progress);
  try {
    return await send();
  } catch (err) {
    if (!outcomeUnknownAfterSend(err)) {
      await ctx.checkpoint?.((previous ?? null) as Json);
      if (previous) inFlight.set(key(s, r), { specHash: hashOf(r.spec), progress: previous });
      else settle(s, r);
    }
    throw err;
  }
}

export type PollResult<T> = { done: true; value: T } | { done: false; delayMs?: number };

/** Transient errors in a row a wait rides out before it gives up (and the queue takes over). */
const POLL_TRANSIENT_LIMIT = 5;

/** The operation a poll belongs to: its signal and, when it has one, when its deadline passes. */
export type PollLimit = Pick<OpContext, 'signal' | 'deadlineAt'>;

/**
 * Polls `probe` with backoff (doubling from 250 ms up to the target's
 * pollInterval, or a task monitor's Retry-After within that cap) until it says
 * done or the operation's deadline (limit.signal) ends the wait with a
 * TimeoutError.
 *
 * A poll only observes an operation already under way, so a transient failure
 * (a 503, a dropped connection) is another "not yet", up to a few in a row:
 * failing the whole operation on one lost GET would only make the queue come
 * back and wait for the same reset again. This retries no side effect. A
 * refusal that carries a Retry-After is waited out in full, whatever the cap;
 * one that would outlast the deadline fails at once and leaves the wait to the
 * queue.
 */
export async function pollUntil<T>(s: RedfishSession, limit: PollLimit, what: string, probe: () => Promise<PollResult<T>>): Promise<T> {
  const { signal } = limit;
  let wait = Math.min(250, s.pollMaxMs);
  let transient = 0;
  for (;;) {
    let result: PollResult<T>;
    let asked: number | undefined;
    try {
      result = await probe();
      transient = 0;
    } catch (err) {
      if (signal.aborted || !(err instanceof PlumbError) || !err.retryable || ++transient >= POLL_TRANSIENT_LIMIT) throw err;
      asked = retryAfterOf(err);
      if (asked !== undefined && limit.deadlineAt !== undefined && Date.now() + asked > limit.deadlineAt) throw pastDeadline(err as ProviderError, asked, limit.deadlineAt);
      result = { done: false };
    }
    if (result.done) return result.value;
    const next = result.delayMs !== undefined ? Math.min(Math.max(result.delayMs, 10), s.pollMaxMs) : wait;
    await delay(Math.max(next, asked ?? 0), signal, what);
    wait = Math.min(wait * 2, s.pollMaxMs);
  }
}

/** A poll refused with a Retry-After that ends past the operation's deadline: failed now, retryable, with what the BMC asked. */
function pastDeadline(err: ProviderError, askedMs: number, deadlineAt: number): ProviderError {
  const left = Math.max(0, Math.ceil((deadlineAt - Date.now()) / 1000));
  return new ProviderError(`${err.message}; the target asked to wait ${Math.ceil(askedMs / 1000)} s before polling again, past this operation's deadline (${left} s left)`, {
    cause: err,
    retryable: true,
    retryAfterMs: askedMs,
  });
}
