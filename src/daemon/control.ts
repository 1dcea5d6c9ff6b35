import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { describeError, PlumbError } from '../errors.js';
import type { Log } from '../provider.js';
import type { Store } from '../state/store.js';
import { closeNow, listen } from '../util/http-server.js';
import type { Daemon } from './daemon.js';

const MAX_BODY = 64 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const ID = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?\/[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** The last line of a `sync --wait` stream, after the pass's PassEvents. */
export interface DoneEvent {
  type: 'done';
  commit: string | null;
  converged: boolean;
  rejected: { commit: string; errors: number } | null;
  fetchError: string | null;
  /** The pass itself broke: code and message. */
  error: string | null;
  /** The daemon stopped before serving the request. */
  stopped: boolean;
}

export interface ControlOptions {
  socketPath: string;
  /** Group that may use the socket (mode 0660); default: the daemon's own group. */
  group?: string;
  daemon: Daemon;
  store: Store;
  log: Log;
  /** Re-reads the config file and applies what can change at run time. */
  reload: () => string[];
  /** Settles writes of unknown outcome on an operator's word (Engine.resolve); returns how many. */
  resolve: (input: { id: string; ran: boolean; by: string; reason: string }) => number;
}

/**
 * The daemon's control API: HTTP on a unix socket, mode 0660, so access is
 * exactly membership of the socket's group. Requests only *ask*: a sync
 * requests a pass, a pause is a record the runner honours. `plumb status` does
 * not come here: it reads SQLite, so it answers even when the daemon hangs.
 */
export class ControlServer {
  readonly #options: ControlOptions;
  readonly #server: Server;

  constructor(options: ControlOptions) {
    this.#options = options;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  async listen(): Promise<void> {
    const { socketPath, group } = this.#options;
    // One daemon per state directory holds the writer lock, so a socket file here is a dead daemon's.
    if (existsSync(socketPath)) rmSync(socketPath, { force: true });
    await listen(this.#server, socketPath);
    chmodSync(socketPath, 0o660);
    if (group) chownSync(socketPath, process.getuid?.() ?? 0, groupId(group));
  }

  async close(): Promise<void> {
    // A `sync --wait` stream would hold close() open until its pass ends: cut it (the client reports the daemon stopped).
    await closeNow(this.#server);
    rmSync(this.#options.socketPath, { force: true });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      const route = `${req.method} ${req.url}`;
      if (route === 'GET /v1/health') return reply(200, { ok: true, busy: this.#options.daemon.busy, pid: process.pid });
      if (req.method !== 'POST') return reply(404, { error: `no route ${route}` });
      const body = await readJson(req);
      switch (req.url) {
        case '/v1/sync':
          return await this.#sync(body, res);
        case '/v1/pause':
          return reply(...this.#pause(body));
        case '/v1/resume':
          return reply(...this.#resume(body));
        case '/v1/resolve':
          return reply(...this.#resolve(body));
        case '/v1/reload': {
          const by = stringField(body, 'by');
          const changed = this.#options.reload();
          this.#options.log.info({ by, changed }, 'configuration reloaded');
          return reply(200, { reloaded: changed });
        }
        default:
          return reply(404, { error: `no route ${route}` });
      }
    } catch (err) {
      const { message } = describeError(err);
      // 400: the request is wrong; 409: it can't be done in the daemon's present state (e.g. a reload needing a restart).
      if (!res.headersSent) reply(err instanceof BadRequest ? 400 : err instanceof PlumbError ? 409 : 500, { error: message });
      else res.end();
    }
  }

  /**
   * Requests a pass: a fetch and the commit's delta, plus a re-read of the
   * selection, or (`all`) a sweep that re-reads everything. With `wait`, streams
   * its progress as NDJSON.
   */
  async #sync(body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    const only = Array.isArray(body.only) ? body.only.map((s) => this.#checkSelector(String(s))) : [];
    const all = body.all === true;
    if (all && only.length > 0) throw new BadRequest('a sync reads everything (all) or a selection, not both');
    const by = stringField(body, 'by');
    this.#options.log.info({ by, only, all }, 'sync requested');
    const kind = all ? 'sweep' : 'delta';
    if (body.wait !== true) {
      void this.#options.daemon.request(kind, { only });
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ accepted: true }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const report = await this.#options.daemon.request(kind, { only, onEvent: (event) => res.write(JSON.stringify(event) + '\n') });
    const done: DoneEvent = {
      type: 'done',
      commit: report?.commit ?? null,
      converged: report?.converged ?? false,
      rejected: report?.rejected ? { commit: report.rejected.commit, errors: report.rejected.diagnostics.length } : null,
      fetchError: report?.fetchError ?? null,
      error: report?.error ? `${report.error.code}: ${report.error.message}` : null,
      stopped: report === undefined,
    };
    res.end(JSON.stringify(done) + '\n');
  }

  #pause(body: Record<string, unknown>): [number, unknown] {
    const reason = stringField(body, 'reason');
    if (!reason.trim()) throw new BadRequest('a pause needs a reason (--reason TEXT): the next person reading `plumb status` needs it');
    const selector = this.#checkSelector(stringField(body, 'selector'));
    const until = typeof body.untilMs === 'number' ? this.#options.store.now() + body.untilMs : null;
    this.#options.store.pause({ selector, reason, by: stringField(body, 'by'), until });
    this.#options.log.warn({ selector, by: stringField(body, 'by'), until, reason }, 'paused');
    return [200, { paused: selector, until }];
  }

  #resume(body: Record<string, unknown>): [number, unknown] {
    const selector = canonical(stringField(body, 'selector'));
    const resumed = this.#options.store.resume(selector, stringField(body, 'by'));
    if (!resumed) return [404, { error: `${selector} is not paused` }];
    this.#options.log.info({ selector, by: stringField(body, 'by') }, 'resumed');
    void this.#options.daemon.request('delta', { only: [selector] }); // catch up with what changed while paused
    return [200, { resumed: selector }];
  }

  #resolve(body: Record<string, unknown>): [number, unknown] {
    const reason = stringField(body, 'reason');
    if (!reason.trim()) throw new BadRequest('resolving an unknown outcome needs a reason (--reason TEXT): what did you check on the target?');
    const id = stringField(body, 'id');
    if (!ID.test(id)) throw new BadRequest(`"${id}" is not Kind/name`);
    if (typeof body.ran !== 'boolean') throw new BadRequest('say whether it ran: --ran or --not-run');
    const settled = this.#options.resolve({ id, ran: body.ran, by: stringField(body, 'by'), reason });
    void this.#options.daemon.request('delta', { only: [id] }); // converge it now with the operator's answer
    return [200, { resolved: id, ran: body.ran, settled }];
  }

  /** A known target name or Kind/name, in the form pauses and selections use (`Target/x` is the target x). */
  #checkSelector(raw: string): string {
    const selector = canonical(raw);
    if (!NAME.test(selector) && !ID.test(selector)) throw new BadRequest(`"${raw}" is neither a target name nor Kind/name`);
    if (!this.#options.store.isKnown(selector)) throw new BadRequest(`nothing called ${raw} is recorded (a target name, or Kind/name)`);
    return selector;
  }
}

/** `Target/x` and `x` name the same target. */
function canonical(selector: string): string {
  return selector.startsWith('Target/') ? selector.slice('Target/'.length) : selector;
}

class BadRequest extends Error {}

function stringField(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value.length === 0) throw new BadRequest(`"${field}" is required`);
  return value.slice(0, 1000);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new BadRequest('request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new BadRequest('the request body is not a JSON object');
  }
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = execFileSync('getent', ['group', group], { encoding: 'utf8' }).trim();
  return Number(line.split(':')[2]);
}
