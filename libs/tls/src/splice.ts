import type { Socket } from 'node:net';

/**
 * TLS passthrough (SMTP STARTTLS and POP3 STLS): joins the client's socket and upstream's, so the
 * client's TLS session is with upstream itself; the gateway only relays bytes, both ways, with
 * backpressure (pipe). Either side closing, failing, or the client's side staying silent for
 * `idleMs` (a dead peer behind a NAT never closes) ends both. Resolves when both are closed.
 */
export function splice(client: Socket, upstream: Socket, idleMs: number): Promise<void> {
  const closed = Promise.all([closedOnce(client), closedOnce(upstream)]).then(() => undefined);
  const end = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
  client.once('close', end);
  upstream.once('close', end);
  client.setTimeout(idleMs, end);
  client.pipe(upstream);
  upstream.pipe(client);
  return closed;
}

function closedOnce(socket: Socket): Promise<void> {
  return socket.destroyed && socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}
