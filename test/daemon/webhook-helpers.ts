import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import type { Log } from '../../src/provider.js';

/** How each Git server signs a delivery, as it would send it. */
export interface Sender {
  name: 'github' | 'gitlab' | 'gitea' | 'forgejo' | 'bitbucket' | 'generic';
  /** The header whose value authenticates the request. */
  signatureHeader: string;
  headers(body: string, secret: string, delivery: string): Record<string, string>;
  /** Whether the signature covers the body (GitLab's token does not). */
  coversBody: boolean;
}

const hex = (secret: string, body: string): string => createHmac('sha256', secret).update(body).digest('hex');

export const SENDERS: Sender[] = [
  {
    name: 'github',
    signatureHeader: 'x-hub-signature-256',
    coversBody: true,
    headers: (body, secret, delivery) => ({ 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': `sha256=${hex(secret, body)}` }),
  },
  {
    name: 'gitlab',
    signatureHeader: 'x-gitlab-token',
    coversBody: false,
    headers: (_body, secret, delivery) => ({ 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': delivery, 'x-gitlab-token': secret }),
  },
  {
    name: 'gitea',
    signatureHeader: 'x-gitea-signature',
    coversBody: true,
    // Gitea also sends the GitHub-compatible headers.
    headers: (body, secret, delivery) => ({ 'x-gitea-event': 'push', 'x-gitea-delivery': delivery, 'x-gitea-signature': hex(secret, body), 'x-github-event': 'push', 'x-github-delivery': delivery }),
  },
  {
    name: 'forgejo',
    signatureHeader: 'x-forgejo-signature',
    coversBody: true,
    // Forgejo sends its own headers and Gitea's (and GitHub's event name); its own signature is the one checked.
    headers: (body, secret, delivery) => ({
      'x-forgejo-event': 'push',
      'x-forgejo-delivery': delivery,
      'x-forgejo-signature': hex(secret, body),
      'x-gitea-event': 'push',
      'x-gitea-delivery': delivery,
      'x-github-event': 'push',
    }),
  },
  {
    name: 'bitbucket',
    signatureHeader: 'x-hub-signature',
    coversBody: true,
    // X-Hook-UUID names the webhook (the same on every delivery); X-Request-UUID names the delivery.
    headers: (body, secret, delivery) => ({ 'x-event-key': 'repo:push', 'x-request-uuid': delivery, 'x-hook-uuid': '{7d1b5b8c-0000-4000-8000-000000000001}', 'x-hub-signature': `sha256=${hex(secret, body)}` }),
  },
  {
    name: 'generic',
    signatureHeader: 'x-plumb-signature',
    coversBody: true,
    headers: (body, secret, delivery) => ({ 'x-plumb-delivery': delivery, 'x-plumb-signature': `sha256=${hex(secret, body)}` }),
  },
];

/** A log that keeps every line (fields and message) as JSON text, to search for what must never appear. */
export function captureLog(): Log & { lines: string[] } {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (fields: object, msg: string): void => {
      lines.push(JSON.stringify({ level, msg, ...fields }));
    };
  const log = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

/**
 * Writes raw bytes on a fresh connection and resolves with everything the server
 * sent until it closed, or until `untilMs` passed (the socket is then closed).
 */
export function rawExchange(port: number, parts: Array<string | Buffer>, options: { untilMs?: number; gapMs?: number } = {}): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closedByServer = false;
    const timer = setTimeout(() => socket.destroy(), options.untilMs ?? 2_000);
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('end', () => (closedByServer = true));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedByServer });
    });
    socket.on('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
      }
    });
  });
}
