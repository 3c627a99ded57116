import './enhanced-code-patch.js';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Direction, Policy } from '@mailwarden/contracts';
import { PermFailError, TempFailError, newRef, type MessageScanner, type StoredMessage } from '@mailwarden/pipeline';
import type { Logger } from '@mailwarden/log';
import type { TlsMaterial } from '@mailwarden/tls';
import { metrics } from '@mailwarden/observability';
import { UpstreamError, UpstreamSmtpClient, type UpstreamTlsOptions } from '@mailwarden/smtp-client';
import { registerPassthrough, unregisterPassthrough } from './starttls-passthrough.js';
import { SmtpReplyError, replyText, tempFail } from './smtp-reply.js';
import { guardedBody, readToEnd } from './data-guards.js';
import { announceClient, clientIdentity } from './client-identity.js';
import { ClientGoneError, clientAborted } from './client-gone.js';
import type { QueueAcceptance } from './queue-acceptance.js';

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

/** The upstream leg of one client session, and whether a transaction is open on it. */
interface Leg {
  client?: UpstreamSmtpClient;
  inTransaction: boolean;
  tlsMode: TlsMode;
  /** Passthrough happened: the sockets are spliced, SMTP is over for the gateway. */
  handedOver?: boolean;
  /** The client's session ended: a leg still being opened must be closed, never kept. */
  closed?: boolean;
  /** XCLIENT went out on this upstream connection (once per connection; XFORWARD goes per transaction). */
  xclientSent?: boolean;
  /** Upstream refused XCLIENT/XFORWARD: not asked again in this session. */
  identityRefused?: boolean;
}

type TlsMode = Policy['tls']['smtp'];
type SessionWithCommands = SMTPServerSession & { disabledCommands?: string[] };

/**
 * SMTP proxy for one listener: the client's session is mirrored to upstream command by command
 * (MAIL and RCPT replies are upstream's), DATA is stored, scanned and rebuilt, then sent upstream,
 * and the client's final reply is upstream's. Knows nothing of NATS or S3: it gets a MessageScanner.
 */
export function createSmtpProxy(opts: SmtpProxyOptions): SMTPServer {
  const legs = new Map<string, Leg>();
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  const commandTimeoutMs = opts.commandTimeoutMs ?? 30_000;
  const dataReplyTimeoutMs = opts.dataReplyTimeoutMs ?? 10 * 60_000;
  const maxConnections = opts.maxConnections ?? 500;

  const openLeg = async (session: SMTPServerSession, leg: Leg): Promise<UpstreamSmtpClient> => {
    if (leg.client?.alive) return leg.client;
    const { client } = await UpstreamSmtpClient.connect({ ...opts.upstream, connectTimeoutMs, commandTimeoutMs, dataReplyTimeoutMs });
    try {
      // The client may leave while the leg is being opened: onClose found nothing to close then.
      const stillWanted = () => {
        if (leg.closed) throw new ClientGoneError('client left while the upstream connection was being opened');
      };
      stillWanted();
      const helloName = session.hostNameAppearsAs || opts.hostname;
      const hello = await client.hello(helloName);
      stillWanted();
      if (hello.code !== 250) throw SmtpReplyError.fromUpstream(hello);
      // Terminate: the upstream leg is encrypted whenever upstream offers it.
      if (leg.tlsMode === 'terminate' && client.has('STARTTLS')) {
        await client.startTls(helloName, opts.upstreamTls ?? { verify: false });
        stillWanted();
      }
    } catch (err) {
      client.close();
      throw err;
    }
    leg.client = client;
    leg.inTransaction = false;
    leg.xclientSent = false;
    return client;
  };

  /** XCLIENT/XFORWARD before MAIL, so upstream sees the real client (SMTP_UPSTREAM_XCLIENT=auto). */
  const announce = async (session: SMTPServerSession, leg: Leg, client: UpstreamSmtpClient): Promise<void> => {
    if (opts.clientIdentity === 'off' || leg.identityRefused) return;
    const outcome = await announceClient(client, clientIdentity(session), session.hostNameAppearsAs || opts.hostname, leg);
    if (typeof outcome === 'object') {
      leg.identityRefused = true;
      opts.log.warn(
        { event: 'smtp.client_identity_refused', session: session.id, command: outcome.refused, upstream: outcome.reply.code, reply: replyText(outcome.reply) },
        `upstream refused ${outcome.refused}: it sees the gateway as the client (authorize the gateway in smtpd_authorized_${outcome.refused.toLowerCase()}_hosts)`,
      );
    }
  };

  const upstreamDown = (session: SMTPServerSession, err: unknown): SmtpReplyError => {
    const ref = newRef();
    opts.log.warn({ event: 'upstream.unavailable', ref, session: session.id, err: (err as Error).message }, 'upstream unavailable');
    return new SmtpReplyError(451, '4.4.1', `Upstream mail server unavailable, please try again later (ref ${ref})`);
  };

  const server = new SMTPServer({
    name: opts.hostname,
    banner: 'Mailwarden ESMTP',
    size: opts.policy().limits.maxMessageBytes,
    authOptional: true,
    // STARTTLS is switched per session from the TLS policy (see onConnect).
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

    onConnect(session, cb) {
      if (legs.size >= maxConnections) {
        opts.log.warn({ event: 'smtp.too_many_connections', session: session.id, client: session.remoteAddress, limit: maxConnections }, 'connection refused: too many connections');
        return cb(new SmtpReplyError(421, '4.7.0', 'too many connections'));
      }
      const tlsMode: TlsMode = opts.implicitTls ? 'terminate' : opts.policy().tls.smtp;
      const leg: Leg = { inTransaction: false, tlsMode };
      legs.set(session.id, leg);
      const withCommands = session as SessionWithCommands;
      withCommands.disabledCommands = tlsMode === 'strip' ? ['AUTH', 'STARTTLS'] : ['AUTH'];
      // Queue mode holds no upstream session (mail is taken while upstream is down); without one
      // there is nothing to pass TLS through to, so passthrough is served as strip.
      if (opts.queue) {
        if (tlsMode === 'passthrough') withCommands.disabledCommands = ['AUTH', 'STARTTLS'];
        return cb();
      }
      // Refuse early when upstream is down, as the MTA behind us would.
      openLeg(session, leg).then(
        (client) => {
          if (tlsMode === 'passthrough') {
            // Only when both sides can do it; otherwise the session stays in the clear and is scanned.
            if (!client.has('STARTTLS')) withCommands.disabledCommands = ['AUTH', 'STARTTLS'];
            else
              registerPassthrough(session.id, async () => {
                const socket = await client.handOver();
                if (socket) {
                  leg.handedOver = true;
                  opts.log.info({ event: 'smtp.tls_passthrough', session: session.id, client: session.remoteAddress }, 'TLS passthrough: session relayed encrypted, not scanned');
                  opts.onTlsUnscanned?.({ client: `${session.remoteAddress}:${session.remotePort}`, direction: opts.direction });
                }
                return socket;
              });
          }
          cb();
        },
        (err) => {
          legs.delete(session.id);
          if (err instanceof ClientGoneError) return cb(err);
          const e = err instanceof SmtpReplyError ? err : upstreamDown(session, err);
          cb(Object.assign(e, { responseCode: e.responseCode === 451 ? 421 : e.responseCode }));
        },
      );
    },

    onMailFrom(address, session, cb) {
      if (CONTROL.test(address.address)) return cb(badAddress());
      if (opts.queue) return void opts.queue.admit().then(() => cb(), cb);
      void (async () => {
        const leg = legs.get(session.id);
        if (!leg) return cb(upstreamDown(session, new UpstreamError('session not registered')));
        let client: UpstreamSmtpClient;
        try {
          client = await openLeg(session, leg);
          // The client may have sent RSET (which smtp-server answers itself): start clean upstream.
          if (leg.inTransaction) await client.command('RSET');
          leg.inTransaction = false;
          await announce(session, leg, client);
          const params: string[] = [];
          const size = Number(address.args && (address.args as Record<string, string>).SIZE);
          if (size && client.has('SIZE')) params.push(`SIZE=${size}`);
          const body = address.args && (address.args as Record<string, string>).BODY;
          if (body && /^(7BIT|8BITMIME)$/i.test(body) && client.has('8BITMIME')) params.push(`BODY=${body.toUpperCase()}`);
          const reply = await client.command(`MAIL FROM:<${address.address}>${params.length ? ' ' + params.join(' ') : ''}`);
          if (reply.code !== 250) return cb(SmtpReplyError.fromUpstream(reply));
          leg.inTransaction = true;
          cb();
        } catch (err) {
          cb(err instanceof SmtpReplyError ? err : upstreamDown(session, err));
        }
      })();
    },

    onRcptTo(address, session, cb) {
      if (CONTROL.test(address.address)) return cb(badAddress());
      if (opts.queue) return void opts.queue.verifyRecipient(address.address).then(() => cb(), cb);
      const leg = legs.get(session.id);
      if (!leg?.client?.alive) return cb(upstreamDown(session, new UpstreamError('upstream session lost')));
      leg.client.command(`RCPT TO:<${address.address}>`).then(
        (reply) => (reply.code === 250 || reply.code === 251 ? cb() : cb(SmtpReplyError.fromUpstream(reply))),
        (err) => cb(upstreamDown(session, err)),
      );
    },

    onData(stream, session, cb) {
      if (opts.queue) return void opts.queue.accept(stream, scanRequest(session), session).then((text) => cb(null, text), cb);
      void relayData(stream, session).then(
        (text) => {
          metrics.messages.inc({ protocol: 'smtp', direction: opts.direction, outcome: 'delivered' });
          cb(null, text);
        },
        (err: Error & { responseCode?: number }) => {
          const outcome = (err.responseCode ?? 451) >= 500 ? 'refused' : 'tempfail';
          metrics.messages.inc({ protocol: 'smtp', direction: opts.direction, outcome });
          cb(err);
        },
      );
    },

    onClose(session) {
      const leg = legs.get(session.id);
      legs.delete(session.id);
      unregisterPassthrough(session.id);
      if (!leg) return;
      leg.closed = true;
      // quit() drops a leg that is in the middle of a message (no final dot, no command inside DATA).
      if (!leg.handedOver) void leg.client?.quit();
    },
  });

  async function relayData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const leg = legs.get(session.id);
    const req = scanRequest(session);
    const scanning = req.scan;
    // Bare CR/LF become CRLF (never forwarded raw: SMTP smuggling); a NUL refuses the message.
    const { body, guard, limited, refusals } = guardedBody(stream);
    const storing = scanning ? opts.scanner.scan(req, body) : opts.scanner.store(req, body);
    let stored: StoredMessage | undefined;
    try {
      stored = await Promise.race([storing, refusals, clientAborted(stream)]);
      if (!stored) throw new Error('unreachable');
      // The client left before it got a reply: it will send again, so this copy must not go out.
      if (leg?.closed) throw new ClientGoneError('client left before the message was delivered');
      if (!leg?.client?.alive) throw new UpstreamError('upstream session lost before delivery');
      const reply = await leg.client.data(await stored.open());
      leg.inTransaction = false;
      opts.log.info(
        { event: 'smtp.delivered', ref: stored.ref, scanned: stored.scanned, removed: stored.removed.length, upstream: reply.code, size: stored.size, canonicalised: guard.changed },
        `message ${stored.ref} ${reply.code === 250 ? 'delivered' : 'refused by upstream'}`,
      );
      if (reply.code !== 250) throw SmtpReplyError.fromUpstream(reply);
      return replyText(reply) || 'OK';
    } catch (err) {
      if (!stored) {
        // Stop the scanner reading a message nobody will deliver; a copy it stores anyway is removed.
        limited.destroy();
        void storing.then((m) => m.discard().catch(() => undefined), () => undefined);
      }
      await readToEnd(stream);
      if (err instanceof ClientGoneError) {
        const ref = stored?.ref ?? newRef();
        opts.log.info({ event: 'smtp.client_aborted', ref, session: session.id, err: err.message }, 'client left before its message was delivered; not delivered');
        throw tempFail(ref, 'Connection closed before the message was delivered');
      }
      if (err instanceof SmtpReplyError) throw err;
      if ((err as Error).name === 'NulByteError') {
        throw new SmtpReplyError(550, '5.6.0', 'Message contains a NUL byte; refused');
      }
      if (err instanceof PermFailError) {
        opts.log.warn({ event: 'smtp.rejected', ref: err.ref, err: err.message }, 'message refused by policy limits');
        throw new SmtpReplyError(554, '5.6.0', `Message refused: ${err.message} (ref ${err.ref})`);
      }
      if (err instanceof TempFailError) {
        opts.log.warn({ event: 'smtp.tempfail', ref: err.ref, err: err.message }, 'scan failed, temporary failure to client');
        throw tempFail(err.ref);
      }
      const ref = stored?.ref ?? newRef();
      if (leg) leg.inTransaction = !(err instanceof UpstreamError) && leg.inTransaction;
      opts.log.warn({ event: 'smtp.tempfail', ref, err: (err as Error).message }, 'delivery failed, temporary failure to client');
      throw tempFail(ref, err instanceof UpstreamError ? 'Upstream mail server failed to take the message' : undefined);
    } finally {
      void stored?.discard().catch(() => undefined);
    }
  }

  function scanRequest(session: SMTPServerSession) {
    const policy = opts.policy();
    return {
      protocol: 'smtp' as const,
      direction: opts.direction,
      mailFrom: session.envelope.mailFrom ? (session.envelope.mailFrom as SMTPServerAddress).address : '',
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
      scan: policy.antivirus.enabled && (opts.direction === 'inbound' ? policy.antivirus.smtp : policy.antivirus.smtpOutbound),
    };
  }

  opts.tls?.onChange((pair) => server.updateSecureContext({ key: pair.key, cert: pair.cert, minVersion: 'TLSv1.2' }));
  return server;
}

/** Commands are rebuilt for upstream, never forwarded raw; control characters in an address are refused. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f]/;
const badAddress = () => new SmtpReplyError(501, '5.5.4', 'Control characters (CR, LF, NUL, ...) are not allowed in an address');
