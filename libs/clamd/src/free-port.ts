import { createServer } from 'node:net';

/**
 * Asks the OS for a currently free TCP port on `host` (bind port 0, read it, close).
 * There is a small window before the caller binds it; fine for tests and local stacks.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') {
        server.close();
        reject(new Error(`freePort: unexpected server address ${String(addr)}`));
        return;
      }
      const port = addr.port;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
