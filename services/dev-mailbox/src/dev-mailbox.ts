import { unlink } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from '@mailwarden/log';
import { parseHostPort } from '@mailwarden/config';
import { MaildirStore, isValidMailboxName, type Delivery, type MailOwner } from './maildir.js';

/** Default: local parts starting with `reject` are refused at RCPT (tests rely on it). */
export const DEFAULT_REJECT_PATTERN = /^reject[^@]*(@|$)/i;
/** Default: local parts starting with `tempfail` get a temporary failure at RCPT. */
export const DEFAULT_TEMPFAIL_PATTERN = /^tempfail[^@]*(@|$)/i;
/** Default size limit (advertised with SIZE): 100 MiB. */
export const DEFAULT_MAX_SIZE = 100 * 1024 * 1024;

export interface DevMailboxOptions {
  /** `host:port` or `{ host, port }`; port 0 picks a free port. */
  listen: string | { host: string; port: number };
  /** Maildir root: messages land in `<mailRoot>/<localpart>/new/`. */
  mailRoot: string;
  /** Recipients (full address) matching this get `550 5.1.1 … User unknown` at RCPT. */
  rejectPattern?: RegExp;
  /** Recipients matching this get `450 4.2.1 … temporarily unavailable` at RCPT. */
  tempfailPattern?: RegExp;
  /** Size limit in bytes, advertised with SIZE; bigger messages get 552. */
  maxSize?: number;
  /** Owner of written files; default uid/gid 65534 when running as root. */
  owner?: MailOwner | null;
  /** Name in the greeting and EHLO reply. */
  hostname?: string;
  logger?: Logger;
  /** Offer STARTTLS with this certificate (default: no TLS). */
  tls?: { key: Buffer; cert: Buffer };
  /** Called after each accepted message is on disk. */
  onMessage?: (info: DeliveredMessage) => void;
}

export interface DeliveredMessage extends Delivery {
  mailFrom: string;
  rcptTo: string[];
  /** The message came over TLS (STARTTLS). */
  secure: boolean;
}

export interface DevMailbox {
  /** `host:port` the SMTP server listens on. */
  address: string;
  host: string;
  port: number;
  mailRoot: string;
  stop(): Promise<void>;
}

class SmtpReplyError extends Error {
  override name = 'SmtpReplyError';
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

function parseListen(listen: DevMailboxOptions['listen']): { host: string; port: number } {
  return typeof listen === 'string' ? parseHostPort(listen, 'dev-mailbox listen') : listen;
}

/** Local part of an address, lower-cased (Dovecot lower-cases user names too: `%Lu`). */
export function mailboxOf(address: string): string {
  const at = address.lastIndexOf('@');
  return (at < 0 ? address : address.slice(0, at)).toLowerCase();
}

/**
 * The local upstream mail server for `npm start` and tests: SMTP without auth (STARTTLS only if asked),
 * every accepted message written to a maildir per recipient, read back through Dovecot POP3.
 */
export async function startDevMailbox(opts: DevMailboxOptions): Promise<DevMailbox> {
  const { host, port } = parseListen(opts.listen);
  const store = new MaildirStore(opts.mailRoot, opts.owner);
  const reject = opts.rejectPattern ?? DEFAULT_REJECT_PATTERN;
  const tempfail = opts.tempfailPattern ?? DEFAULT_TEMPFAIL_PATTERN;
  const log = opts.logger;

  const server = new SMTPServer({
    name: opts.hostname ?? 'dev-mailbox.local',
    banner: 'Mailwarden dev mailbox',
    authOptional: true,
    // STARTTLS only when a certificate is given (tests of the gateway's TLS modes need such an upstream).
    disabledCommands: opts.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    hideSTARTTLS: !opts.tls,
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' as const } : {}),
    hideENHANCEDSTATUSCODES: false,
    size: opts.maxSize ?? DEFAULT_MAX_SIZE,
    logger: false,
    closeTimeout: 2000,
    // smtp-server's own reverse DNS lookup of the client would only slow tests down.
    disableReverseLookup: true,

    onRcptTo(address: SMTPServerAddress, _session: SMTPServerSession, callback: (err?: Error | null) => void) {
      const rcpt = address.address;
      if (reject.test(rcpt)) {
        log?.info({ event: 'rcpt_rejected', rcpt }, 'recipient rejected by pattern');
        return callback(new SmtpReplyError(550, `<${rcpt}>: Recipient address rejected: User unknown`));
      }
      if (tempfail.test(rcpt)) {
        return callback(new SmtpReplyError(450, `<${rcpt}>: Recipient address temporarily unavailable`));
      }
      if (!isValidMailboxName(mailboxOf(rcpt))) {
        return callback(new SmtpReplyError(553, `<${rcpt}>: Recipient address rejected: mailbox name not allowed`));
      }
      callback();
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void) {
      const rcptTo = session.envelope.rcptTo.map((r) => r.address);
      const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      store
        .deliver(stream, rcptTo.map(mailboxOf))
        .then(async (delivery) => {
          if (stream.sizeExceeded) {
            await Promise.all(delivery.files.map((f) => unlink(f).catch(() => undefined)));
            return callback(new SmtpReplyError(552, `Message exceeds fixed maximum message size ${opts.maxSize ?? DEFAULT_MAX_SIZE}`));
          }
          log?.info({ event: 'delivered', id: delivery.id, size: delivery.size, mailFrom, rcptTo }, 'message delivered');
          opts.onMessage?.({ ...delivery, mailFrom, rcptTo, secure: session.secure });
          callback(null, `OK: queued as ${delivery.id}`);
        })
        .catch((err: unknown) => {
          log?.error({ event: 'delivery_failed', err, rcptTo }, 'delivery failed');
          stream.resume(); // drain whatever is left so the session can answer
          callback(new SmtpReplyError(451, 'Requested action aborted: local error in processing'));
        });
    },
  });
  server.on('error', (err) => log?.error({ event: 'smtp_error', err }, 'SMTP server error'));

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(port, host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const addr = server.server.address() as AddressInfo;
  const bound = { host, port: addr.port };
  return {
    address: `${host.includes(':') ? `[${host}]` : host}:${bound.port}`,
    host: bound.host,
    port: bound.port,
    mailRoot: opts.mailRoot,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
