/**
 * TLS trust for a BMC: a CA file (chain and host name verified as usual) or a
 * pinned leaf-certificate fingerprint. The pin is checked in the handshake, in
 * the connector, before undici writes a single request byte: a mismatch sends no
 * credentials. There is no "verify nothing" mode (plain HTTP is a separate,
 * explicit lab-only option).
 */
import type * as Undici from 'undici';
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import type { buildConnector } from 'undici';
import { lazyRequire } from '../../src/util/lazy-require.js';
import { HostKeyError, SpecError } from '../../src/errors.js';

const undici = lazyRequire<typeof Undici>('undici');

const FINGERPRINT_PATTERN = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}$/;

/** `aa:bb:..` or `AABB..` -> `AA:BB:..` (as `openssl x509 -fingerprint -sha256` prints it). */
export function normalizeFingerprint(text: string): string {
  const hex = text.replace(/[^0-9A-Fa-f]/g, '').toUpperCase();
  return hex.match(/.{2}/g)?.join(':') ?? '';
}

export function fingerprintsEqual(a: string, b: string): boolean {
  const x = Buffer.from(normalizeFingerprint(a), 'utf8');
  const y = Buffer.from(normalizeFingerprint(b), 'utf8');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export type TlsTrust = { kind: 'ca'; ca: Buffer; path: string } | { kind: 'pin'; fingerprint: string } | { kind: 'none' };

/** The trust a target asks for; the schema guarantees exactly one of caFile/certFingerprint for https. */
export function loadTrust(targetName: string, spec: { address: string; caFile?: unknown; certFingerprint?: unknown; insecureHttp?: unknown }): TlsTrust {
  if (spec.address.startsWith('http://')) {
    if (spec.insecureHttp !== true) throw new SpecError(`target ${targetName}: ${spec.address} is plain HTTP; set insecureHttp: true (lab only) or use https://`);
    return { kind: 'none' };
  }
  if (typeof spec.certFingerprint === 'string') {
    if (!FINGERPRINT_PATTERN.test(spec.certFingerprint)) {
      throw new SpecError(`target ${targetName}: certFingerprint must be 32 hex pairs separated by ':' (openssl x509 -noout -fingerprint -sha256)`);
    }
    return { kind: 'pin', fingerprint: normalizeFingerprint(spec.certFingerprint) };
  }
  if (typeof spec.caFile === 'string') {
    try {
      return { kind: 'ca', ca: readFileSync(spec.caFile), path: spec.caFile };
    } catch (err) {
      throw new SpecError(`target ${targetName}: caFile ${spec.caFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  throw new SpecError(`target ${targetName}: set caFile or certFingerprint; Plumb never talks to a BMC over unverified TLS`);
}

/** Node's chain/host-name verification codes: a certificate the configured CA does not vouch for. */
const UNTRUSTED_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'INVALID_CA',
]);

export function isUntrustedCertificate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNTRUSTED_CODES.has(code);
}

/**
 * An undici connector that enforces the trust. With a pin, the chain is not
 * verified (BMC certificates are mostly self-signed); the leaf's SHA-256 must
 * equal the pin, checked on every new connection (TLS session resumption off, so
 * each connection presents its certificate).
 */
export function trustedConnector(targetName: string, trust: TlsTrust, timeoutMs: number): buildConnector.connector {
  if (trust.kind === 'none') return undici().buildConnector({ timeout: timeoutMs });
  if (trust.kind === 'ca') return undici().buildConnector({ timeout: timeoutMs, ca: trust.ca, rejectUnauthorized: true, maxCachedSessions: 0 });
  const base = undici().buildConnector({ timeout: timeoutMs, rejectUnauthorized: false, maxCachedSessions: 0 });
  return (options, callback) => {
    base(options, (err, socket) => {
      if (err || !socket) return callback(err ?? new Error('no socket'), null);
      const presented = (socket as TLSSocket).getPeerCertificate?.()?.fingerprint256 ?? '';
      if (!fingerprintsEqual(presented, trust.fingerprint)) {
        socket.destroy();
        return callback(
          new HostKeyError(`redfish ${targetName}: the BMC's certificate ${presented || '(none)'} does not match the pinned fingerprint ${trust.fingerprint}; no credentials were sent`),
          null,
        );
      }
      callback(null, socket);
    });
  };
}
