import { randomBytes } from 'node:crypto';
import type { RecipientOutcome } from '@mailwarden/contracts';

export interface DsnInput {
  /** Our name (Reporting-MTA, the From's domain). */
  hostname: string;
  /** The original message's reference (quoted to the sender). */
  ref: string;
  /** Reference of this DSN (its Message-ID). */
  dsnRef: string;
  sender: string;
  receivedAt: string;
  /** Where the delivery was tried (Remote-MTA). */
  upstream: string;
  failed: RecipientOutcome[];
  /** The original's header block (text/rfc822-headers), CRLF line endings. */
  headers: Buffer;
}

/** The enhanced status of a reply (`550 5.1.1 …` → 5.1.1); else one from its class. */
export function statusOf(o: RecipientOutcome): string {
  const m = /(?:^|\s)([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/.exec(o.reply);
  if (m) return m[1]!;
  return o.code >= 500 ? '5.0.0' : '4.4.7';
}

/** Header-safe: no CR, LF or other controls in what comes from elsewhere. */
// eslint-disable-next-line no-control-regex -- stripping control characters is the point
const clean = (s: string) => s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();

/**
 * A delivery status notification (RFC 3464): `multipart/report; report-type=delivery-status` with
 * a human-readable part, the `message/delivery-status` part (one block per failed recipient) and
 * the original's header block (`text/rfc822-headers`, RFC 6522), so the sender sees which message
 * it was without getting the content (which may be what was removed) back. Sent from the null
 * sender (RFC 5321 4.5.5), so it can never bounce itself.
 */
export function buildDsn(input: DsnInput): Buffer {
  const boundary = `mw-dsn-${randomBytes(12).toString('hex')}`;
  const host = clean(input.hostname);
  const lines = (a: string[]) => a.join('\r\n');
  const human = lines([
    `This is the mail system at ${host}.`,
    '',
    `Your message (reference ${input.ref}), received ${input.receivedAt}, could not be delivered`,
    'to the following recipients, and the delivery was given up:',
    '',
    ...input.failed.map((f) => `  <${clean(f.recipient)}>: ${clean(f.reply) || 'no answer'}`),
    '',
    'The headers of your message are attached.',
  ]);
  const perRecipient = input.failed.map((f) =>
    lines([
      `Final-Recipient: rfc822; ${clean(f.recipient)}`,
      'Action: failed',
      `Status: ${statusOf(f)}`,
      `Remote-MTA: dns; ${clean(input.upstream)}`,
      ...(f.code ? [`Diagnostic-Code: smtp; ${clean(f.reply)}`] : []),
    ]),
  );
  const status = lines([`Reporting-MTA: dns; ${host}`, `X-Mailwarden-Ref: ${input.ref}`, `Arrival-Date: ${new Date(input.receivedAt).toUTCString()}`, '', perRecipient.join('\r\n\r\n')]);
  let headers = input.headers.toString('latin1');
  if (!headers.endsWith('\r\n')) headers += '\r\n';
  const msg = lines([
    `From: Mail Delivery System <MAILER-DAEMON@${host}>`,
    `To: <${clean(input.sender)}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${input.dsnRef}@${host}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Description: Notification',
    '',
    human,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    status,
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Description: Undelivered message headers',
    '',
    headers,
    `--${boundary}--`,
    '',
  ]);
  return Buffer.from(msg, 'latin1');
}
