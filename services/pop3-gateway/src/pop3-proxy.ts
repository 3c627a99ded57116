import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Server as TlsServer, createServer as createTlsServer, type SecureContext } from 'node:tls';
import type { Policy, TlsMode } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import type { MessageScanner } from '@mailwarden/pipeline';
import { MIN_TLS_VERSION, type TlsMaterial } from '@mailwarden/tls';
import { gatewayContext } from './client-tls.js';
import { Pop3Session } from './pop3-session.js';
import type { UpstreamTlsOptions } from './upstream-pop3-client.js';
import type { DeliveredSizeMemory } from './delivered-size-memory.js';

export interface Pop3ProxyOptions {
  upstream: { host: string; port: number };
  scanner: MessageScanner;
  /** The live policy (antivirus.enabled && antivirus.pop3 decide whether RETR/TOP are scanned). */
  policy: () => Policy;
  log: Logger;
  /** Default 10 s. */
  connectTimeoutMs?: number;
  /** Each upstream reply, listing line, and silence inside a body. Default 30 s. */
  replyTimeoutMs?: number;
  /** Safety net over one retrieval + scan. Default 10 min (the scanner's own deadline comes first). */
  retrieveTimeoutMs?: number;
  /** RFC 1939 3 autologout; also the silence that ends a spliced (passthrough) session. Default 10 min. */
  idleTimeoutMs?: number;
  /** The gateway's certificate, for STLS in terminate mode and for implicit TLS; renewals apply to new handshakes. */
  tls?: TlsMaterial;
  /** POP3S: TLS from the first byte; such a listener always terminates TLS. Needs `tls`. */
  implicitTls?: boolean;
  /** How the gateway's TLS to upstream (STLS in terminate mode, or implicit) checks upstream's certificate. */
  upstreamTls?: UpstreamTlsOptions;
  /** Upstream is a POP3S server: TLS from the first byte (POP3_UPSTREAM_TLS=implicit). */
  upstreamImplicitTls?: boolean;
  /** A session went encrypted end to end (passthrough) and will not be scanned. */
  onTlsUnscanned?: (info: { client: string }) => void;
  /** Sessions served at once (POP3_MAX_CONNECTIONS); past it: `-ERR [SYS/TEMP] too many connections`. Default 500. */
  maxConnections?: number;
  /** Terminate mode: refuse the session when upstream offers no STLS (POP3_REQUIRE_UPSTREAM_TLS). Default false. */
  requireUpstreamTls?: boolean;
  /** Time one LIST/STAT may spend scanning ahead so sizes match what RETR sends (POP3_SIZE_LOOKAHEAD_MS); 0 = off. Default 10 s. */
  sizeLookaheadMs?: number;
  /** Delivered sizes remembered across sessions (the gateway wires the `mw-pop3-sizes` KV bucket). */
  sizeMemory?: DeliveredSizeMemory;
}

/**
 * The POP3 listener: one Pop3Session per client connection, each with its own upstream session
 * and the TLS policy read when it starts. Knows nothing of NATS or S3: it gets a MessageScanner.
 */
export class Pop3Proxy {
  readonly server: Server;
  private readonly sessions = new Set<Pop3Session>();
  private sequence = 0;
  /** The gateway's certificate as a TLS context, replaced when the files are renewed. */
  private secureContext: SecureContext | undefined;

  constructor(private readonly opts: Pop3ProxyOptions) {
    const { tls } = opts;
    if (opts.implicitTls && !tls) throw new Error('an implicit-TLS (POP3S) listener needs the gateway certificate');
    this.secureContext = tls && gatewayContext(tls.pair);
    if (opts.implicitTls && tls) {
      const server = createTlsServer(
        { key: tls.pair.key, cert: tls.pair.cert, minVersion: MIN_TLS_VERSION, handshakeTimeout: opts.connectTimeoutMs ?? 10_000 },
        (socket) => this.accept(socket),
      );
      server.on('tlsClientError', (err, socket) =>
        opts.log.debug({ event: 'pop3.tls_failed', remote: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'POP3S: TLS handshake with the client failed'),
      );
      this.server = server;
    } else {
      this.server = createServer((socket) => this.accept(socket));
    }
    tls?.onChange((pair) => {
      this.secureContext = gatewayContext(pair);
      if (this.server instanceof TlsServer) this.server.setSecureContext({ key: pair.key, cert: pair.cert, minVersion: MIN_TLS_VERSION });
    });
    this.server.on('error', (err) => opts.log.error({ event: 'pop3.server_error', err }, 'pop3 server error'));
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /**
   * Stops accepting; idle sessions are closed now (without QUIT upstream: nothing is deleted),
   * busy ones after their current command; whatever is left after `graceMs` is cut.
   */
  async close(graceMs = 30_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.shutdown();
    const timer = setTimeout(() => {
      for (const s of this.sessions) s.abort();
    }, graceMs);
    await closed;
    clearTimeout(timer);
  }

  private accept(socket: Socket): void {
    const limit = this.opts.maxConnections ?? 500;
    if (this.sessions.size >= limit) {
      // Refused before any upstream connection is opened.
      socket.on('error', () => undefined);
      socket.end('-ERR [SYS/TEMP] too many connections\r\n');
      setTimeout(() => socket.destroy(), 5000).unref();
      this.opts.log.warn({ event: 'pop3.too_many_connections', remote: `${socket.remoteAddress}:${socket.remotePort}`, limit }, 'connection refused: too many connections');
      return;
    }
    const id = `${process.pid.toString(36)}-${(++this.sequence).toString(36)}`;
    const log = this.opts.log.child({ session: id, remote: `${socket.remoteAddress}:${socket.remotePort}` });
    // Per session, from the live policy: a change applies to the sessions that start after it.
    const tlsMode: TlsMode = this.opts.implicitTls ? 'terminate' : this.opts.policy().tls.pop3;
    const session = new Pop3Session(socket, {
      upstream: this.opts.upstream,
      scanner: this.opts.scanner,
      policy: this.opts.policy,
      log,
      connectTimeoutMs: this.opts.connectTimeoutMs ?? 10_000,
      replyTimeoutMs: this.opts.replyTimeoutMs ?? 30_000,
      retrieveTimeoutMs: this.opts.retrieveTimeoutMs ?? 10 * 60_000,
      idleTimeoutMs: this.opts.idleTimeoutMs ?? 10 * 60_000,
      tlsMode,
      clientSecure: !!this.opts.implicitTls,
      ...(this.secureContext ? { secureContext: () => this.secureContext! } : {}),
      ...(this.opts.upstreamTls ? { upstreamTls: this.opts.upstreamTls } : {}),
      upstreamImplicitTls: !!this.opts.upstreamImplicitTls,
      ...(this.opts.onTlsUnscanned ? { onTlsUnscanned: this.opts.onTlsUnscanned } : {}),
      requireUpstreamTls: !!this.opts.requireUpstreamTls,
      sizeLookaheadMs: this.opts.sizeLookaheadMs ?? 10_000,
      ...(this.opts.sizeMemory ? { sizeMemory: this.opts.sizeMemory } : {}),
    });
    this.sessions.add(session);
    log.debug({ event: 'pop3.session_start', tlsMode, implicitTls: !!this.opts.implicitTls }, 'client connected');
    void session.run().finally(() => this.sessions.delete(session));
  }
}
