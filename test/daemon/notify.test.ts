import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { NotifySinkConfig } from '../../src/daemon/config.js';
import { compileConfig, loadConfigFile } from '../../src/daemon/config.js';
import type { PassReport } from '../../src/daemon/engine.js';
import { Notifier } from '../../src/daemon/notify.js';
import type { OpResult } from '../../src/run/runner.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { verifyWebhook } from '../../src/source/webhook.js';
import { captureLog } from './webhook-helpers.js';

const A = 'a1'.repeat(20);
const B = 'b2'.repeat(20);
const ENV = { GH_TOKEN: 'ghp_TESTTOKEN1234567890', GL_TOKEN: 'glpat-TESTTOKEN0987', GT_TOKEN: 'gitea-TESTTOKEN-5555', HOOK_SECRET: 'hook-secret-abcdef' };

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One loopback server standing in for GitHub, GitLab, Gitea and a webhook receiver; `respond` decides each answer. */
class FakeForge {
  readonly received: Received[] = [];
  respond: (r: Received, res: ServerResponse) => void = (_r, res) => {
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end('{"id":1}');
  };
  #server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.received.push(r);
        this.respond(r, res);
      });
    });
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  to(prefix: string): Received[] {
    return this.received.filter((r) => r.url.startsWith(prefix));
  }
}

const result = (id: string, status: OpResult['status'], code?: string): OpResult => ({ key: id, id, target: 't1', action: 'update', cause: 'intent', status, changes: [], attempts: 1, durationMs: 1, ...(code ? { error: { code, message: 'x' } } : {}) });
const report = (commit: string | null, extra: Partial<PassReport> = {}): PassReport => ({ commit, fetched: commit, converged: false, timings: { fetchMs: 1, loadMs: 1, planMs: 1, runMs: 1 }, filesRead: 0, ...extra });

describe('notifications', () => {
  let forge: FakeForge;
  let log: ReturnType<typeof captureLog>;
  let notifier: Notifier;

  const sinks = (): NotifySinkConfig[] =>
    // Through compileConfig, as the daemon gets them.
    compileConfig({
      repo: { url: '/tmp/x' },
      notify: [
        { type: 'github', api: `http://127.0.0.1:${forge.port}/gh`, repo: 'acme/config', token: 'env:GH_TOKEN', context: 'plumb/prod' },
        { type: 'gitlab', api: `http://127.0.0.1:${forge.port}/gl/api/v4`, repo: 'infra/envs/prod', token: 'env:GL_TOKEN' },
        { type: 'gitea', api: `http://127.0.0.1:${forge.port}/gt/api/v1/`, repo: 'acme/config', token: 'env:GT_TOKEN' },
        { type: 'webhook', url: `http://127.0.0.1:${forge.port}/hook`, secret: 'env:HOOK_SECRET' },
      ],
    }).notify;

  const make = (options: { sinks?: NotifySinkConfig[]; timeoutMs?: number; queueSize?: number } = {}): Notifier =>
    new Notifier({ sinks: options.sinks ?? sinks(), secrets: new SecretResolver({ env: ENV }), log, timeoutMs: options.timeoutMs ?? 2_000, backoffMs: 10, queueSize: options.queueSize ?? 100, now: () => Date.parse('2030-01-02T03:04:05Z') });

  beforeEach(async () => {
    forge = new FakeForge();
    await forge.start();
    log = captureLog();
    notifier = make();
  });

  afterEach(async () => {
    await notifier.close(100);
    await forge.stop();
    // Invariant 7: whatever happened, no token or secret reached a log line.
    const all = log.lines.join('\n');
    for (const secret of Object.values(ENV)) expect(all).not.toContain(secret);
  });

  test('failed resources, then converged: one failure and one success per sink, never repeated', async () => {
    const failing = report(A, { run: { results: [result('ssh.File/motd', 'failed', 'PLUMB_UNREACHABLE'), result('ssh.File/x', 'failed', 'PLUMB_SPEC'), result('ssh.File/y', 'blocked', 'PLUMB_DEPENDENCY'), result('ssh.File/ok', 'changed')], durationMs: 1 } });
    notifier.onPass(failing);
    notifier.onPass(failing); // the same state again: nothing new
    notifier.onPass(report(A)); // a later pass without results: still failing, nothing new
    await notifier.idle();
    expect(forge.received).toHaveLength(4);

    const [gh] = forge.to('/gh');
    expect(gh!.method).toBe('POST');
    expect(gh!.url).toBe(`/gh/repos/acme/config/statuses/${A}`);
    expect(gh!.headers.authorization).toBe(`Bearer ${ENV.GH_TOKEN}`);
    expect(gh!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(gh!.body)).toEqual({ state: 'failure', context: 'plumb/prod', description: '3 failed: ssh.File/motd: PLUMB_UNREACHABLE' });

    const [gl] = forge.to('/gl');
    expect(gl!.url).toBe(`/gl/api/v4/projects/infra%2Fenvs%2Fprod/statuses/${A}`);
    expect(gl!.headers['private-token']).toBe(ENV.GL_TOKEN);
    expect(gl!.headers.authorization).toBeUndefined();
    expect(JSON.parse(gl!.body)).toEqual({ state: 'failed', name: 'plumb', description: '3 failed: ssh.File/motd: PLUMB_UNREACHABLE' });

    const [gt] = forge.to('/gt');
    expect(gt!.url).toBe(`/gt/api/v1/repos/acme/config/statuses/${A}`);
    expect(gt!.headers.authorization).toBe(`token ${ENV.GT_TOKEN}`);
    expect(JSON.parse(gt!.body)).toEqual({ state: 'failure', context: 'plumb', description: '3 failed: ssh.File/motd: PLUMB_UNREACHABLE' });

    const [hook] = forge.to('/hook');
    expect(hook!.headers.authorization).toBeUndefined();
    const verdict = verifyWebhook(hook!.headers, Buffer.from(hook!.body), Buffer.from(ENV.HOOK_SECRET));
    expect(verdict).toMatchObject({ ok: true, provider: 'generic' });
    expect(verdict.ok && verdict.deliveryId).toBe(hook!.headers['x-plumb-delivery']);
    expect(JSON.parse(hook!.body)).toEqual({
      commit: A,
      state: 'failure',
      converged: false,
      failed: [
        { id: 'ssh.File/motd', code: 'PLUMB_UNREACHABLE' },
        { id: 'ssh.File/x', code: 'PLUMB_SPEC' },
        { id: 'ssh.File/y', code: 'PLUMB_DEPENDENCY' },
      ],
      rejected: null,
      at: '2030-01-02T03:04:05.000Z',
    });
    // Signed with another secret, it would not verify.
    expect(verifyWebhook(hook!.headers, Buffer.from(hook!.body), Buffer.from('another-secret'))).toMatchObject({ ok: false });

    notifier.onPass(report(A, { converged: true }));
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.received).toHaveLength(8);
    expect(JSON.parse(forge.to('/gh')[1]!.body)).toEqual({ state: 'success', context: 'plumb/prod', description: 'converged' });
    expect(JSON.parse(forge.to('/gl')[1]!.body)).toMatchObject({ state: 'success', name: 'plumb' });
    expect(JSON.parse(forge.to('/gt')[1]!.body)).toMatchObject({ state: 'success' });
    expect(JSON.parse(forge.to('/hook')[1]!.body)).toMatchObject({ commit: A, state: 'success', converged: true, failed: [], rejected: null });
  });

  test('a converged commit reports success at once; a pass that is merely unfinished reports nothing', async () => {
    notifier.onPass(report(A, { run: { results: [result('ssh.File/a', 'cancelled')], durationMs: 1 } }));
    await notifier.idle();
    expect(forge.received).toHaveLength(0);
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.received.map((r) => JSON.parse(r.body).state)).toEqual(['success', 'success', 'success', 'success']);
  });

  test('a rejected commit: failure with the first diagnostic as file:line:col, at most 140 characters; the last good commit is reported on its own', async () => {
    const long = `spec.content must be a string ${'and more '.repeat(30)}`;
    notifier.onPass(
      report(A, {
        fetched: B,
        converged: true,
        rejected: { commit: B, diagnostics: [{ severity: 'error', file: 'hosts/web1.yaml', line: 12, col: 5, message: long }, { severity: 'error', file: 'b.yaml', line: 1, col: 1, message: 'second' }] },
      }),
    );
    await notifier.idle();
    const gh = forge.to('/gh').map((r) => ({ url: r.url, ...JSON.parse(r.body) }));
    expect(gh.find((s) => s.url.endsWith(B))).toMatchObject({ state: 'failure' });
    const description = gh.find((s) => s.url.endsWith(B))!.description as string;
    expect(description.startsWith('rejected: hosts/web1.yaml:12:5: spec.content must be a string')).toBe(true);
    expect(description.length).toBeLessThanOrEqual(140);
    expect(gh.find((s) => s.url.endsWith(A))).toMatchObject({ state: 'success' });
    const hook = forge.to('/hook').map((r) => JSON.parse(r.body)).find((b) => b.commit === B);
    expect(hook).toMatchObject({ state: 'failure', converged: false, failed: [], rejected: { file: 'hosts/web1.yaml', line: 12, col: 5, message: long } });
  });

  test('5xx is retried with backoff (twice), 401 is not; failures are logged with a code and never the token', async () => {
    const seen = new Map<string, number>();
    forge.respond = (r, res) => {
      const n = (seen.get(r.url) ?? 0) + 1;
      seen.set(r.url, n);
      if (r.url.startsWith('/gh')) res.writeHead(n <= 2 ? 503 : 201).end(); // recovers on the third try
      else if (r.url.startsWith('/gl')) res.writeHead(401).end(`{"message":"401 Unauthorized ${ENV.GL_TOKEN}"}`); // even if the server echoes it
      else if (r.url.startsWith('/gt')) res.writeHead(500).end(); // never recovers
      else res.writeHead(204).end();
    };
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.to('/gh')).toHaveLength(3);
    expect(forge.to('/gl')).toHaveLength(1);
    expect(forge.to('/gt')).toHaveLength(3); // 1 + 2 retries
    expect(forge.to('/hook')).toHaveLength(1);
    const warnings = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'warn');
    expect(warnings).toEqual([
      expect.objectContaining({ msg: 'notification failed; the next pass tries again', sink: 'gitlab infra/envs/prod', code: 'PLUMB_AUTH', httpStatus: 401, attempt: 1 }),
      expect.objectContaining({ msg: 'notification failed; the next pass tries again', sink: 'gitea acme/config', code: 'PLUMB_PROVIDER', httpStatus: 500, attempt: 3 }),
    ]);
  });

  test('a sink whose delivery finally failed gets the state again on the next pass; the others are not repeated', async () => {
    let down = true;
    forge.respond = (r, res) => {
      if (r.url.startsWith('/gt') && down) res.writeHead(500).end();
      else res.writeHead(201).end('{}');
    };
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.to('/gt')).toHaveLength(3);
    down = false;
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.to('/gt')).toHaveLength(4);
    expect([forge.to('/gh'), forge.to('/gl'), forge.to('/hook')].map((r) => r.length)).toEqual([1, 1, 1]);
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.to('/gt')).toHaveLength(4);
  });

  test('redirects are not followed', async () => {
    forge.respond = (r, res) => {
      if (r.url.startsWith('/elsewhere')) res.writeHead(201).end();
      else res.writeHead(302, { location: `http://127.0.0.1:${forge.port}/elsewhere${r.url}` }).end();
    };
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.to('/elsewhere')).toHaveLength(0);
    expect(forge.received).toHaveLength(4);
    const warnings = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'notification failed; the next pass tries again');
    expect(warnings).toHaveLength(4);
    for (const w of warnings) expect(w).toMatchObject({ code: 'PLUMB_PROVIDER', httpStatus: 302 });
  });

  test('a server that never answers: onPass does not wait for it; each try times out; other sinks are not held up', async () => {
    await notifier.close(0);
    notifier = make({ timeoutMs: 400 });
    forge.respond = (r, res) => {
      if (!r.url.startsWith('/gh')) res.writeHead(201).end(); // /gh hangs
    };
    // onPass hands the report over and returns: nothing is sent before it does.
    expect(notifier.onPass(report(A, { converged: true }))).toBeUndefined();
    expect(forge.received).toHaveLength(0);
    await notifier.idle();
    expect(forge.to('/gh')).toHaveLength(3);
    expect(forge.to('/gl')).toHaveLength(1);
    expect(forge.to('/hook')).toHaveLength(1);
    // Delivered while GitHub still hung: before its second try (one 400 ms timeout later), not after its third.
    const order = forge.received.map((r) => r.url.split('/')[1]);
    expect(order.indexOf('gl')).toBeLessThan(order.lastIndexOf('gh'));
    expect(order.indexOf('hook')).toBeLessThan(order.lastIndexOf('gh'));
    const gh = log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'notification failed; the next pass tries again');
    expect(gh).toMatchObject({ sink: 'github acme/config', code: 'PLUMB_TIMEOUT', attempt: 3 });
  });

  test('the queue is bounded: past it the oldest waiting notification is dropped, and said so', async () => {
    await notifier.close(0);
    notifier = make({ sinks: [sinks()[0]!], timeoutMs: 300, queueSize: 2 });
    forge.respond = () => {}; // hangs: everything queues
    const commits = ['c1', 'c2', 'c3', 'c4'].map((c) => c.padEnd(40, '0'));
    for (const c of commits) notifier.onPass(report(c, { converged: true }));
    expect(log.lines.filter((l) => l.includes('notification queue full'))).toHaveLength(1);
    await notifier.close(50);
  });

  test('an unresolvable token is logged as PLUMB_SECRET and not retried', async () => {
    await notifier.close(0);
    notifier = make({ sinks: [{ ...sinks()[0]!, token: 'env:NOT_SET' } as NotifySinkConfig] });
    notifier.onPass(report(A, { converged: true }));
    await notifier.idle();
    expect(forge.received).toHaveLength(0);
    expect(log.lines.find((l) => l.includes('notification failed'))).toContain('PLUMB_SECRET');
  });
});

describe('notify config', () => {
  test('tokens must be references, URLs must not carry credentials, GitHub repos are owner/name', () => {
    const base = { repo: { url: '/tmp/x' } };
    expect(() => compileConfig({ ...base, notify: [{ type: 'github', api: 'https://api.github.com', repo: 'a/b', token: 'ghp_inline' }] })).toThrow(/secret reference/);
    expect(() => compileConfig({ ...base, notify: [{ type: 'webhook', url: 'https://user:pw@ci.example/x', secret: 'env:S' }] })).toThrow(/credentials/);
    expect(() => compileConfig({ ...base, notify: [{ type: 'gitea', api: 'https://g.example/api/v1', repo: 'just-a-name', token: 'env:T' }] })).toThrow(/owner\/name/);
    expect(compileConfig({ ...base, notify: [{ type: 'gitlab', api: 'https://gl.example/api/v4/', repo: '42', token: 'env:T' }] }).notify).toEqual([{ type: 'gitlab', api: 'https://gl.example/api/v4', repo: '42', token: 'env:T', context: 'plumb' }]);
  });

  test('http and webhook compile with their defaults; a webhook needs the listener', () => {
    const config = compileConfig({ repo: { url: '/tmp/x' }, http: { listen: '[::1]:9180' }, webhook: { secret: 'file:/etc/plumb/hook' } });
    expect(config.http).toEqual({ host: '::1', port: 9180, maxConnections: 256 });
    expect(compileConfig({ repo: { url: '/tmp/x' }, http: { listen: '127.0.0.1:0', maxConnections: 32 } }).http).toEqual({ host: '127.0.0.1', port: 0, maxConnections: 32 });
    expect(config.webhook).toEqual({ path: '/hooks/git', secret: 'file:/etc/plumb/hook', maxBodyBytes: 1_048_576, minFetchIntervalMs: 1_000, dedupeWindowMs: 86_400_000, maxFailuresPerMinute: 10, maxFailuresPerMinuteTotal: 100 });
    expect(compileConfig({ repo: { url: '/tmp/x' } })).toMatchObject({ http: null, webhook: null, notify: [] });
    expect(() => compileConfig({ repo: { url: '/tmp/x' }, webhook: { secret: 'env:S' } })).toThrow(/http\.listen/);
    expect(() => compileConfig({ repo: { url: '/tmp/x' }, http: { listen: '127.0.0.1:99999' } })).toThrow(/host:port/);
  });

  test('a config file with http, webhook and notify validates against the schema (file:line:col on mistakes)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-config-'));
    try {
      const file = join(dir, 'plumb.yaml');
      const good = `repo: { url: /srv/config.git }
http: { listen: "127.0.0.1:9180" }
webhook:
  secret: file:/etc/plumb/webhook-secret
  minFetchInterval: 2s
notify:
  - { type: github, api: "https://api.github.com", repo: acme/config, token: "env:GH_TOKEN" }
  - { type: gitlab, api: "https://gitlab.example.com/api/v4", repo: infra/envs/prod, token: "file:/etc/plumb/gl", context: plumb/prod }
  - { type: webhook, url: "https://ci.example.com/hook", secret: "env:NOTIFY_SECRET", caFile: /etc/plumb/ca.pem }
`;
      writeFileSync(file, good);
      const config = loadConfigFile(file);
      expect(config.http).toEqual({ host: '127.0.0.1', port: 9180, maxConnections: 256 });
      expect(config.webhook?.minFetchIntervalMs).toBe(2_000);
      expect(config.notify.map((n) => n.type)).toEqual(['github', 'gitlab', 'webhook']);

      writeFileSync(file, good.replace('secret: file:/etc/plumb/webhook-secret', 'secret: hunter2-inline'));
      expect(() => loadConfigFile(file)).toThrow(/plumb\.yaml:4:\d+: .*secret reference/);
      writeFileSync(file, good.replace('type: github,', 'type: github, url: "https://x",'));
      expect(() => loadConfigFile(file)).toThrow(/plumb\.yaml:7:\d+/);
      writeFileSync(file, good.replace('"127.0.0.1:9180"', '"9180"'));
      expect(() => loadConfigFile(file)).toThrow(/host:port/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
