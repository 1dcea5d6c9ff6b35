/**
 * A tiny HTTPS server for unit tests of the Redfish client: each test scripts the
 * answers, the server records every request (method, path, headers, body). Keys
 * and certificates come from the openssl CLI (a CA, a leaf it signed for
 * 127.0.0.1, and an unrelated self-signed certificate).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StubRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface StubReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Raw body instead of JSON. */
  raw?: string | Buffer;
  /** Wait before answering (ms). */
  delayMs?: number;
  /** Answer only once this settles (a test decides when). */
  hold?: Promise<unknown>;
  /** Destroy the connection instead of answering: the request arrived, no answer leaves. */
  drop?: boolean;
}

export type Handler = (req: StubRequest) => StubReply | undefined;

export interface Certs {
  dir: string;
  caFile: string;
  leafKey: string;
  leafCert: string;
  leafFingerprint: string;
  otherKey: string;
  otherCert: string;
  otherFingerprint: string;
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function fingerprint(certPath: string, cwd: string): string {
  const out = openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', certPath], cwd);
  return out.trim().split('=')[1]!;
}

/** A CA, a leaf for 127.0.0.1/localhost signed by it, and an unrelated self-signed certificate. */
export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'plumb-rf-certs-'));
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Plumb Test CA'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1'], dir);
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2', '-extfile', 'leaf.ext'], dir);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], dir);
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    leafKey: join(dir, 'leaf.key'),
    leafCert: join(dir, 'leaf.pem'),
    leafFingerprint: fingerprint('leaf.pem', dir),
    otherKey: join(dir, 'other.key'),
    otherCert: join(dir, 'other.pem'),
    otherFingerprint: fingerprint('other.pem', dir),
  };
}

export function removeCerts(certs: Certs): void {
  rmSync(certs.dir, { recursive: true, force: true });
}

export class StubBmc {
  readonly requests: StubRequest[] = [];
  handler: Handler = () => undefined;
  tlsConnections = 0;
  tcpConnections = 0;
  readonly #server: ReturnType<typeof createHttpsServer> | ReturnType<typeof createHttpServer>;
  port = 0;
  readonly https: boolean;

  constructor(options: { certs?: Certs; useOther?: boolean }) {
    const listener = (req: IncomingMessage, res: ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          body = text;
        }
        const request: StubRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body };
        this.requests.push(request);
        const reply = this.handler(request) ?? { status: 404, body: { error: { code: 'Base.1.8.ResourceNotFound', message: 'not found' } } };
        if (reply.drop) {
          req.socket.destroy();
          return;
        }
        const send = (): void => {
          const payload = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
          res.writeHead(reply.status, { ...(reply.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...reply.headers });
          res.end(payload);
        };
        if (reply.hold) void reply.hold.finally(send);
        else if (reply.delayMs) setTimeout(send, reply.delayMs);
        else send();
      });
    };
    if (options.certs) {
      const c = options.certs;
      this.https = true;
      this.#server = createHttpsServer(
        { key: readFileSync(options.useOther ? c.otherKey : c.leafKey), cert: readFileSync(options.useOther ? c.otherCert : c.leafCert) },
        listener,
      );
      this.#server.on('secureConnection', () => this.tlsConnections++);
    } else {
      this.https = false;
      this.#server = createHttpServer(listener);
    }
    this.#server.on('connection', () => this.tcpConnections++);
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `${this.https ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** Requests that carried credentials (a login body, Basic auth or a token). */
  credentialed(): StubRequest[] {
    return this.requests.filter((r) => r.headers.authorization !== undefined || r.headers['x-auth-token'] !== undefined || (r.method === 'POST' && r.path.endsWith('/Sessions')));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * A scripted, stateful mini BMC good enough for session/ETag/action tests:
 * service root, sessions, one system with an ETag, a reset action.
 */
export function basicRoutes(state: { token?: string; etag: number; system: Record<string, unknown>; logins: number; sessionsDeleted: number; resetActionInfo?: boolean }): Handler {
  return (req): StubReply | undefined => {
    if (req.method === 'GET' && req.path === '/redfish/v1/') {
      return { status: 200, body: { '@odata.id': '/redfish/v1/', Systems: { '@odata.id': '/redfish/v1/Systems' }, Managers: { '@odata.id': '/redfish/v1/Managers' }, Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } } } };
    }
    if (req.method === 'POST' && req.path === '/redfish/v1/SessionService/Sessions') {
      state.logins++;
      const body = req.body as { UserName?: string; Password?: string };
      if (body.UserName !== 'admin' || body.Password !== 'secret-pw') return { status: 401, body: { error: { code: 'Base.1.8.GeneralError', '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.NoValidSession', Message: 'bad credentials' }] } } };
      state.token = `tok-${state.logins}`;
      return { status: 201, headers: { 'X-Auth-Token': state.token, Location: `/redfish/v1/SessionService/Sessions/${state.logins}` }, body: { Id: String(state.logins) } };
    }
    const authed = req.headers['x-auth-token'] === state.token && state.token !== undefined;
    if (!authed && req.headers.authorization !== `Basic ${Buffer.from('admin:secret-pw').toString('base64')}`) return { status: 401, body: { error: { code: 'Base.1.8.NoValidSession', message: 'no session' } } };
    if (req.method === 'DELETE' && req.path.startsWith('/redfish/v1/SessionService/Sessions/')) {
      state.sessionsDeleted++;
      state.token = undefined;
      return { status: 204 };
    }
    if (req.method === 'GET' && req.path === '/redfish/v1/Systems') return { status: 200, body: { Members: [{ '@odata.id': '/redfish/v1/Systems/1' }] } };
    if (req.method === 'GET' && req.path === '/redfish/v1/Systems/1') {
      const reset = state.resetActionInfo
        ? { target: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', '@Redfish.ActionInfo': '/redfish/v1/Systems/1/ResetActionInfo' }
        : { target: '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset', 'ResetType@Redfish.AllowableValues': ['On', 'ForceOff', 'ForceRestart'] };
      return { status: 200, headers: { ETag: `"${state.etag}"` }, body: { '@odata.id': '/redfish/v1/Systems/1', '@odata.etag': `"${state.etag}"`, ...state.system, Actions: { '#ComputerSystem.Reset': reset } } };
    }
    if (req.method === 'GET' && req.path === '/redfish/v1/Systems/1/ResetActionInfo') {
      return { status: 200, body: { Parameters: [{ Name: 'ResetType', Required: true, AllowableValues: ['On', 'GracefulShutdown', 'PowerCycle'] }] } };
    }
    return undefined;
  };
}
