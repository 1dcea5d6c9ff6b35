/**
 * `<rpc-error>` as a typed error. The run queue alone retries: an error is
 * retryable only when waiting can help (a lock or resource held by someone
 * else); everything else (invalid value, unknown element, access denied, a
 * failed commit) is terminal until the config changes.
 */
import { ProviderError } from '../../../src/errors.js';
import { child, NC_NS, type XmlElement } from './xml.js';

export interface RpcErrorDetail {
  type: string;
  tag: string;
  severity: string;
  appTag?: string;
  path?: string;
  message?: string;
  /** Children of `<error-info>` by local name (e.g. `session-id`, `bad-element`); a null-prototype map. */
  info: Record<string, string>;
}

const RETRYABLE_TAGS = new Set(['in-use', 'lock-denied', 'resource-denied']);
const MAX_TEXT = 300;

/** One or more `<rpc-error>`s of severity error in an `<rpc-reply>`. */
export class RpcError extends ProviderError {
  readonly rpc: string;
  readonly tag: string;
  readonly type: string;
  readonly severity: string;
  readonly appTag: string | undefined;
  readonly path: string | undefined;
  readonly errorMessage: string | undefined;
  readonly info: Record<string, string>;
  /** Every error of the reply (the first one is the one described by the fields above). */
  readonly errors: RpcErrorDetail[];

  constructor(target: string, rpc: string, errors: RpcErrorDetail[]) {
    const first = errors[0] ?? { type: 'rpc', tag: 'operation-failed', severity: 'error', info: Object.create(null) as Record<string, string> };
    super(`netconf ${target}: ${rpc} failed: ${errors.map(describe).join('; ')}`, { retryable: RETRYABLE_TAGS.has(first.tag) });
    this.rpc = rpc;
    this.tag = first.tag;
    this.type = first.type;
    this.severity = first.severity;
    this.appTag = first.appTag;
    this.path = first.path;
    this.errorMessage = first.message;
    this.info = first.info;
    this.errors = errors;
  }
}

function clip(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > MAX_TEXT ? `${t.slice(0, MAX_TEXT)}…` : t;
}

function describe(e: RpcErrorDetail): string {
  const parts = [`${e.tag} (${e.type})`];
  if (e.message) parts.push(clip(e.message));
  if (e.path) parts.push(`at ${clip(e.path)}`);
  if (e.appTag) parts.push(`app-tag ${e.appTag}`);
  const info = Object.entries(e.info).map(([k, v]) => `${k}=${clip(v)}`);
  if (info.length > 0) parts.push(`[${info.join(', ')}]`);
  return parts.join(': ');
}

/** The `<rpc-error>`s of a reply, all severities. */
export function parseRpcErrors(reply: XmlElement): RpcErrorDetail[] {
  const out: RpcErrorDetail[] = [];
  for (const e of reply.children) {
    if (e.name !== 'rpc-error' || e.ns !== NC_NS) continue;
    const text = (name: string): string | undefined => {
      const c = child(e, name);
      return c ? c.text.trim() : undefined;
    };
    const info: Record<string, string> = Object.create(null) as Record<string, string>;
    const infoEl = child(e, 'error-info');
    for (const c of infoEl?.children ?? []) info[c.name] = c.children.length > 0 ? c.children.map((g) => `${g.name}=${g.text.trim()}`).join(' ') : c.text.trim();
    const detail: RpcErrorDetail = {
      type: text('error-type') ?? 'rpc',
      tag: text('error-tag') ?? 'operation-failed',
      severity: text('error-severity') ?? 'error',
      info,
    };
    const appTag = text('error-app-tag');
    const path = text('error-path');
    const message = text('error-message');
    if (appTag) detail.appTag = appTag;
    if (path) detail.path = path;
    if (message) detail.message = message;
    out.push(detail);
  }
  return out;
}

/** Throws RpcError when the reply carries an error of severity error; warnings are ignored. */
export function checkReply(target: string, rpc: string, reply: XmlElement): void {
  const errors = parseRpcErrors(reply).filter((e) => e.severity !== 'warning');
  if (errors.length > 0) throw new RpcError(target, rpc, errors);
}
