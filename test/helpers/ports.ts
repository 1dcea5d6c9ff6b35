/** TCP ports for tests: free a moment ago, so best effort (another process may take one before it is used). */
import { createServer, type Server } from 'node:net';

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port the kernel picked for `host` (free when this resolves). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await listen(server, 0, host);
  const addr = server.address();
  await close(server);
  if (addr === null || typeof addr !== 'object') throw new Error(`no port from a listener on ${host}`);
  return addr.port;
}

export interface FreePortRangeOptions {
  host?: string;
  /** Random ranges tried before giving up. */
  attempts?: number;
}

/** The first of `count` consecutive ports on `host` that were all free a moment ago (a random base in 20000-49999). */
export async function freePortRange(count: number, opts: FreePortRangeOptions = {}): Promise<number> {
  const { host = '127.0.0.1', attempts = 20 } = opts;
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const servers: Server[] = [];
    try {
      for (let i = 0; i < count; i += 1) {
        const server = createServer();
        servers.push(server);
        await listen(server, base + i, host);
      }
      return base;
    } catch {
      // Taken: try another range.
    } finally {
      await Promise.all(servers.filter((s) => s.listening).map(close));
    }
  }
  throw new Error(`no ${count} free consecutive ports on ${host} after ${attempts} tries`);
}
