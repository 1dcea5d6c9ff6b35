/**
 * The pooled session of one NETCONF target: a NetconfClient plus the target's
 * options (deadlines, confirmed-commit timeout), and the datastore operations
 * the kinds and the transaction use. Secrets are resolved here, at open, only.
 */
import { SpecError } from '../../src/errors.js';
import type { Log, OpenContext, Session, Target } from '../../src/provider.js';
import { durationField } from '../../src/util/duration.js';
import { knownHostName, loadHostKeyPolicy } from '../ssh/host-key.js';
import { resolveCredentials } from '../ssh/connect.js';
import { CAP, NetconfClient } from './client/session.js';
import { child, escapeXml, NC_NS, serializeXml, type XmlElement } from './client/xml.js';

/** The fields of a validated `provider: netconf` Target spec. */
export interface NetconfTargetSpec {
  provider: 'netconf';
  address: string;
  port?: number;
  user: string;
  privateKey?: string;
  passphrase?: string;
  password?: string;
  hostKey?: string;
  knownHosts?: string;
  confirmTimeout?: string;
  rpcTimeout?: string;
  connectTimeout?: string;
  framing?: 'auto' | 'base:1.0' | 'base:1.1';
  maxMessageSize?: number;
}

const DEFAULT_PORT = 830;
const DEFAULT_CONFIRM_TIMEOUT_MS = 120_000;
const DEFAULT_RPC_TIMEOUT_MS = 60_000;

export type Datastore = 'running' | 'candidate';

export class NetconfSession implements Session {
  readonly targetName: string;
  readonly client: NetconfClient;
  readonly log: Log;
  readonly confirmTimeoutMs: number;
  readonly rpcTimeoutMs: number;
  /** Persist-ids of interrupted confirmed commits already cancelled through this session. */
  readonly cancelledPersistIds = new Set<string>();

  private constructor(targetName: string, client: NetconfClient, log: Log, confirmTimeoutMs: number, rpcTimeoutMs: number) {
    this.targetName = targetName;
    this.client = client;
    this.log = log;
    this.confirmTimeoutMs = confirmTimeoutMs;
    this.rpcTimeoutMs = rpcTimeoutMs;
  }

  get alive(): boolean {
    return this.client.alive;
  }

  static async open(target: Target, ctx: OpenContext): Promise<NetconfSession> {
    const spec = target.spec as unknown as NetconfTargetSpec;
    const name = target.name;
    if (typeof spec.address !== 'string' || typeof spec.user !== 'string') throw new SpecError(`target ${name}: address and user are required`);
    const port = spec.port ?? DEFAULT_PORT;
    const hostName = knownHostName(spec.address, port);
    const confirmTimeoutMs = durationField(name, 'confirmTimeout', spec.confirmTimeout, DEFAULT_CONFIRM_TIMEOUT_MS);
    const rpcTimeoutMs = durationField(name, 'rpcTimeout', spec.rpcTimeout, DEFAULT_RPC_TIMEOUT_MS);
    const connectTimeoutMs = durationField(name, 'connectTimeout', spec.connectTimeout, ctx.connectTimeoutMs);
    if (confirmTimeoutMs < 1_000) throw new SpecError(`target ${name}: confirmTimeout must be at least 1s`);
    const hostKey = await loadHostKeyPolicy(name, spec, hostName);
    const credentials = await resolveCredentials(name, spec, ctx.secrets);
    const log = ctx.log.child({ target: name });
    const client = await NetconfClient.connect({
      name,
      host: spec.address,
      port,
      username: spec.user,
      ...credentials,
      hostKey,
      hostName,
      connectTimeoutMs,
      framing: spec.framing ?? 'auto',
      ...(spec.maxMessageSize !== undefined ? { maxMessageBytes: spec.maxMessageSize } : {}),
      signal: ctx.signal,
      log,
    });
    return new NetconfSession(name, client, log, confirmTimeoutMs, rpcTimeoutMs);
  }

  /** Where writes go: the candidate when the device has one, else running (which must then be writable). */
  get hasCandidate(): boolean {
    return this.client.has(CAP.candidate);
  }

  /** :confirmed-commit:1.1 (persist, cancel-commit) is base:1.1: a server listing both refuses it on a base:1.0 session (netconfd). */
  get confirmedCommit(): 'none' | '1.0' | '1.1' {
    if (this.client.has(CAP.confirmedCommit11) && this.client.framing === 'chunked') return '1.1';
    if (this.client.has(CAP.confirmedCommit11)) return '1.0';
    if (this.client.has(CAP.confirmedCommit10)) return '1.0';
    return 'none';
  }

  get rollbackOnError(): boolean {
    return this.client.has(CAP.rollbackOnError);
  }

  get writableRunning(): boolean {
    return this.client.has(CAP.writableRunning);
  }

  rpc(body: string, name: string, signal: AbortSignal): Promise<XmlElement> {
    return this.client.rpc(body, name, { signal, timeoutMs: this.rpcTimeoutMs });
  }

  /** `<get-config>` with an optional subtree filter; returns the children of `<data>`. */
  async getConfig(source: Datastore, filter: XmlElement[] | undefined, signal: AbortSignal): Promise<XmlElement[]> {
    const f = filter ? `<filter type="subtree">${filter.map((e) => serializeXml(e, NC_NS)).join('')}</filter>` : '';
    const reply = await this.rpc(`<get-config><source><${source}/></source>${f}</get-config>`, 'get-config', signal);
    return child(reply, 'data', NC_NS)?.children ?? [];
  }

  async editConfig(target: Datastore, config: XmlElement[], options: { errorOption?: 'stop-on-error' | 'rollback-on-error'; defaultOperation?: 'merge' | 'replace' | 'none' }, signal: AbortSignal): Promise<void> {
    const body = config.map((e) => serializeXml(e, NC_NS)).join('');
    const def = options.defaultOperation ? `<default-operation>${options.defaultOperation}</default-operation>` : '';
    const err = options.errorOption ? `<error-option>${options.errorOption}</error-option>` : '';
    await this.rpc(`<edit-config><target><${target}/></target>${def}${err}<config xmlns:nc="${NC_NS}">${body}</config></edit-config>`, 'edit-config', signal);
  }

  async lock(target: Datastore, signal: AbortSignal): Promise<void> {
    await this.rpc(`<lock><target><${target}/></target></lock>`, `lock ${target}`, signal);
  }

  async unlock(target: Datastore, signal: AbortSignal): Promise<void> {
    await this.rpc(`<unlock><target><${target}/></target></unlock>`, `unlock ${target}`, signal);
  }

  async discardChanges(signal: AbortSignal): Promise<void> {
    await this.rpc('<discard-changes/>', 'discard-changes', signal);
  }

  /** `<commit>`; confirmed with a timeout in seconds (and a persist token with :confirmed-commit:1.1), or confirming one. */
  async commit(options: { confirmed?: { timeoutS: number; persist?: string }; persistId?: string }, signal: AbortSignal): Promise<void> {
    let body = '';
    if (options.confirmed) {
      body += `<confirmed/><confirm-timeout>${options.confirmed.timeoutS}</confirm-timeout>`;
      if (options.confirmed.persist) body += `<persist>${escapeXml(options.confirmed.persist)}</persist>`;
    }
    if (options.persistId) body += `<persist-id>${escapeXml(options.persistId)}</persist-id>`;
    await this.rpc(body === '' ? '<commit/>' : `<commit>${body}</commit>`, options.confirmed ? 'confirmed commit' : options.persistId ? 'confirming commit' : 'commit', signal);
  }

  async cancelCommit(persistId: string | undefined, signal: AbortSignal): Promise<void> {
    await this.rpc(persistId ? `<cancel-commit><persist-id>${escapeXml(persistId)}</persist-id></cancel-commit>` : '<cancel-commit/>', 'cancel-commit', signal);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
