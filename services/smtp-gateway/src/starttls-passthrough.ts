import type { Socket } from 'node:net';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { splice } from '@mailwarden/tls';

/**
 * TLS passthrough (the seed's "Enable TLS"): when the client asks for STARTTLS, the gateway
 * forwards it to upstream and, once upstream said 220, stops speaking SMTP and relays bytes both
 * ways, so the client's TLS handshake is with upstream itself. smtp-server has no hook for this,
 * so `handler_STARTTLS` is wrapped: sessions registered here get the takeover, others the normal
 * STARTTLS (terminate mode) of smtp-server.
 */
export type PassthroughHook = () => Promise<Socket | undefined>;

interface ConnectionInternals {
  session: { id: string };
  secure: boolean;
  _socket: Socket;
  _parser: { isClosed: boolean } | false;
  _upgrading: boolean;
  send(code: number, data?: string, context?: string | false): void;
}

const hooks = new Map<string, PassthroughHook>();

/** Silence (from the client) that ends a spliced session: RFC 5321 4.5.3.2.7 gives a server 5 minutes per command, a TLS session idles longer between messages. */
const PASSTHROUGH_IDLE_MS = 10 * 60_000;

export function registerPassthrough(sessionId: string, hook: PassthroughHook): void {
  hooks.set(sessionId, hook);
}

/** Sessions registered for passthrough now (each is removed when its session closes). */
export function passthroughSessions(): number {
  return hooks.size;
}

export function unregisterPassthrough(sessionId: string): void {
  hooks.delete(sessionId);
}

type Handler = (this: ConnectionInternals, command: Buffer, callback: () => void) => void;
const proto = SMTPConnection.prototype as unknown as { handler_STARTTLS: Handler; __mwPassthrough?: boolean };
if (!proto.__mwPassthrough) {
  const original = proto.handler_STARTTLS;
  proto.handler_STARTTLS = function (command, callback) {
    const hook = hooks.get(this.session.id);
    if (!hook || this.secure) return original.call(this, command, callback);
    hook().then(
      (upstream) => {
        if (!upstream) {
          this.send(454, '4.7.0 TLS not available due to temporary reason');
          return callback();
        }
        handOver(this, upstream);
        setImmediate(callback);
      },
      () => {
        this.send(454, '4.7.0 TLS not available due to temporary reason');
        callback();
      },
    );
  };
  proto.__mwPassthrough = true;
}

/** Retires smtp-server's parser (like its own upgrade does) and joins the two sockets. */
function handOver(conn: ConnectionInternals, upstream: Socket): void {
  const client = conn._socket;
  if (conn._parser) {
    client.unpipe(conn._parser as unknown as NodeJS.WritableStream);
    // Anything pipelined after STARTTLS arrived in plaintext: dropped, never relayed.
    conn._parser.isClosed = true;
  }
  conn._upgrading = true;
  // smtp-server's own command timeout goes; the splice has its idle timeout instead
  client.setTimeout(0);
  client.removeAllListeners('timeout');
  client.write('220 2.0.0 Ready to start TLS\r\n');
  void splice(client, upstream, PASSTHROUGH_IDLE_MS);
}
