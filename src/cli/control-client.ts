import { request } from 'node:http';
import { userInfo } from 'node:os';
import { UsageError } from '../errors.js';

/** No daemon answers on the control socket (commands that can work without one catch this). */
export class DaemonNotRunning extends UsageError {}

/** Who asked, for the audit log and `plumb status` ("paused by alice"). The socket's group is the access control. */
export function requester(env: NodeJS.ProcessEnv): string {
  const user = userInfo().username;
  return env.SUDO_USER && env.SUDO_USER !== user ? `${user} (sudo from ${env.SUDO_USER})` : user;
}

/**
 * One request to the daemon's control socket. NDJSON answers are handed over
 * line by line as they arrive (for `sync --wait` progress).
 */
export function callDaemon(socketPath: string, path: string, body: unknown, onLine?: (line: unknown) => void): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let buffer = '';
      let last: unknown;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        if (!onLine) return;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line.trim()) onLine((last = JSON.parse(line)));
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: onLine ? last : buffer ? JSON.parse(buffer) : null }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new DaemonNotRunning(`the daemon is not running: no control socket at ${socketPath} (systemctl start plumb)`));
      else if (err.code === 'EACCES') reject(new UsageError(`no permission on ${socketPath}: the control socket is for members of its group`));
      else reject(err);
    });
    req.end(payload);
  });
}
