/**
 * Redfish message registry handling: `@Message.ExtendedInfo` text for errors, and
 * the classification of answers by HTTP status and MessageId (never by whether a
 * body is present: one vendor answers a successful PATCH with an error-shaped body).
 */
import type { PlumbError } from '../../src/errors.js';
import { AuthError, ProviderError, SpecError } from '../../src/errors.js';
import { redactText } from '../../src/secrets/redact.js';

export interface RedfishMessage {
  /** e.g. `Base.1.8.PropertyValueNotInList`. */
  id: string;
  message: string;
  severity?: string;
  related: string[];
  /** MessageArgs, when the message has them: all some BMCs (iLO) send besides the id. */
  args?: string[];
}

const MAX_MESSAGE_TEXT = 600;

/** Message ids (the last dotted part, registry and version stripped) that mean "your request is wrong". */
const SPEC_MESSAGES = new Set([
  'PropertyUnknown',
  'PropertyValueNotInList',
  'PropertyValueTypeError',
  'PropertyValueFormatError',
  'PropertyValueIncorrect',
  'PropertyValueOutOfRange',
  'PropertyValueError',
  'PropertyNotWritable',
  'PropertyMissing',
  'PropertyDuplicate',
  'ActionParameterMissing',
  'ActionParameterUnknown',
  'ActionParameterValueNotInList',
  'ActionParameterValueTypeError',
  'ActionParameterValueFormatError',
  'ActionParameterNotSupported',
  'ActionNotSupported',
  'MalformedJSON',
  'UnrecognizedRequestBody',
  'ResourceAlreadyExists',
  'CreateLimitReachedForResource',
  'PasswordChangeRequired',
  'AttributeUnknown',
  'AttributeValueNotInList',
  'AttributeReadOnly',
]);

/** Message ids a 2xx answer may carry that are not failures (success, or "applies at reset"). */
const BENIGN_MESSAGES = new Set([
  'Success',
  'Created',
  'NoOperation',
  'SystemResetRequired',
  'ResetRequired',
  'ResetRecommended',
  'AccountModified',
  'AccountRemoved',
  'AccountCreated',
  'TaskStarted',
  'TaskCompletedOK',
  'OperationApplyAfterReset',
  'ExtendedInfo',
]);

/** `Base.1.8.PropertyValueNotInList` -> `PropertyValueNotInList`. */
function messageKey(id: string): string {
  const parts = id.split('.');
  return parts[parts.length - 1] ?? id;
}

function asMessages(list: unknown): RedfishMessage[] {
  if (!Array.isArray(list)) return [];
  const out: RedfishMessage[] = [];
  for (const item of list) {
    if (item === null || typeof item !== 'object') continue;
    const m = item as Record<string, unknown>;
    const id = typeof m.MessageId === 'string' ? m.MessageId : '';
    const message = typeof m.Message === 'string' ? m.Message : '';
    if (id === '' && message === '') continue;
    const related = Array.isArray(m.RelatedProperties) ? m.RelatedProperties.filter((p): p is string => typeof p === 'string') : [];
    const args = Array.isArray(m.MessageArgs) ? m.MessageArgs.filter((a): a is string | number => typeof a === 'string' || typeof a === 'number').map(String) : [];
    const severity = typeof m.MessageSeverity === 'string' ? m.MessageSeverity : typeof m.Severity === 'string' ? m.Severity : undefined;
    out.push({ id, message, ...(severity !== undefined ? { severity } : {}), related, ...(args.length > 0 ? { args } : {}) });
  }
  return out;
}

/**
 * Every message a body carries: `error.@Message.ExtendedInfo`, a top-level
 * `@Message.ExtendedInfo` (success bodies), and `error.code`/`error.message` as a
 * last resort. Property annotations (`Prop@Message.ExtendedInfo`) are included.
 */
export function extractMessages(body: unknown): RedfishMessage[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return [];
  const b = body as Record<string, unknown>;
  const out: RedfishMessage[] = [];
  const error = b.error;
  if (error !== null && typeof error === 'object' && !Array.isArray(error)) {
    const e = error as Record<string, unknown>;
    const inner = asMessages(e['@Message.ExtendedInfo']);
    out.push(...inner);
    if (inner.length === 0 && (typeof e.code === 'string' || typeof e.message === 'string')) {
      out.push({ id: typeof e.code === 'string' ? e.code : '', message: typeof e.message === 'string' ? e.message : '', related: [] });
    }
  }
  for (const [key, value] of Object.entries(b)) {
    if (key === '@Message.ExtendedInfo' || key.endsWith('@Message.ExtendedInfo')) out.push(...asMessages(value));
  }
  return out;
}

/** One line for an error: the BMC's own words, scrubbed of any secret it might echo back. */
export function messagesText(messages: RedfishMessage[]): string {
  const parts = messages.map((m) => {
    // A message sent without its text (iLO) is its id and arguments.
    const text = m.message !== '' ? m.message : m.args !== undefined ? `${m.id} (${m.args.join(', ')})` : m.id;
    const related = m.related.length > 0 ? ` [${m.related.join(', ')}]` : '';
    return m.id !== '' && m.message !== '' ? `${text}${related} (${m.id})` : `${text}${related}`;
  });
  const joined = redactText(parts.join('; '));
  return joined.length > MAX_MESSAGE_TEXT ? `${joined.slice(0, MAX_MESSAGE_TEXT - 1)}…` : joined;
}

export interface SuccessVerdict {
  /** A message says the change is staged until a reset (iLO's SystemResetRequired). */
  resetRequired: boolean;
  /** Messages of a partially failed write (DSP0266: 200 with annotations for properties not applied). */
  failures: RedfishMessage[];
  messages: RedfishMessage[];
}

/**
 * A 2xx answer to a write: succeeded, unless its messages name properties that
 * were refused. An "error" object in the body is not a failure by itself (iLO
 * reports success as `{"error": {"@Message.ExtendedInfo": [{"MessageId": "iLO.2.14.SystemResetRequired"}]}}`).
 */
export function classifySuccess(body: unknown): SuccessVerdict {
  const messages = extractMessages(body);
  const failures = messages.filter((m) => {
    const key = messageKey(m.id);
    if (BENIGN_MESSAGES.has(key)) return false;
    return SPEC_MESSAGES.has(key) || (m.severity === 'Critical' && !BENIGN_MESSAGES.has(key));
  });
  const resetRequired = messages.some((m) => /Reset(Required|Recommended)$|ApplyAfterReset$/.test(messageKey(m.id)));
  return { resetRequired, failures, messages };
}

export interface ErrorContext {
  /** `redfish node1: PATCH /redfish/v1/Systems/1` */
  what: string;
  status: number;
  body: unknown;
  /** The answer's Retry-After, in ms (see retryAfterMs in http.ts). */
  retryAfterMs?: number;
}

/** Maps a non-2xx answer to the typed error the queue acts on. */
export function httpError(ctx: ErrorContext): PlumbError {
  const messages = extractMessages(ctx.body);
  const text = messagesText(messages);
  const detail = text !== '' ? `: ${text}` : '';
  const where = `${ctx.what} -> ${ctx.status}`;
  const keys = messages.map((m) => messageKey(m.id));
  if (ctx.status === 401) return new AuthError(`${where}: the BMC refused the credentials${detail}`);
  if (ctx.status === 403) return new AuthError(`${where}: the account lacks the privilege for this${detail}`);
  if (ctx.status === 400 || ctx.status === 405 || ctx.status === 501) {
    if (ctx.status === 400 && keys.some((k) => SPEC_MESSAGES.has(k))) return new SpecError(`${where}${detail}`);
    return new ProviderError(`${where}${detail || ': the BMC refused the request'}`);
  }
  if (ctx.status === 409) return new ProviderError(`${where}${detail || ': conflict'}`, { retryable: true });
  if (ctx.status === 429 || ctx.status === 500 || ctx.status === 502 || ctx.status === 503 || ctx.status === 504) {
    // RFC 9110: Retry-After on a 429 or 503 is how long the BMC wants to be left alone; the queue waits at least that.
    const asked = ctx.status === 429 || ctx.status === 503 ? ctx.retryAfterMs : undefined;
    const later = asked !== undefined ? ` (Retry-After ${Math.ceil(asked / 1000)} s)` : '';
    return new ProviderError(`${where}${detail || ': the BMC is busy or failing'}${later}`, { retryable: true, ...(asked !== undefined ? { retryAfterMs: asked } : {}) });
  }
  if (ctx.status >= 300 && ctx.status < 400) return new ProviderError(`${where}: redirects are not followed (check the address)`);
  return new ProviderError(`${where}${detail}`);
}
