import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Policy } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import type { MessageScanner } from '@mailwarden/pipeline';
import { Pop3Session } from './pop3-session.js';

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
  /** RFC 1939 3 autologout. Default 10 min. */
  idleTimeoutMs?: number;
}

/**
 * The POP3 listener: one Pop3Session per client connection, each with its own upstream session.
 * Knows nothing of NATS or S3: it gets a MessageScanner.
 */
export class Pop3Proxy {
  readonly server: Server;
  private readonly sessions = new Set<Pop3Session>();
  private sequence = 0;

  constructor(private readonly opts: Pop3ProxyOptions) {
    this.server = createServer((socket) => this.accept(socket));
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
    const id = `${process.pid.toString(36)}-${(++this.sequence).toString(36)}`;
    const log = this.opts.log.child({ session: id, remote: `${socket.remoteAddress}:${socket.remotePort}` });
    const session = new Pop3Session(socket, {
      upstream: this.opts.upstream,
      scanner: this.opts.scanner,
      policy: this.opts.policy,
      log,
      connectTimeoutMs: this.opts.connectTimeoutMs ?? 10_000,
      replyTimeoutMs: this.opts.replyTimeoutMs ?? 30_000,
      retrieveTimeoutMs: this.opts.retrieveTimeoutMs ?? 10 * 60_000,
      idleTimeoutMs: this.opts.idleTimeoutMs ?? 10 * 60_000,
    });
    this.sessions.add(session);
    log.debug({ event: 'pop3.session_start' }, 'client connected');
    void session.run().finally(() => this.sessions.delete(session));
  }
}
