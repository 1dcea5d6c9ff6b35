/**
 * The error catalogue. Every error Plumb raises on purpose is a PlumbError with a
 * stable `code` (listed in docs/errors.md; a test keeps the two in step) and a
 * `retryable` flag that the run queue alone acts on.
 */
export abstract class PlumbError extends Error {
  abstract readonly code: string;
  /** Whether the run queue may try the same operation again after a backoff. */
  readonly retryable: boolean = false;
  /**
   * The request never left Plumb (the connection was already gone, the signal
   * had fired): nothing happened on the target, whatever the error says, so the
   * journal records the write as not sent rather than as an unknown outcome.
   */
  readonly notSent: boolean;

  constructor(message: string, options?: { cause?: unknown; notSent?: boolean }) {
    super(message, options);
    this.name = new.target.name;
    this.notSent = options?.notSent ?? false;
  }
}

/** The daemon configuration file or a command-line flag is wrong. */
export class ConfigError extends PlumbError {
  readonly code = 'PLUMB_CONFIG';
}

/** A command-line invocation that cannot be carried out as written. */
export class UsageError extends PlumbError {
  readonly code = 'PLUMB_USAGE';
}

/** git failed: fetch, rev-parse, ls-tree, cat-file or diff. A failed fetch is retried at the next poll. */
export class GitError extends PlumbError {
  readonly code = 'PLUMB_GIT';
  override readonly retryable = true;
}

/** A revision, branch or path asked for does not exist in the config repo. */
export class RevisionError extends PlumbError {
  readonly code = 'PLUMB_REVISION';
}

/** The state database cannot be opened, is locked by another writer, or is newer than this binary. */
export class StateError extends PlumbError {
  readonly code = 'PLUMB_STATE';
}

/** A secret reference (file:, env:) cannot be resolved. */
export class SecretError extends PlumbError {
  readonly code = 'PLUMB_SECRET';
}

/** The target could not be reached (refused, reset, DNS, connect timeout). */
export class UnreachableError extends PlumbError {
  readonly code = 'PLUMB_UNREACHABLE';
  override readonly retryable = true;
}

/** The target presented a host key or certificate that is not the pinned one. No credentials were sent. */
export class HostKeyError extends PlumbError {
  readonly code = 'PLUMB_HOST_KEY';
}

/** The target refused our credentials. */
export class AuthError extends PlumbError {
  readonly code = 'PLUMB_AUTH';
}

/** An operation ran past its deadline and was cancelled. */
export class TimeoutError extends PlumbError {
  readonly code = 'PLUMB_TIMEOUT';
  override readonly retryable = true;
}

/** The pass that started an operation was superseded (newer commit, shutdown) and the operation was cancelled. */
export class CancelledError extends PlumbError {
  readonly code = 'PLUMB_CANCELLED';
}

/**
 * A provider operation failed on the target. `retryable` says whether trying
 * again could help; `retryAfterMs`, how long the target asked to be left alone
 * first (HTTP `Retry-After` on a 429 or 503): every retry waits at least that.
 */
export class ProviderError extends PlumbError {
  readonly code = 'PLUMB_PROVIDER';
  override readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: { cause?: unknown; retryable?: boolean; notSent?: boolean; retryAfterMs?: number }) {
    super(message, options);
    this.retryable = options?.retryable ?? false;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** How long the target asked to be left alone before the next try (Retry-After), if it said. */
export function retryAfterOf(err: unknown): number | undefined {
  return err instanceof ProviderError ? err.retryAfterMs : undefined;
}

/** The session to a target broke mid-operation; a new session may succeed. */
export class SessionLostError extends PlumbError {
  readonly code = 'PLUMB_SESSION_LOST';
  override readonly retryable = true;
}

/** A resource's spec cannot be applied as written (bad path, unknown user, ...). Fix the config. */
export class SpecError extends PlumbError {
  readonly code = 'PLUMB_SPEC';
  /** The spec field (JSON pointer) at fault, when known: the loader reports the error there. */
  readonly pointer: string | undefined;

  constructor(message: string, options?: { cause?: unknown; pointer?: string; notSent?: boolean }) {
    super(message, options);
    this.pointer = options?.pointer;
  }
}

/** An imperative command (ssh.Command) exited non-zero. */
export class CommandFailedError extends PlumbError {
  readonly code = 'PLUMB_COMMAND_FAILED';
}

/** After apply, a re-read still differs from the desired state: the provider did something other than it planned. */
export class VerifyError extends PlumbError {
  readonly code = 'PLUMB_VERIFY';
}

/** A resource was not worked on because something it depends on is not converged. */
export class DependencyError extends PlumbError {
  readonly code = 'PLUMB_DEPENDENCY';
}

/** A journaled side effect has an unknown outcome (a crash, a connection lost after sending) and cannot be safely repeated without a guard or an operator's word. */
export class InterruptedError extends PlumbError {
  readonly code = 'PLUMB_INTERRUPTED';
}

/** Work stopped on purpose (a newer commit, shutdown), not a failure of the target. */
export function isCancellation(err: unknown): boolean {
  return err instanceof CancelledError || (err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR'));
}

/**
 * What a failed write did on the target, for the journal (DESIGN: not sent,
 * refused, unknown, done): `not-sent` when the request never left Plumb;
 * `unknown` when it was sent and no answer came (a deadline, a dropped session,
 * a cancellation mid-request); `refused` when the target answered with an error
 * (a command that exited non-zero included): nothing to resume, a retry is new.
 */
export type WriteOutcome = 'not-sent' | 'refused' | 'unknown';

export function writeOutcome(err: unknown): WriteOutcome {
  if (err instanceof PlumbError && err.notSent) return 'not-sent';
  return err instanceof TimeoutError || err instanceof SessionLostError || isCancellation(err) ? 'unknown' : 'refused';
}

/** Every code Plumb can report, for docs/errors.md and `--json` consumers. */
export const ERROR_CODES = [
  'PLUMB_CONFIG',
  'PLUMB_USAGE',
  'PLUMB_GIT',
  'PLUMB_REVISION',
  'PLUMB_STATE',
  'PLUMB_SECRET',
  'PLUMB_UNREACHABLE',
  'PLUMB_HOST_KEY',
  'PLUMB_AUTH',
  'PLUMB_TIMEOUT',
  'PLUMB_CANCELLED',
  'PLUMB_PROVIDER',
  'PLUMB_SESSION_LOST',
  'PLUMB_SPEC',
  'PLUMB_COMMAND_FAILED',
  'PLUMB_VERIFY',
  'PLUMB_DEPENDENCY',
  'PLUMB_INTERRUPTED',
  'PLUMB_INTERNAL',
] as const;


/** Anything thrown, as a code, a retryable flag and a one-line message. Unknown errors are not retried. */
export function describeError(err: unknown): { code: string; retryable: boolean; message: string } {
  if (err instanceof PlumbError) return { code: err.code, retryable: err.retryable, message: err.message };
  if (err instanceof Error) return { code: 'PLUMB_INTERNAL', retryable: false, message: err.message };
  return { code: 'PLUMB_INTERNAL', retryable: false, message: String(err) };
}
