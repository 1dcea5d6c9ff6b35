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

/** Waits for `promise` unless `signal` aborts first (the underlying work is left to finish on its own). */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal, what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
