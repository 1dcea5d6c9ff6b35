/**
 * A NETCONF client over one ssh2 connection (RFC 6241 + RFC 6242): host key
 * checked before any credential is sent, the `netconf` subsystem, the hello
 * exchange, base:1.0 or base:1.1 framing chosen by the hellos, message-id
 * matching, a deadline and an AbortSignal per RPC, bounded receive buffers.
 * Nothing here throws from an event handler: stream trouble becomes
 * SessionLostError for the RPCs in flight, and the client reports itself dead.
 */
import type ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { ProviderError, SessionLostError, TimeoutError, UnreachableError, type PlumbError } from '../../../src/errors.js';
import { abortError, isTimeoutReason, type Log } from '../../../src/provider.js';
import { redactText } from '../../../src/secrets/redact.js';
import { connectSsh, credentialsOf, DEFAULT_KEEPALIVE_MS, type SshCredentials } from '../../ssh/connect.js';
import type { HostKeyPolicy } from '../../ssh/host-key.js';
import { checkReply } from './errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES, encodeMessage, FrameDecoder, FramingError, type Framing } from './framing.js';
import { attr, child, escapeXml, NC_NS, parseXml, type XmlElement, type XmlParseError } from './xml.js';

type SshClient = ssh2.Client;

const BASE_10 = 'urn:ietf:params:netconf:base:1.0';
const BASE_11 = 'urn:ietf:params:netconf:base:1.1';
export const CAP = {
  candidate: 'urn:ietf:params:netconf:capability:candidate:1.0',
  confirmedCommit10: 'urn:ietf:params:netconf:capability:confirmed-commit:1.0',
  confirmedCommit11: 'urn:ietf:params:netconf:capability:confirmed-commit:1.1',
  rollbackOnError: 'urn:ietf:params:netconf:capability:rollback-on-error:1.0',
  writableRunning: 'urn:ietf:params:netconf:capability:writable-running:1.0',
  validate11: 'urn:ietf:params:netconf:capability:validate:1.1',
} as const;

const CLOSE_GRACE_MS = 1_000;
/**
 * netconfd (yuma123 2.13) leaves RPC bytes unprocessed when they arrive in the
 * same read() as the client's hello; a short pause after the hellos keeps the
 * first RPC in a read of its own. Only for servers that say they are yuma123
 * (their own modules in the hello): other servers need no pause.
 */
const YUMA_HELLO_SETTLE_MS = 150;
const YUMA_CAPABILITY = /^http:\/\/(netconfcentral\.org\/ns\/yuma|yuma123\.org\/)/;

export interface NetconfClientOptions extends SshCredentials {
  /** Target name, for messages. */
  name: string;
  host: string;
  port: number;
  username: string;
  hostKey: HostKeyPolicy;
  /** Host name as known_hosts knows it, for messages. */
  hostName: string;
  connectTimeoutMs: number;
  keepaliveMs?: number;
  /** auto: base:1.1 chunked framing when both hellos list it, else base:1.0. The others advertise only that version. */
  framing?: 'auto' | 'base:1.0' | 'base:1.1';
  /** Largest message accepted; default 16 MiB. */
  maxMessageBytes?: number;
  /** Pause between the hello exchange and the first RPC; default 150 ms for yuma123 servers, none for others. */
  helloSettleMs?: number;
  signal: AbortSignal;
  log: Log;
}

export interface RpcOptions {
  signal: AbortSignal;
  /** Deadline for the reply, in ms. */
  timeoutMs: number;
}

interface Pending {
  rpc: string;
  resolve(reply: XmlElement): void;
  reject(err: Error): void;
}

export class NetconfClient {
  readonly name: string;
  /** The server's capabilities, as listed in its hello. */
  readonly capabilities: ReadonlySet<string>;
  readonly sessionId: string;
  readonly framing: Framing;
  readonly #client: SshClient;
  readonly #channel: ClientChannel;
  readonly #pending = new Map<string, Pending>();
  readonly #log: Log;
  #nextId = 1;
  #alive = true;
  #socketClosed = false;
  #closing = false;
  #closed: Promise<void> = Promise.resolve();

  private constructor(init: { name: string; client: SshClient; channel: ClientChannel; capabilities: Set<string>; sessionId: string; framing: Framing; log: Log }) {
    this.name = init.name;
    this.#client = init.client;
    this.#channel = init.channel;
    this.capabilities = init.capabilities;
    this.sessionId = init.sessionId;
    this.framing = init.framing;
    this.#log = init.log;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Whether the server lists `capability` (parameters after `?` are ignored). */
  has(capability: string): boolean {
    for (const c of this.capabilities) if (c === capability || c.startsWith(`${capability}?`)) return true;
    return false;
  }

  /** Connects, authenticates, opens the netconf subsystem and exchanges hellos. */
  static async connect(o: NetconfClientOptions): Promise<NetconfClient> {
    const what = `netconf ${o.name}: connect`;
    const client = await connectSsh({
      protocol: 'netconf',
      name: o.name,
      host: o.host,
      port: o.port,
      username: o.username,
      ...credentialsOf(o),
      hostKey: o.hostKey,
      hostName: o.hostName,
      connectTimeoutMs: o.connectTimeoutMs,
      keepaliveMs: o.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
      signal: o.signal,
    });
    const deadlineAt = Date.now() + o.connectTimeoutMs;

    // 2. Subsystem, hellos. Errors from here on must also tear the connection down.
    const messages: Buffer[] = [];
    let wake: (() => void) | undefined;
    let streamError: Error | undefined;
    const fail = (err: Error): void => {
      streamError ??= err;
      wake?.();
    };
    const decoder = new FrameDecoder(
      (m) => {
        messages.push(m);
        wake?.();
      },
      { maxMessageBytes: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES },
    );
    client.on('error', (err: Error) => fail(new SessionLostError(`netconf ${o.name}: connection error (${redactText(err.message)})`)));
    client.on('close', () => fail(new UnreachableError(`netconf ${o.name}: the connection closed during the NETCONF hello`)));
    let channel: ClientChannel | undefined;
    try {
      channel = await withDeadline<ClientChannel>(o.signal, deadlineAt, what, (resolve, reject) => {
        try {
          client.subsys('netconf', (err, ch) => {
            if (err) reject(new ProviderError(`netconf ${o.name}: the server refused the netconf subsystem (${err.message})`));
            else resolve(ch);
          });
        } catch (err) {
          reject(new SessionLostError(`netconf ${o.name}: connection lost before the netconf subsystem opened`, { cause: err }));
        }
      });
      const ch = channel;
      ch.on('data', (d: Buffer) => {
        try {
          decoder.push(d);
        } catch (err) {
          fail(err as Error);
        }
      });
      ch.stderr.on('data', () => {});
      ch.on('error', (err: Error) => fail(new SessionLostError(`netconf ${o.name}: channel error (${err.message})`)));
      ch.on('close', () => fail(new UnreachableError(`netconf ${o.name}: the server closed the netconf channel during the hello (is the NETCONF server running?)`)));

      const offered = o.framing === 'base:1.0' ? [BASE_10] : o.framing === 'base:1.1' ? [BASE_11] : [BASE_10, BASE_11];
      ch.write(encodeMessage(helloXml(offered), 'eom'));

      const helloBytes = await withDeadline<Buffer>(o.signal, deadlineAt, `${what} (waiting for the server hello)`, (resolve, reject) => {
        const check = (): void => {
          if (messages.length > 0) resolve(messages.shift()!);
          else if (streamError) reject(streamError instanceof FramingError ? protocolError(o.name, streamError) : streamError);
        };
        wake = check;
        check();
      });
      wake = undefined;
      const hello = parseHello(o.name, helloBytes);
      const both11 = hello.capabilities.has(BASE_11) && offered.includes(BASE_11);
      const both10 = hello.capabilities.has(BASE_10) && offered.includes(BASE_10);
      if (!both11 && !both10) throw new ProviderError(`netconf ${o.name}: no common base protocol (we offered ${offered.join(', ')})`);
      const framing: Framing = both11 ? 'chunked' : 'eom';
      // The framing applies from the next message on; anything already decoded after the hello is a protocol error.
      if (messages.length > 0) throw new ProviderError(`netconf ${o.name}: the server sent a message before the hello exchange completed`);
      decoder.setFraming(framing);
      if (streamError) throw streamError;

      const yuma = [...hello.capabilities].some((c) => YUMA_CAPABILITY.test(c));
      const settle = o.helloSettleMs ?? (yuma ? YUMA_HELLO_SETTLE_MS : 0);
      if (settle > 0) await withDeadline<void>(o.signal, deadlineAt, what, (resolve) => void setTimeout(resolve, settle));
      if (streamError) throw streamError;

      const nc = new NetconfClient({ name: o.name, client, channel: ch, capabilities: hello.capabilities, sessionId: hello.sessionId, framing, log: o.log });
      nc.#attach(decoder);
      o.log.debug({ framing, sessionId: hello.sessionId, capabilities: hello.capabilities.size }, 'netconf session open');
      return nc;
    } catch (err) {
      client.removeAllListeners('close');
      client.on('error', () => {});
      client.destroy();
      throw err;
    }
  }

  /** Takes over the stream events from the hello phase. */
  #attach(decoder: FrameDecoder): void {
    const ch = this.#channel;
    ch.removeAllListeners('data');
    ch.removeAllListeners('error');
    ch.removeAllListeners('close');
    this.#client.removeAllListeners('error');
    this.#client.removeAllListeners('close');
    decoder.onMessage = (m) => this.#onMessage(m);
    ch.on('data', (d: Buffer) => {
      try {
        decoder.push(d);
      } catch (err) {
        this.#die(err instanceof FramingError ? protocolError(this.name, err) : new SessionLostError(`netconf ${this.name}: ${(err as Error).message}`));
      }
    });
    ch.on('error', (err: Error) => this.#die(new SessionLostError(`netconf ${this.name}: channel error (${err.message})`)));
    ch.on('close', () => this.#die(new SessionLostError(`netconf ${this.name}: the server closed the NETCONF session`)));
    this.#client.on('error', (err: Error) => this.#die(new SessionLostError(`netconf ${this.name}: connection error (${redactText(err.message)})`)));
    this.#closed = new Promise<void>((resolve) => this.#client.once('close', () => resolve()));
    this.#client.on('close', () => {
      this.#socketClosed = true;
      this.#die(new SessionLostError(`netconf ${this.name}: connection lost`));
    });
  }

  #onMessage(bytes: Buffer): void {
    let doc: XmlElement;
    try {
      doc = parseXml(bytes.toString('utf8'));
    } catch (err) {
      this.#die(new ProviderError(`netconf ${this.name}: the server sent malformed XML (${(err as XmlParseError).message})`));
      return;
    }
    if (doc.ns !== NC_NS || doc.name !== 'rpc-reply') {
      // Notifications and anything else unsolicited are not ours to act on.
      this.#log.debug({ element: doc.name }, 'netconf message ignored');
      return;
    }
    const id = attr(doc, 'message-id');
    let pending = id !== undefined ? this.#pending.get(id) : undefined;
    let key = id;
    if (!pending && id === undefined && this.#pending.size > 0) {
      // A reply without message-id (some servers, for malformed-message) answers the oldest RPC.
      key = this.#pending.keys().next().value as string;
      pending = this.#pending.get(key);
    }
    if (!pending || key === undefined) {
      this.#log.debug({ messageId: id }, 'netconf reply to no pending rpc ignored');
      return;
    }
    this.#pending.delete(key);
    pending.resolve(doc);
  }

  /** Marks the session dead, fails every RPC in flight, and drops the connection. Never throws. */
  #die(err: Error): void {
    const first = this.#alive;
    this.#alive = false;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
    if (first) {
      if (!this.#closing) this.#log.warn({ err: redactText(err.message) }, 'netconf session ended');
      try {
        this.#client.end();
      } catch {
        // already gone
      }
      setTimeout(() => this.#client.destroy(), CLOSE_GRACE_MS).unref();
    }
  }

  /**
   * Sends one `<rpc>` (its body is `operation`, already serialized) and waits for
   * the matching reply. Rejects with RpcError for an `<rpc-error>`, TimeoutError
   * past `timeoutMs` (and then closes the session: a server that does not answer
   * is not trusted with the next RPC), CancelledError/TimeoutError on abort, and
   * SessionLostError when the session dies first.
   */
  rpc(operation: string, rpcName: string, options: RpcOptions): Promise<XmlElement> {
    const what = `netconf ${this.name}: ${rpcName}`;
    return new Promise<XmlElement>((resolve, reject) => {
      if (options.signal.aborted) return reject(abortError(options.signal, what));
      if (!this.#alive) return reject(new SessionLostError(`${what}: the session is closed`));
      const id = String(this.#nextId++);
      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      const onAbort = (): void => {
        cleanup();
        const err = abortError(options.signal, what);
        // A deadline that passed mid-RPC: the reply may still come and the server state is unknown.
        if (isTimeoutReason(options.signal.reason)) this.#die(new SessionLostError(`${what}: abandoned after its deadline`));
        reject(err);
      };
      this.#pending.set(id, {
        rpc: rpcName,
        resolve: (reply) => {
          cleanup();
          try {
            checkReply(this.name, rpcName, reply);
            resolve(reply);
          } catch (err) {
            reject(err as Error);
          }
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      });
      options.signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        cleanup();
        this.#die(new SessionLostError(`${what}: abandoned after no reply within ${options.timeoutMs} ms`));
        reject(new TimeoutError(`${what}: no reply within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      try {
        const xml = `<?xml version="1.0" encoding="UTF-8"?><rpc xmlns="${NC_NS}" message-id="${escapeXml(id)}">${operation}</rpc>`;
        this.#channel.write(encodeMessage(xml, this.framing));
      } catch (err) {
        cleanup();
        reject(err instanceof FramingError ? new ProviderError(`${what}: ${err.message}`) : new SessionLostError(`${what}: the session broke while sending`, { cause: err }));
      }
    });
  }

  /** Polite `<close-session>` (short deadline), then the connection ends; destroyed after a grace period. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#alive) {
      try {
        await this.rpc('<close-session/>', 'close-session', { signal: AbortSignal.timeout(CLOSE_GRACE_MS), timeoutMs: CLOSE_GRACE_MS });
      } catch {
        // the connection goes either way
      }
    }
    this.#alive = false;
    for (const p of [...this.#pending.values()]) p.reject(new SessionLostError(`netconf ${this.name}: the session was closed`));
    this.#pending.clear();
    if (this.#socketClosed) return;
    try {
      this.#client.end();
    } catch {
      // already gone
    }
    let timer: NodeJS.Timeout | undefined = undefined;
    await Promise.race([this.#closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    this.#client.destroy();
  }

  /** Drops the connection at once, as a crash would (tests; and a session that cannot be trusted). */
  destroy(): void {
    this.#die(new SessionLostError(`netconf ${this.name}: the session was dropped`));
    this.#client.destroy();
  }
}

function helloXml(capabilities: string[]): string {
  const caps = capabilities.map((c) => `<capability>${escapeXml(c)}</capability>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><hello xmlns="${NC_NS}"><capabilities>${caps}</capabilities></hello>`;
}

function parseHello(name: string, bytes: Buffer): { capabilities: Set<string>; sessionId: string } {
  let doc: XmlElement;
  try {
    doc = parseXml(bytes.toString('utf8'));
  } catch (err) {
    throw new ProviderError(`netconf ${name}: the server hello is not well-formed XML (${(err as Error).message})`);
  }
  if (doc.ns !== NC_NS || doc.name !== 'hello') throw new ProviderError(`netconf ${name}: expected a <hello>, got <${doc.name}>`);
  const caps = child(doc, 'capabilities', NC_NS);
  const capabilities = new Set((caps?.children ?? []).filter((c) => c.name === 'capability').map((c) => c.text.trim()));
  const sessionId = child(doc, 'session-id', NC_NS)?.text.trim() ?? '';
  if (capabilities.size === 0) throw new ProviderError(`netconf ${name}: the server hello lists no capabilities`);
  if (!/^[1-9][0-9]*$/.test(sessionId)) throw new ProviderError(`netconf ${name}: the server hello has no valid session-id`);
  return { capabilities, sessionId };
}

function protocolError(name: string, err: FramingError): PlumbError {
  return new ProviderError(`netconf ${name}: ${err.reason === 'oversize' ? 'message too large, session closed' : 'framing error, session closed'} (${err.message})`, { cause: err });
}

/** Waits for `start` to settle, the signal to abort, or the connect deadline to pass. */
function withDeadline<T>(signal: AbortSignal, deadlineAt: number, what: string, start: (resolve: (v: T) => void, reject: (e: Error) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const done = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = (): void => done(() => reject(abortError(signal, what)));
    const timer = setTimeout(() => done(() => reject(new UnreachableError(`${what}: no NETCONF hello within the connect deadline`))), Math.max(0, deadlineAt - Date.now()));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    start(
      (v) => done(() => resolve(v)),
      (e) => done(() => reject(e)),
    );
  });
}

