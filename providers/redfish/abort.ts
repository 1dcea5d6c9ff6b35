/**
 * Abort handling for Redfish calls: an aborted signal becomes the typed error the
 * queue understands (TimeoutError for a deadline, CancelledError for a superseded
 * pass), and waits between polls end as soon as the signal aborts.
 */
import type { PlumbError } from '../../src/errors.js';
import { CancelledError, TimeoutError } from '../../src/errors.js';

/** True when an abort reason means "the deadline passed" rather than "the pass was superseded". */
export function isTimeoutReason(reason: unknown): boolean {
  if (reason instanceof TimeoutError) return true;
  return typeof reason === 'object' && reason !== null && (reason as { name?: unknown }).name === 'TimeoutError';
}

/** The typed error an aborted call rejects with: TimeoutError for deadlines, CancelledError otherwise. */
export function abortError(signal: AbortSignal, what: string): PlumbError {
  const reason: unknown = signal.reason;
  if (reason instanceof TimeoutError || reason instanceof CancelledError) return reason;
  if (isTimeoutReason(reason)) return new TimeoutError(`${what}: deadline passed, cancelled`, { cause: reason });
  return new CancelledError(`${what}: cancelled`, { cause: reason });
}

export function throwIfAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw abortError(signal, what);
}

/** Waits `ms`, or rejects with the signal's typed error as soon as it aborts. */
export function delay(ms: number, signal: AbortSignal, what: string): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal, what));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
