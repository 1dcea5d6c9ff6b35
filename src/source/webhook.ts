import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signature checks, pure: headers, the raw body and the secret in, a
 * verdict out. Nothing here parses the body. A webhook only tells Plumb "fetch
 * now" (invariant 8), so its payload (repository, ref, SHA) is never read, let
 * alone trusted: the fetch goes to the configured remote and branch whatever
 * the payload says.
 */

export type WebhookProvider = 'github' | 'gitlab' | 'gitea' | 'forgejo' | 'bitbucket' | 'generic';

/** Request headers with lower-case names, as node:http gives them. */
export type WebhookHeaders = Record<string, string | string[] | undefined>;

export type WebhookVerdict =
  | { ok: true; provider: WebhookProvider; deliveryId?: string }
  | { ok: false; status: 401 | 400; provider: WebhookProvider; reason: string };

/** Longest delivery id kept for de-duplication (GitHub's are 36-character GUIDs). */
export const MAX_DELIVERY_ID = 200;

const HEX_SHA256 = 64;
const SHA256_PREFIX = 'sha256=';

interface Scheme {
  provider: WebhookProvider;
  /** A header only this sender sets: how it is recognised. */
  event: string | undefined;
  /** Where the signature is, and whether it carries a `sha256=` prefix. */
  signature: string;
  prefixed: boolean;
  /** Delivery id headers, first found wins. */
  delivery: string[];
}

// Order matters: Forgejo also sends the Gitea headers, and both also send X-GitHub-Event for compatibility.
const SCHEMES: Scheme[] = [
  { provider: 'forgejo', event: 'x-forgejo-event', signature: 'x-forgejo-signature', prefixed: false, delivery: ['x-forgejo-delivery'] },
  { provider: 'gitea', event: 'x-gitea-event', signature: 'x-gitea-signature', prefixed: false, delivery: ['x-gitea-delivery'] },
  { provider: 'github', event: 'x-github-event', signature: 'x-hub-signature-256', prefixed: true, delivery: ['x-github-delivery'] },
  // Bitbucket Cloud's X-Hook-UUID names the webhook, not the delivery: it is the same on every request, so it is no delivery id.
  { provider: 'bitbucket', event: 'x-event-key', signature: 'x-hub-signature', prefixed: true, delivery: ['x-request-uuid', 'x-request-id'] },
  { provider: 'generic', event: undefined, signature: 'x-plumb-signature', prefixed: true, delivery: ['x-plumb-delivery'] },
];

function header(headers: WebhookHeaders, name: string): string | undefined {
  const value = headers[name];
  // A repeated header is ambiguous: treat it as absent rather than pick one.
  return typeof value === 'string' ? value : undefined;
}

/** HMAC-SHA256 of the raw body, hex (what GitHub, Gitea, Forgejo, Bitbucket and Plumb's own notifications send). */
export function signBody(secret: Buffer, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * Verifies a webhook over its raw body before anything reads it. The sender is
 * recognised by its event header (GitLab by X-Gitlab-Event; a request naming no
 * known sender is checked as Plumb's generic X-Plumb-Signature). Comparisons
 * are constant time; a signature of the wrong length is just invalid.
 */
export function verifyWebhook(headers: WebhookHeaders, rawBody: Buffer, secret: Buffer): WebhookVerdict {
  if (header(headers, 'x-gitlab-event') !== undefined) return verifyGitlab(headers, secret);
  const scheme = SCHEMES.find((s) => s.event === undefined || header(headers, s.event) !== undefined)!;
  const fail = (status: 401 | 400, reason: string): WebhookVerdict => ({ ok: false, status, provider: scheme.provider, reason });
  if (secret.length === 0) return fail(401, 'no webhook secret is configured');
  const given = header(headers, scheme.signature);
  if (given === undefined) return fail(401, `missing ${scheme.signature}`);
  const form = ` (expected ${scheme.prefixed ? SHA256_PREFIX : ''}<${HEX_SHA256} hex digits>)`;
  let digits = given.trim();
  // The prefix is exactly `sha256=`, as GitHub sends it: only the hex digits may be in either case.
  if (scheme.prefixed) {
    if (!digits.startsWith(SHA256_PREFIX)) return fail(401, `invalid ${scheme.signature}${form}`);
    digits = digits.slice(SHA256_PREFIX.length);
  }
  const expected = Buffer.from(signBody(secret, rawBody), 'latin1');
  // The expected form is public (a prefix and 64 hex digits): checking it first leaks nothing of the secret.
  const received = Buffer.from(digits.toLowerCase(), 'latin1');
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
    return fail(401, `invalid ${scheme.signature}${received.length === expected.length ? '' : form}`);
  }
  return withDelivery(scheme.provider, headers, scheme.delivery);
}

/** GitLab sends the secret itself. Both sides are HMAC-ed first, so the comparison takes the same time whatever the length. */
function verifyGitlab(headers: WebhookHeaders, secret: Buffer): WebhookVerdict {
  const fail = (reason: string): WebhookVerdict => ({ ok: false, status: 401, provider: 'gitlab', reason });
  if (secret.length === 0) return fail('no webhook secret is configured');
  const given = header(headers, 'x-gitlab-token');
  if (given === undefined) return fail('missing x-gitlab-token');
  const a = createHmac('sha256', secret).update(Buffer.from(given, 'latin1')).digest();
  const b = createHmac('sha256', secret).update(secret).digest();
  if (!timingSafeEqual(a, b)) return fail('invalid x-gitlab-token');
  return withDelivery('gitlab', headers, ['x-gitlab-event-uuid']);
}

function withDelivery(provider: WebhookProvider, headers: WebhookHeaders, names: string[]): WebhookVerdict {
  for (const name of names) {
    const id = header(headers, name)?.trim();
    if (id === undefined || id === '') continue;
    // Authentic but unusable as a cache key: refused rather than truncated (two ids must never collide).
    if (id.length > MAX_DELIVERY_ID || !/^[\x21-\x7e]+$/.test(id)) return { ok: false, status: 400, provider, reason: `${name} is not a printable id of at most ${MAX_DELIVERY_ID} characters` };
    return { ok: true, provider, deliveryId: id };
  }
  return { ok: true, provider };
}
