import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MIN_TLS_VERSION } from './tls-material.js';

/** How the gateway checks upstream's certificate when it opens TLS to upstream (implicit, STARTTLS or STLS). */
export interface UpstreamTlsOptions {
  /** Verify upstream's certificate (against `ca` when given, else the system store). */
  verify: boolean;
  ca?: Buffer;
  /** SNI and the name checked; default: the upstream host when it is a name (not an IP address). */
  servername?: string;
}

export interface UpstreamConnectOptions {
  host: string;
  port: number;
  /** Deadline for the TCP connect, or for the TLS handshake. */
  timeoutMs: number;
  /** TLS: implicit from the first byte, or, with `socket`, an upgrade (STARTTLS/STLS) of that socket. */
  tls?: UpstreamTlsOptions;
  socket?: Socket;
  /** The error the caller throws (its own class, carrying its wire reply), from a message and a cause. */
  fail: (message: string, cause?: Error) => Error;
}

/**
 * The one way both upstream clients (SMTP and POP3) open their leg: a TCP connect or a TLS
 * handshake (implicit, or upgrading a connected socket) with a deadline, TLS 1.2 or later, the
 * certificate checked as configured. Node's sockets have no connect deadline of their own.
 */
export function connectUpstream(opts: UpstreamConnectOptions): Promise<Socket> {
  const where = `upstream ${opts.host}:${opts.port}`;
  const tls = opts.tls;
  if (opts.socket && !tls) return Promise.reject(new Error('connectUpstream: an upgrade needs TLS options'));
  return new Promise<Socket>((resolve, reject) => {
    const s = tls
      ? tlsConnect({
          ...(opts.socket ? { socket: opts.socket } : { host: opts.host, port: opts.port }),
          servername: tls.servername ?? (isIP(opts.host) ? undefined : opts.host),
          minVersion: MIN_TLS_VERSION,
          rejectUnauthorized: tls.verify,
          ...(tls.ca ? { ca: tls.ca } : {}),
        })
      : connect({ host: opts.host, port: opts.port });
    const what = tls ? 'TLS handshake' : 'connect';
    const timer = setTimeout(() => {
      s.destroy();
      reject(opts.fail(`${where}: ${what} timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    s.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      s.destroy();
      reject(opts.fail(`${where}: ${tls ? 'TLS handshake failed: ' : ''}${err.message}`, err));
    });
  });
}
