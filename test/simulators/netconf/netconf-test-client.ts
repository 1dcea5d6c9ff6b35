/**
 * Test-only NETCONF client: ssh2 Client + `netconf` subsystem, with its own tiny
 * RFC 6242 framing (kept apart from the simulator's code so each checks the other).
 * Replies are returned as raw XML text; the helpers below pick fields out of it.
 */
import ssh2 from 'ssh2';
import type { Client, ClientChannel, ConnectConfig } from 'ssh2';
import { NetconfSimulator, seedRunningXml, type NetconfSimulatorOptions, type SimDevice } from '../../../fixtures/simulators/netconf/index.js';

export const NC = 'urn:ietf:params:xml:ns:netconf:base:1.0';
export const BASE10 = 'urn:ietf:params:netconf:base:1.0';
export const BASE11 = 'urn:ietf:params:netconf:base:1.1';
export const IF = 'urn:ietf:params:xml:ns:yang:ietf-interfaces';
export const SYS = 'urn:ietf:params:xml:ns:yang:ietf-system';
export const SW = 'urn:example:plumb:switch';

export function startSim(options: Partial<NetconfSimulatorOptions> = {}): Promise<NetconfSimulator> {
  return NetconfSimulator.start({ devices: 1, ...options });
}

/** The seed config device `name` (index i) starts with. */
export function seedXml(name: string, index: number): string {
  return seedRunningXml(name, index);
}

export function firstDevice(sim: NetconfSimulator): SimDevice {
  const device = sim.devices[0];
  if (device === undefined) throw new Error('no device');
  return device;
}

/** Decodes what the server sends: EOM until told otherwise. */
class TestDecoder {
  private buffer = Buffer.alloc(0);
  chunked = false;

  push(data: Buffer): string[] {
    this.buffer = Buffer.concat([this.buffer, data]);
    const out: string[] = [];
    for (;;) {
      const message = this.chunked ? this.takeChunked() : this.takeEom();
      if (message === undefined) return out;
      out.push(message);
    }
  }

  private takeEom(): string | undefined {
    const at = this.buffer.indexOf(']]>]]>');
    if (at < 0) return undefined;
    const message = this.buffer.subarray(0, at).toString('utf8');
    this.buffer = this.buffer.subarray(at + 6);
    return message;
  }

  private takeChunked(): string | undefined {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const header = /^\n#(#|[1-9][0-9]*)\n/.exec(this.buffer.subarray(at, at + 16).toString('latin1'));
      if (header === null) return undefined;
      at += header[0].length;
      if (header[1] === '#') {
        this.buffer = this.buffer.subarray(at);
        return Buffer.concat(parts).toString('utf8');
      }
      const size = Number(header[1]);
      if (this.buffer.length < at + size) return undefined;
      parts.push(this.buffer.subarray(at, at + size));
      at += size;
    }
  }
}

export function frameChunked(message: string, chunkBytes = 1 << 20): Buffer {
  const body = Buffer.from(message, 'utf8');
  const pieces: Buffer[] = [];
  for (let at = 0; at < body.length; at += chunkBytes) {
    const chunk = body.subarray(at, at + chunkBytes);
    pieces.push(Buffer.from(`\n#${chunk.length}\n`), chunk);
  }
  pieces.push(Buffer.from('\n##\n'));
  return Buffer.concat(pieces);
}

export function frameEom(message: string): Buffer {
  return Buffer.from(`${message}]]>]]>`, 'utf8');
}

export function helloXml(capabilities: readonly string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?><hello xmlns="${NC}"><capabilities>${capabilities.map((c) => `<capability>${c}</capability>`).join('')}</capabilities></hello>`;
}

export interface OpenOptions {
  /** Capabilities of our hello; default base 1.0 and 1.1. Null: send no hello. */
  capabilities?: readonly string[] | null;
  username?: string;
  password?: string;
  privateKey?: string;
}

export class TestNetconfClient {
  /** The server's hello, as received. */
  serverHello = '';
  sessionId = 0;
  private readonly decoder = new TestDecoder();
  private readonly inbox: string[] = [];
  private readonly waiters: Array<{ resolve: (message: string) => void; reject: (err: Error) => void }> = [];
  private isClosed = false;
  private nextMessageId = 1;
  /** Resolves when the channel closes. */
  readonly channelClosed: Promise<void>;
  /** Resolves when the SSH connection closes. */
  readonly connectionClosed: Promise<void>;

  private constructor(
    readonly client: Client,
    readonly channel: ClientChannel,
  ) {
    client.on('error', () => undefined);
    channel.on('data', (data: Buffer) => {
      for (const message of this.decoder.push(data)) {
        const waiter = this.waiters.shift();
        if (waiter === undefined) this.inbox.push(message);
        else waiter.resolve(message);
      }
    });
    this.channelClosed = new Promise((resolve) =>
      channel.once('close', () => {
        this.isClosed = true;
        for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('channel closed'));
        resolve();
      }),
    );
    this.connectionClosed = new Promise((resolve) => client.once('close', () => resolve()));
  }

  /** Connect, open the subsystem, read the server hello and (unless told not to) answer it. */
  static async open(device: SimDevice, options: OpenOptions = {}): Promise<TestNetconfClient> {
    const client = await connectSsh(device, { username: options.username ?? 'admin', password: options.password ?? 'admin', privateKey: options.privateKey });
    const channel = await new Promise<ClientChannel>((resolve, reject) => client.subsys('netconf', (err, stream) => (err ? reject(err) : resolve(stream))));
    channel.on('error', () => undefined);
    const nc = new TestNetconfClient(client, channel);
    nc.serverHello = await nc.next();
    nc.sessionId = Number(/<session-id>(\d+)<\/session-id>/.exec(nc.serverHello)?.[1] ?? 0);
    const capabilities = options.capabilities === undefined ? [BASE10, BASE11] : options.capabilities;
    if (capabilities !== null) {
      nc.channel.write(frameEom(helloXml(capabilities)));
      nc.decoder.chunked = capabilities.includes(BASE11) && nc.serverHello.includes(BASE11);
    }
    return nc;
  }

  get chunked(): boolean {
    return this.decoder.chunked;
  }

  /** For tests that send their own hello: how to read the server from now on. */
  set chunked(value: boolean) {
    this.decoder.chunked = value;
  }

  /** The next whole message from the server; rejects after `ms`, or when the channel closes first. */
  next(ms = 5000): Promise<string> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.isClosed) return Promise.reject(new Error('channel closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error('no message from the server'));
      }, ms);
      const waiter = {
        resolve: (message: string): void => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (err: Error): void => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Frame `message` as the session's framing requires. */
  frame(message: string): Buffer {
    return this.chunked ? frameChunked(message) : frameEom(message);
  }

  write(data: string | Buffer): void {
    this.channel.write(data);
  }

  /** `<rpc message-id=N>body</rpc>` text with the next message-id. */
  rpcXml(body: string): { xml: string; messageId: string } {
    const messageId = String(this.nextMessageId++);
    return { xml: `<?xml version="1.0" encoding="UTF-8"?><rpc xmlns="${NC}" message-id="${messageId}">${body}</rpc>`, messageId };
  }

  /** Send one rpc and wait for its reply; checks the echoed message-id. */
  async rpc(body: string, ms = 5000): Promise<string> {
    const { xml, messageId } = this.rpcXml(body);
    this.write(this.frame(xml));
    const reply = await this.next(ms);
    const echoed = /<rpc-reply[^>]*\smessage-id="([^"]*)"/.exec(reply)?.[1];
    if (echoed !== messageId) throw new Error(`reply for message-id ${String(echoed)}, expected ${messageId}: ${reply}`);
    return reply;
  }

  /** rpc that must answer `<ok/>`. */
  async ok(body: string): Promise<void> {
    const reply = await this.rpc(body);
    if (!isOk(reply)) throw new Error(`expected <ok/>, got ${reply}`);
  }

  async getConfig(source: 'running' | 'candidate' = 'running', filter = ''): Promise<string> {
    return this.rpc(`<get-config><source><${source}/></source>${filter}</get-config>`);
  }

  editConfig(target: 'running' | 'candidate', config: string, options = ''): Promise<string> {
    return this.rpc(`<edit-config><target><${target}/></target>${options}<config>${config}</config></edit-config>`);
  }

  /** End the SSH connection and wait for it to close. */
  async close(): Promise<void> {
    this.client.end();
    await this.connectionClosed;
  }
}

export function connectSsh(device: SimDevice, config: Partial<ConnectConfig>): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => resolve(client));
    // Errors after ready (a reset when the simulator stops) are the test's business, not a crash.
    client.on('error', reject);
    client.once('close', () => reject(new Error('connection closed before ready')));
    client.connect({ host: '127.0.0.1', port: device.port, readyTimeout: 10_000, ...config });
    client.setNoDelay(true);
  });
}

export function isOk(reply: string): boolean {
  return /<ok\/>/.test(reply) && !reply.includes('<rpc-error>');
}

export function errorTags(reply: string): string[] {
  return [...reply.matchAll(/<error-tag>([^<]*)<\/error-tag>/g)].map((m) => m[1] ?? '');
}

/** `<session-id>` values inside error-info. */
export function errorInfoSessionId(reply: string): string | undefined {
  return /<error-info>.*?<session-id>([^<]*)<\/session-id>/.exec(reply)?.[1];
}

/** The inside of `<data>...</data>` ('' for `<data/>`). */
export function dataOf(reply: string): string {
  if (/<data\/>/.test(reply)) return '';
  const m = /<data>([\s\S]*)<\/data>/.exec(reply);
  if (m === null) throw new Error(`no <data> in ${reply}`);
  return m[1] ?? '';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true if `promise` settles within `ms`, false otherwise. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = promise.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return result;
}
