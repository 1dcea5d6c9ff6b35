import { Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { ConnectConfig } from 'ssh2';
import { AuthError, HostKeyError, ProviderError, SecretError, SpecError, UnreachableError, type PlumbError } from '../../src/errors.js';
import { abortError, throwIfAborted, type Secrets } from '../../src/provider.js';
import { redactText } from '../../src/secrets/redact.js';
import { checkHostKey, preferredHostKeyAlgorithms, type HostKeyPolicy } from './host-key.js';

const { Client } = ssh2;

/** SSH keepalive interval unless a Target sets one: a dead peer is noticed within ~45 s (3 missed keepalives). */
export const DEFAULT_KEEPALIVE_MS = 15_000;

/** How to log in: a key (and its passphrase) or a password. */
export interface SshCredentials {
  privateKey?: Buffer;
  passphrase?: Buffer;
  password?: string;
  /** The secret reference the key came from, to name it when the key is unusable (never the key). */
  keyRef?: string;
}

/** A Target's credentials, resolved from their secret references at connect time (so a rotated file counts at once). */
export async function resolveCredentials(name: string, spec: { privateKey?: string; passphrase?: string; password?: string }, secrets: Secrets): Promise<SshCredentials> {
  if (spec.privateKey !== undefined) {
    const privateKey = (await secrets.resolve(spec.privateKey)).reveal();
    const passphrase = spec.passphrase !== undefined ? (await secrets.resolve(spec.passphrase)).reveal() : undefined;
    return { privateKey, keyRef: spec.privateKey, ...(passphrase ? { passphrase } : {}) };
  }
  if (spec.password !== undefined) return { password: (await secrets.resolve(spec.password)).revealString() };
  throw new SpecError(`target ${name}: set privateKey or password (a secret reference)`);
}

/** Just the credentials of a larger options object (none of the undefined ones). */
export function credentialsOf(o: SshCredentials): SshCredentials {
  return {
    ...(o.privateKey ? { privateKey: o.privateKey } : {}),
    ...(o.passphrase ? { passphrase: o.passphrase } : {}),
    ...(o.password !== undefined ? { password: o.password } : {}),
    ...(o.keyRef !== undefined ? { keyRef: o.keyRef } : {}),
  };
}

export interface SshConnectOptions extends SshCredentials {
  /** What the connection is for, in messages: `ssh web1`, `netconf sw1`. */
  protocol: 'ssh' | 'netconf';
  /** Target name. */
  name: string;
  host: string;
  port: number;
  username: string;
  hostKey: HostKeyPolicy;
  /** Host name as known_hosts knows it, for messages. */
  hostName: string;
  connectTimeoutMs: number;
  keepaliveMs: number;
  signal: AbortSignal;
}

/**
 * One SSH connection, authenticated, for the SSH provider and the NETCONF client
 * alike. The host key is checked in the key exchange: an unknown or changed key
 * makes ssh2 disconnect before any credential is sent. A password is given to
 * password prompts only (never to an OTP or other question).
 */
export async function connectSsh(o: SshConnectOptions): Promise<ssh2.Client> {
  const what = `${o.protocol} ${o.name}: connect`;
  throwIfAborted(o.signal, what); // it may have fired while the caller read key files
  const config: ConnectConfig = {
    host: o.host,
    port: o.port,
    username: o.username,
    readyTimeout: o.connectTimeoutMs,
    keepaliveInterval: o.keepaliveMs,
    keepaliveCountMax: 3,
  };
  if (o.privateKey) {
    config.privateKey = o.privateKey;
    if (o.passphrase) config.passphrase = o.passphrase;
    config.authHandler = ['publickey'];
  } else if (o.password !== undefined) {
    config.password = o.password;
    // Many PAM-backed servers only offer passwords through keyboard-interactive.
    config.tryKeyboard = true;
    config.authHandler = ['password', 'keyboard-interactive'];
  }
  const algos = preferredHostKeyAlgorithms(o.hostKey);
  if (algos) config.algorithms = { serverHostKey: algos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] };
  let refusal: HostKeyError | undefined;
  config.hostVerifier = (key: Buffer): boolean => {
    const verdict = checkHostKey(o.hostKey, key);
    if (verdict.ok) return true;
    // Returning false makes ssh2 disconnect during key exchange: no credentials are ever sent.
    refusal = new HostKeyError(`target ${o.name} (${o.hostName}): host key ${verdict.presented} ${verdict.reason}; expected ${verdict.expected}. No credentials were sent`);
    return false;
  };

  const client = new Client();
  if (o.password !== undefined) {
    const pw = o.password;
    client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => finish(prompts.map((p) => (/password/i.test(p.prompt) ? pw : ''))));
  }
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      o.signal.removeEventListener('abort', onAbort);
      client.removeListener('ready', onReady);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (err) {
        client.on('error', () => {}); // late errors of a connection we gave up on are not news
        client.destroy();
        reject(err);
      } else resolve();
    };
    const onAbort = (): void => finish(abortError(o.signal, what));
    const onReady = (): void => finish();
    const onError = (err: Error & { level?: string; code?: string }): void => finish(refusal ?? connectError(o, err));
    const onClose = (): void => finish(refusal ?? new UnreachableError(`${o.protocol} ${o.name}: ${o.host}:${o.port} closed the connection during the handshake`));
    o.signal.addEventListener('abort', onAbort, { once: true });
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('close', onClose);
    try {
      client.connect({ ...config, sock: coalescingSocket(o.host, o.port) });
      // Request/response traffic: without this each exec or RPC waits ~40 ms on a delayed ACK (Nagle).
      client.setNoDelay(true);
    } catch (err) {
      // ssh2 validates the key synchronously; its message names the problem, never the key bytes.
      finish(new SecretError(`target ${o.name}: ${o.keyRef ?? 'the private key'} is not a usable private key (${redactText((err as Error).message)})`));
    }
  });
  return client;
}

function connectError(o: SshConnectOptions, err: Error & { level?: string; code?: string }): PlumbError {
  const where = `${o.protocol} ${o.name}: ${o.host}:${o.port}`;
  switch (err.level) {
    case 'client-authentication':
      return new AuthError(`${where} refused ${o.privateKey ? 'the private key' : 'the password'} for user ${o.username}`);
    case 'client-timeout':
      return new UnreachableError(`${where} did not complete the SSH handshake within ${o.connectTimeoutMs} ms`);
    case 'client-socket':
    case 'client-dns':
      return new UnreachableError(`${where} cannot be reached (${err.code ?? err.message})`, { cause: err });
    case 'handshake':
      return new ProviderError(`${where}: SSH handshake failed (${err.message})`, { cause: err });
    default:
      return new UnreachableError(`${where}: connection failed (${err.message})`, { cause: err });
  }
}

/**
 * A TCP connection that sends what is written in one turn of the event loop as
 * one segment: ssh2 writes every packet on its own, and a target's parallel
 * SFTP requests (or a burst of replies' follow-ups) would each cost a syscall
 * and a wake-up of the server. Corked on the first write, uncorked on the next tick.
 */
function coalescingSocket(host: string, port: number): Socket {
  const sock = new Socket();
  sock.setMaxListeners(0);
  sock.connect({ host, port }); // (connect() puts back the prototype's write: wrap it after)
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    sock.uncork();
  };
  sock.write = ((...args: unknown[]): boolean => {
    if (!corked) {
      corked = true;
      sock.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
  return sock;
}
