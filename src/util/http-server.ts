import type { Server } from 'node:http';

/** Starts listening (a TCP port or a unix socket path); rejects with the bind error (EADDRINUSE, EACCES). */
export function listen(server: Server, ...args: [port: number, host: string] | [path: string]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const ready = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (args.length === 2) server.listen(args[0], args[1], ready);
    else server.listen(args[0], ready);
  });
}

/** Stops listening and cuts every open connection (keep-alive, or a long stream) rather than waiting for them. */
export async function closeNow(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
