import { createHmac } from 'node:crypto';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { PassReport } from '../../src/daemon/engine.js';
import { Coalescer, HttpServer, type WebhookOutcome } from '../../src/daemon/http.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { verifyWebhook } from '../../src/source/webhook.js';
import { captureLog, rawExchange, SENDERS, type Sender } from './webhook-helpers.js';

const SECRET = 'hook-secret-3f9c2a71';
const MAX_BODY = 4096;
const PUSH = JSON.stringify({ ref: 'refs/heads/main', after: 'a'.repeat(40), repository: { full_name: 'acme/config' } });

interface Harness {
  server: HttpServer;
  port: number;
  trigger: ReturnType<typeof vi.fn<() => void>>;
  log: ReturnType<typeof captureLog>;
  counted: Array<[string, WebhookOutcome]>;
}

async function start(options: { maxFailuresPerMinute?: number; minFetchIntervalMs?: number } = {}): Promise<Harness> {
  const trigger = vi.fn<() => void>();
  const log = captureLog();
  const counted: Array<[string, WebhookOutcome]> = [];
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    log,
    metrics: { render: async () => 'plumb_up 1\n', contentType: 'text/plain; version=0.0.4; charset=utf-8', onWebhook: (provider, outcome) => counted.push([provider, outcome]) },
    webhook: {
      path: '/hooks/git',
      secret: 'env:PLUMB_HOOK_SECRET',
      secrets: new SecretResolver({ env: { PLUMB_HOOK_SECRET: SECRET } }),
      maxBodyBytes: MAX_BODY,
      minFetchIntervalMs: options.minFetchIntervalMs ?? 0,
      dedupeWindowMs: 60_000,
      maxFailuresPerMinute: options.maxFailuresPerMinute ?? 1_000,
      trigger,
    },
  });
  const { port } = await server.listen();
  return { server, port, trigger, log, counted };
}

let deliveries = 0;
const nextDelivery = (): string => `d-${process.pid}-${++deliveries}`;

async function post(port: number, headers: Record<string, string>, body: string, path = '/hooks/git'): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The signature header's value with its length changed but its form kept. */
function wrongLength(sender: Sender, value: string): string[] {
  return sender.name === 'gitlab' ? [value.slice(0, -1), `${value}x`, ''] : [value.slice(0, -2), `${value}00`, value.replace(/[0-9a-f]{64}$/, 'ab')];
}

describe('webhook receiver: the signature matrix', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await start();
  });
  afterEach(async () => {
    await h.server.close();
  });

  describe.each(SENDERS)('$name', (sender) => {
    test('a valid delivery is accepted (202) and triggers exactly one fetch, with no arguments', async () => {
      const res = await post(h.port, sender.headers(PUSH, SECRET, nextDelivery()), PUSH);
      expect(res.status).toBe(202);
      expect(res.json).toEqual({ accepted: true });
      expect(h.trigger).toHaveBeenCalledTimes(1);
      expect(h.trigger.mock.calls[0]).toEqual([]);
      expect(h.counted).toEqual([[sender.name, 'accepted']]);
    });

    test('a missing signature is 401 and triggers nothing', async () => {
      const headers = sender.headers(PUSH, SECRET, nextDelivery());
      delete headers[sender.signatureHeader];
      const res = await post(h.port, headers, PUSH);
      expect(res.status).toBe(401);
      expect(res.json).toEqual({ error: 'unauthorized' }); // details only in the log
      expect(h.log.lines.some((l) => l.includes('missing'))).toBe(true);
      expect(h.trigger).not.toHaveBeenCalled();
    });

    test('a wrong signature (another secret) is 401', async () => {
      const res = await post(h.port, sender.headers(PUSH, 'not-the-secret-at-all', nextDelivery()), PUSH);
      expect(res.status).toBe(401);
      expect(h.trigger).not.toHaveBeenCalled();
    });

    test('a signature of the wrong length is 401, and the server carries on', async () => {
      const headers = sender.headers(PUSH, SECRET, nextDelivery());
      for (const value of wrongLength(sender, headers[sender.signatureHeader]!)) {
        const res = await post(h.port, { ...headers, [sender.signatureHeader]: value }, PUSH);
        expect(res.status, JSON.stringify(value)).toBe(401);
      }
      expect(h.trigger).not.toHaveBeenCalled();
      expect((await request(`http://127.0.0.1:${h.port}/healthz`)).statusCode).toBe(200);
    });

    test(sender.coversBody ? 'a valid signature over a different body is 401' : 'its token covers no body: the right token with any body is accepted, and still only triggers a fetch', async () => {
      const headers = sender.headers(PUSH, SECRET, nextDelivery());
      const res = await post(h.port, headers, PUSH.replace('acme/config', 'acme/confih'));
      expect(res.status).toBe(sender.coversBody ? 401 : 202);
      expect(h.trigger).toHaveBeenCalledTimes(sender.coversBody ? 0 : 1);
    });

    test('a replayed delivery id is answered 200 duplicate and triggers nothing more', async () => {
      const headers = sender.headers(PUSH, SECRET, nextDelivery());
      expect((await post(h.port, headers, PUSH)).status).toBe(202);
      const again = await post(h.port, headers, PUSH);
      expect(again.status).toBe(200);
      expect(again.json).toEqual({ duplicate: true });
      expect(h.trigger).toHaveBeenCalledTimes(1);
      expect(h.counted.map(([, o]) => o)).toEqual(['accepted', 'duplicate']);
    });

    test('a payload naming another repository, branch and SHA still only triggers a fetch, and none of it is used or logged', async () => {
      const evil = JSON.stringify({ ref: 'refs/heads/evil-branch', after: 'e'.repeat(40), repository: { full_name: 'mallory/other-repo', clone_url: 'https://evil.invalid/x.git' } });
      const res = await post(h.port, sender.headers(evil, SECRET, nextDelivery()), evil);
      expect(res.status).toBe(202);
      expect(h.trigger).toHaveBeenCalledTimes(1);
      expect(h.trigger.mock.calls[0]).toEqual([]);
      for (const word of ['evil-branch', 'e'.repeat(40), 'mallory', 'evil.invalid']) expect(h.log.lines.join('\n')).not.toContain(word);
    });

    test('an oversized Content-Length is answered 413 before any body byte is sent', async () => {
      const headers = sender.headers(PUSH, SECRET, nextDelivery());
      const head = [`POST /hooks/git HTTP/1.1`, `Host: 127.0.0.1`, `Content-Type: application/json`, `Content-Length: ${MAX_BODY * 1000}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
      const started = Date.now();
      // Headers only; the body is never sent. A server waiting for it would hold the socket until untilMs.
      const { text } = await rawExchange(h.port, [head], { untilMs: 3_000 });
      expect(text).toMatch(/^HTTP\/1\.1 413 /);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(h.trigger).not.toHaveBeenCalled();
      expect(h.counted).toEqual([['unknown', 'too_large']]);
    });

    test('an oversized chunked body is cut off at the cap with 413', async () => {
      const headers = sender.headers(PUSH, SECRET, nextDelivery());
      const head = [`POST /hooks/git HTTP/1.1`, `Host: 127.0.0.1`, `Content-Type: application/json`, `Transfer-Encoding: chunked`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
      const chunk = `400\r\n${'x'.repeat(0x400)}\r\n`;
      // Six 1 KiB chunks (over the 4 KiB cap) and never the terminating chunk.
      const { text } = await rawExchange(h.port, [head, ...Array.from({ length: 6 }, () => chunk)], { untilMs: 3_000, gapMs: 5 });
      expect(text).toMatch(/^HTTP\/1\.1 413 /);
      expect(h.trigger).not.toHaveBeenCalled();
    });
  });

  test('Expect: 100-continue with an oversized length gets 413 and no invitation to send', async () => {
    const head = ['POST /hooks/git HTTP/1.1', 'Host: 127.0.0.1', `Content-Length: ${MAX_BODY + 1}`, 'Expect: 100-continue', '', ''].join('\r\n');
    const { text } = await rawExchange(h.port, [head]);
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).not.toContain('100 Continue');
  });

  test('Expect: 100-continue within the cap is invited, then verified', async () => {
    const headers = SENDERS.find((s) => s.name === 'generic')!.headers(PUSH, SECRET, nextDelivery());
    const head = ['POST /hooks/git HTTP/1.1', 'Host: 127.0.0.1', `Content-Length: ${Buffer.byteLength(PUSH)}`, 'Expect: 100-continue', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    const { text } = await rawExchange(h.port, [head, PUSH], { gapMs: 50 });
    expect(text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 202 /);
    expect(h.trigger).toHaveBeenCalledTimes(1);
  });

  test('Bitbucket: deliveries of the same webhook (same X-Hook-UUID) are not mistaken for replays', async () => {
    const bitbucket = SENDERS.find((s) => s.name === 'bitbucket')!;
    expect((await post(h.port, bitbucket.headers(PUSH, SECRET, nextDelivery()), PUSH)).status).toBe(202);
    expect((await post(h.port, bitbucket.headers(PUSH, SECRET, nextDelivery()), PUSH)).status).toBe(202);
    expect(h.trigger).toHaveBeenCalledTimes(2);
  });

  test('X-Plumb-Signature: SHA256=<hex> (the prefix upper-cased) is 401, as documented', async () => {
    const headers = SENDERS.find((s) => s.name === 'generic')!.headers(PUSH, SECRET, nextDelivery());
    const res = await post(h.port, { ...headers, 'x-plumb-signature': headers['x-plumb-signature']!.replace('sha256=', 'SHA256=') }, PUSH);
    expect(res.status).toBe(401);
    expect(h.trigger).not.toHaveBeenCalled();
    expect((await post(h.port, headers, PUSH)).status).toBe(202);
  });

  test('a request naming no known sender and carrying no signature is 401', async () => {
    const res = await post(h.port, {}, PUSH);
    expect(res.status).toBe(401);
    expect(h.trigger).not.toHaveBeenCalled();
  });

  test('GET on the hook path is 405 (Allow: POST); an unknown path is 404; probes answer', async () => {
    const get = await request(`http://127.0.0.1:${h.port}/hooks/git`);
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
    await get.body.dump();
    const unknown = await request(`http://127.0.0.1:${h.port}/hooks/other`, { method: 'POST', body: '{}' });
    expect(unknown.statusCode).toBe(404);
    await unknown.body.dump();
    const health = await request(`http://127.0.0.1:${h.port}/healthz`);
    expect(health.statusCode).toBe(200);
    expect(await health.body.json()).toEqual({ ok: true });
    const metrics = await request(`http://127.0.0.1:${h.port}/metrics`);
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(await metrics.body.text()).toBe('plumb_up 1\n');
    expect(h.trigger).not.toHaveBeenCalled();
  });

  test('/readyz: 503 until the first pass finished, 200 while fetches work, 503 after a failed fetch', async () => {
    const readyz = async (): Promise<[number, unknown]> => {
      const res = await request(`http://127.0.0.1:${h.port}/readyz`);
      return [res.statusCode, await res.body.json()];
    };
    expect(await readyz()).toEqual([503, { ready: false, reason: 'the first pass has not finished' }]);
    const report: PassReport = { commit: 'a'.repeat(40), fetched: 'a'.repeat(40), converged: true, timings: { fetchMs: 1, loadMs: 1, planMs: 1, runMs: 1 }, filesRead: 0 };
    h.server.onPass(report);
    expect(await readyz()).toEqual([200, { ready: true }]);
    h.server.onPass({ ...report, fetched: null, fetchError: 'fatal: could not read from https://git.internal.example/secret-path' });
    const [status, body] = await readyz();
    expect(status).toBe(503);
    expect(JSON.stringify(body)).not.toContain('git.internal.example'); // unauthenticated endpoint: no details
    h.server.onPass(report);
    expect((await readyz())[0]).toBe(200);
  });
});

describe('webhook receiver: brute-force guard', () => {
  test('failures past the per-minute limit get 429 (Retry-After), while a valid delivery from the same address still passes', async () => {
    const h = await start({ maxFailuresPerMinute: 3 });
    try {
      const github = SENDERS.find((s) => s.name === 'github')!;
      const bad = (): Record<string, string> => github.headers(PUSH, `guess-${deliveries}`, nextDelivery());
      for (let i = 0; i < 3; i++) expect((await post(h.port, bad(), PUSH)).status).toBe(401);
      const limited = await request(`http://127.0.0.1:${h.port}/hooks/git`, { method: 'POST', headers: bad(), body: PUSH });
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      await limited.body.dump();
      expect((await post(h.port, bad(), PUSH)).status).toBe(429);
      const valid = await post(h.port, github.headers(PUSH, SECRET, nextDelivery()), PUSH);
      expect(valid.status).toBe(202);
      expect(h.trigger).toHaveBeenCalledTimes(1);
      expect(h.counted.map(([, o]) => o)).toEqual(['unauthorized', 'unauthorized', 'unauthorized', 'rate_limited', 'rate_limited', 'accepted']);
      // The log says so once, not once per failure.
      expect(h.log.lines.filter((l) => l.includes('over the limit'))).toHaveLength(1);
    } finally {
      await h.server.close();
    }
  });
});

describe('webhook receiver: coalescing', () => {
  test('a burst inside the interval fires once at once and once at the interval end, never more', async () => {
    const h = await start({ minFetchIntervalMs: 300 });
    try {
      const generic = SENDERS.find((s) => s.name === 'generic')!;
      const statuses = await Promise.all(Array.from({ length: 20 }, () => post(h.port, generic.headers(PUSH, SECRET, nextDelivery()), PUSH).then((r) => r.status)));
      expect(statuses.every((s) => s === 202)).toBe(true);
      expect(h.trigger).toHaveBeenCalledTimes(1); // leading edge
      await new Promise((r) => setTimeout(r, 450));
      expect(h.trigger).toHaveBeenCalledTimes(2); // trailing edge: the later webhooks are not lost
      await new Promise((r) => setTimeout(r, 400));
      expect(h.trigger).toHaveBeenCalledTimes(2); // nothing pending, nothing more
    } finally {
      await h.server.close();
    }
  });

  test('Coalescer: leading edge, one trailing fire, then quiet', () => {
    vi.useFakeTimers();
    try {
      const fire = vi.fn();
      const c = new Coalescer(fire, 1_000, () => Date.now());
      for (let i = 0; i < 10; i++) c.poke();
      expect(fire).toHaveBeenCalledTimes(1);
      vi.advanceTimersByTime(500);
      c.poke();
      expect(fire).toHaveBeenCalledTimes(1);
      vi.advanceTimersByTime(499);
      expect(fire).toHaveBeenCalledTimes(1);
      vi.advanceTimersByTime(1);
      expect(fire).toHaveBeenCalledTimes(2);
      vi.advanceTimersByTime(5_000);
      expect(fire).toHaveBeenCalledTimes(2);
      c.poke(); // long after: leading edge again
      expect(fire).toHaveBeenCalledTimes(3);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('verifyWebhook (pure)', () => {
  const secret = Buffer.from(SECRET);
  const body = Buffer.from(PUSH);
  const sig = createHmac('sha256', SECRET).update(body).digest('hex');

  test('upper-case hex is the same signature', () => {
    expect(verifyWebhook({ 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${sig.toUpperCase()}` }, body, secret)).toEqual({ ok: true, provider: 'github' });
  });

  // docs/webhooks.md: the prefix is `sha256=` exactly, as GitHub sends it; only the hex digits may be in either case.
  test.each([
    ['github', { 'x-github-event': 'push' }, 'x-hub-signature-256'],
    ['bitbucket', { 'x-event-key': 'repo:push' }, 'x-hub-signature'],
    ['generic', {}, 'x-plumb-signature'],
  ])('%s: a prefix in another case (SHA256=, Sha256=) or of another form is invalid, the right one is valid', (provider, recognised, name) => {
    for (const value of [`SHA256=${sig}`, `Sha256=${sig}`, `sha256=${sig.toUpperCase()}`.replace('sha256', 'SHA256'), `sha256:${sig}`, `sha256 =${sig}`, `sha256=sha256=${sig}`, sig]) {
      expect(verifyWebhook({ ...recognised, [name]: value }, body, secret), value).toMatchObject({ ok: false, status: 401, provider, reason: `invalid ${name} (expected sha256=<64 hex digits>)` });
    }
    expect(verifyWebhook({ ...recognised, [name]: `sha256=${sig}` }, body, secret)).toEqual({ ok: true, provider });
    expect(verifyWebhook({ ...recognised, [name]: `sha256=${sig.toUpperCase()}` }, body, secret)).toEqual({ ok: true, provider });
  });

  test('Gitea and Forgejo sign without a prefix: a prefixed value is invalid, hex in either case is valid', () => {
    for (const [provider, event, name] of [['gitea', 'x-gitea-event', 'x-gitea-signature'], ['forgejo', 'x-forgejo-event', 'x-forgejo-signature']] as const) {
      for (const value of [`sha256=${sig}`, `SHA256=${sig}`]) expect(verifyWebhook({ [event]: 'push', [name]: value }, body, secret), value).toMatchObject({ ok: false, status: 401, provider });
      expect(verifyWebhook({ [event]: 'push', [name]: sig.toUpperCase() }, body, secret)).toEqual({ ok: true, provider });
    }
  });

  test('GitLab: the token is compared exactly (case and surrounding characters count)', () => {
    const gitlab = (token: string) => verifyWebhook({ 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': token }, body, secret);
    expect(gitlab(SECRET)).toEqual({ ok: true, provider: 'gitlab' });
    for (const token of [SECRET.toUpperCase(), `${SECRET} `, `sha256=${SECRET}`, SECRET.slice(1)]) expect(gitlab(token), token).toMatchObject({ ok: false, status: 401, provider: 'gitlab' });
  });

  test('Forgejo: a bad X-Forgejo-Signature is not rescued by a good X-Gitea-Signature', () => {
    const verdict = verifyWebhook({ 'x-forgejo-event': 'push', 'x-gitea-event': 'push', 'x-forgejo-signature': '0'.repeat(64), 'x-gitea-signature': sig }, body, secret);
    expect(verdict).toMatchObject({ ok: false, status: 401, provider: 'forgejo' });
  });

  test('a repeated signature header is ambiguous, so missing', () => {
    expect(verifyWebhook({ 'x-plumb-signature': [`sha256=${sig}`, `sha256=${sig}`] }, body, secret)).toMatchObject({ ok: false, status: 401 });
  });

  test('a sha1 signature (GitHub X-Hub-Signature) is not accepted for GitHub', () => {
    const sha1 = createHmac('sha1', SECRET).update(body).digest('hex');
    expect(verifyWebhook({ 'x-github-event': 'push', 'x-hub-signature': `sha1=${sha1}` }, body, secret)).toMatchObject({ ok: false, status: 401, provider: 'github' });
  });

  test('an empty secret verifies nothing, not even an empty-key HMAC', () => {
    const empty = createHmac('sha256', '').update(body).digest('hex');
    expect(verifyWebhook({ 'x-plumb-signature': `sha256=${empty}` }, body, Buffer.alloc(0))).toMatchObject({ ok: false });
    expect(verifyWebhook({ 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': '' }, body, Buffer.alloc(0))).toMatchObject({ ok: false });
  });

  test('an authentic delivery with an unusable id is 400, not silently truncated', () => {
    expect(verifyWebhook({ 'x-plumb-signature': `sha256=${sig}`, 'x-plumb-delivery': 'x'.repeat(500) }, body, secret)).toMatchObject({ ok: false, status: 400 });
  });
});
