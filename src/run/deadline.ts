import { TimeoutError } from '../errors.js';

export interface Deadline {
  /** Aborts when the deadline passes (reason: TimeoutError) or the parent aborts (its reason). */
  signal: AbortSignal;
  /** When it passes (epoch ms, Date.now()). */
  at: number;
  /** Runs work under the deadline: if it expired, whatever the work threw becomes the TimeoutError. */
  guard<T>(work: () => Promise<T>): Promise<T>;
  /** Clears the timer and the parent listener: call when the work is done. */
  dispose(): void;
}

/**
 * A per-operation deadline. Unlike AbortSignal.timeout, it lets go of its timer
 * and of everything the signal's listeners reference as soon as the operation
 * ends, instead of keeping them alive until the timeout would have fired (10,000
 * ops with a 2-minute timeout would otherwise pin 10,000 closures for 2 minutes).
 */
export function deadline(ms: number, parent: AbortSignal, what: string): Deadline {
  const controller = new AbortController();
  let expired = false;
  const message = `${what}: no answer within ${ms} ms`;
  const at = Date.now() + ms;
  const onParent = (): void => controller.abort(parent.reason);
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new TimeoutError(message));
  }, ms);
  timer.unref();
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    at,
    async guard(work) {
      try {
        return await work();
      } catch (err) {
        if (expired && !(err instanceof TimeoutError)) throw new TimeoutError(message, { cause: err });
        throw err;
      }
    },
    dispose() {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    },
  };
}
