import './enhanced-code-patch.js';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { Direction, Policy } from '@mailwarden/contracts';
import type { MessageScanner } from '@mailwarden/pipeline';
import type { Logger } from '@mailwarden/log';
import type { TlsMaterial } from '@mailwarden/tls';
import type { UpstreamTlsOptions } from '@mailwarden/smtp-client';
import { SmtpReplyError } from './smtp-reply.js';
import { readToEnd } from './data-guards.js';
import type { QueueAcceptance } from './queue-acceptance.js';
import { QueueRoute } from './mail-route.js';
import { UpstreamRoute } from './upstream-route.js';
import { SmtpUpstreamLeg } from './upstream-leg.js';
import { SmtpSession } from './smtp-session.js';

export interface SmtpProxyOptions {
  direction: Direction;
  hostname: string;
  upstream: { host: string; port: number };
  scanner: MessageScanner;
  policy: () => Policy;
  log: Logger;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Deadline for upstream's reply to the final dot (RFC 5321 4.5.3.2.6: 10 min). Default 10 min. */
  dataReplyTimeoutMs?: number;
  /** Sessions served at once (SMTP_MAX_CONNECTIONS); past it: 421 4.7.0. Default 500. */
  maxConnections?: number;
  /** Pass the client's address upstream with XCLIENT or XFORWARD when upstream offers it (SMTP_UPSTREAM_XCLIENT). Default auto. */
  clientIdentity?: 'auto' | 'off';
  /** The gateway's certificate, for STARTTLS in terminate mode and for implicit TLS. */
  tls?: TlsMaterial;
  /** SMTPS: TLS from the first byte; such a listener always terminates TLS. */
  implicitTls?: boolean;
  /** How the upstream leg's STARTTLS (terminate mode) checks upstream's certificate. */
  upstreamTls?: UpstreamTlsOptions;
  /** A session went encrypted end to end (passthrough) and will not be scanned. */
  onTlsUnscanned?: (info: { client: string; direction: Direction }) => void;
  /** Queue mode (SMTP_DELIVERY=queue): no upstream leg; MAIL, RCPT and DATA go through this instead. */
  queue?: QueueAcceptance;
}

/**
 * SMTP proxy for one listener: smtp-server's callbacks, wired to one SmtpSession per connection
 * (which checks the order of the verbs) and its route: the connection's own upstream leg, where
 * the session is mirrored command by command and DATA is scanned then sent (proxy mode), or the
 * queue. Knows nothing of NATS or S3: it gets a MessageScanner (or a QueueAcceptance).
 */
export function createSmtpProxy(opts: SmtpProxyOptions): SMTPServer {
  const sessions = new Map<string, SmtpSession>();
  const maxConnections = opts.maxConnections ?? 500;

  const server = new SMTPServer({
    name: opts.hostname,
    banner: 'Mailwarden ESMTP',
    size: opts.policy().limits.maxMessageBytes,
    authOptional: true,
    // STARTTLS is switched per session from the TLS policy (see SmtpSession.connect).
    disabledCommands: ['AUTH'],
    secure: !!opts.implicitTls,
    ...(opts.tls ? { key: opts.tls.pair.key, cert: opts.tls.pair.cert } : {}),
    minVersion: 'TLSv1.2',
    hideENHANCEDSTATUSCODES: false,
    hideDSN: true,
    hideSMTPUTF8: true,
    hideREQUIRETLS: true,
    logger: false,
    socketTimeout: 5 * 60_000,
    // Sessions are counted in onConnect (421 4.7.0 past maxConnections); this only bounds sockets
    // still waiting for it (smtp-server's early-talker delay and reverse lookup).
    maxClients: maxConnections * 2,

    onConnect(conn, cb) {
      if (sessions.size >= maxConnections) {
        opts.log.warn({ event: 'smtp.too_many_connections', session: conn.id, client: conn.remoteAddress, limit: maxConnections }, 'connection refused: too many connections');
        return cb(new SmtpReplyError(421, '4.7.0', 'too many connections'));
      }
      const session = openSession(conn, opts);
      sessions.set(conn.id, session);
      session.connect().then(
        () => cb(),
        (err: Error) => {
          sessions.delete(conn.id);
          cb(err);
        },
      );
    },

    onMailFrom(address, conn, cb) {
      const session = sessions.get(conn.id);
      if (!session) return cb(notRegistered());
      // smtp-server answers RSET, EHLO and HELO itself and calls no hook: a MAIL it lets through
      // while the session is mid-transaction means the client reset it.
      if (session.inTransaction) session.reset();
      session.mailFrom(address).then(() => cb(), cb);
    },

    onRcptTo(address, conn, cb) {
      const session = sessions.get(conn.id);
      if (!session) return cb(notRegistered());
      session.rcptTo(address).then(() => cb(), cb);
    },

    onData(stream, conn, cb) {
      const session = sessions.get(conn.id);
      if (!session) return void readToEnd(stream).then(() => cb(notRegistered()));
      session.data(stream).then((text) => cb(null, text), cb);
    },

    onClose(conn) {
      sessions.get(conn.id)?.close();
      sessions.delete(conn.id);
    },
  });

  opts.tls?.onChange((pair) => server.updateSecureContext({ key: pair.key, cert: pair.cert, minVersion: 'TLSv1.2' }));
  return server;
}

/** The session for a connection smtp-server just accepted, with its route: the queue, or its own upstream leg. */
function openSession(conn: SMTPServerSession, opts: SmtpProxyOptions): SmtpSession {
  const tlsMode = opts.implicitTls ? 'terminate' : opts.policy().tls.smtp;
  const route = opts.queue
    ? new QueueRoute(opts.queue, conn)
    : new UpstreamRoute(
        new SmtpUpstreamLeg(conn, {
          upstream: opts.upstream,
          connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
          commandTimeoutMs: opts.commandTimeoutMs ?? 30_000,
          dataReplyTimeoutMs: opts.dataReplyTimeoutMs ?? 10 * 60_000,
          hostname: opts.hostname,
          tlsMode,
          ...(opts.upstreamTls ? { upstreamTls: opts.upstreamTls } : {}),
          ...(opts.clientIdentity ? { clientIdentity: opts.clientIdentity } : {}),
          log: opts.log,
        }),
        { scanner: opts.scanner, direction: opts.direction, log: opts.log, sessionId: conn.id },
      );
  return new SmtpSession(conn, { direction: opts.direction, policy: opts.policy, log: opts.log, tlsMode, route, ...(opts.onTlsUnscanned ? { onTlsUnscanned: opts.onTlsUnscanned } : {}) });
}

/** Not expected: smtp-server passes no command for a connection it has not greeted or has closed. */
const notRegistered = () => new SmtpReplyError(451, '4.3.0', 'Session not found, please try again later');
