import type { Readable } from 'node:stream';
import { replyText, type SmtpReply } from './smtp-reply.js';
import type { UpstreamSmtpClient } from './upstream-smtp-client.js';

export interface Envelope {
  /** MAIL FROM (empty for the null sender). */
  from: string;
  to: string[];
}

/** Each recipient's outcome: its RCPT reply when refused there, else the reply to the final dot. */
export interface TransactionReport {
  /** The reply to MAIL FROM when upstream refused it (then every recipient has it as outcome). */
  mail?: SmtpReply;
  outcomes: { recipient: string; code: number; reply: string }[];
  /** The reply to the final dot, when the message was sent. */
  final?: SmtpReply;
}

const text = (r: SmtpReply) => `${r.code} ${replyText(r)}`.trim();

/**
 * One mail transaction (MAIL, RCPT…, DATA) on an open session, with an outcome per recipient:
 * 2xx delivered, 4xx deferred, 5xx failed. Upstream's refusals are outcomes, not errors; a
 * connection failure or a deadline throws (UpstreamError) and leaves the session unusable.
 * After it the session is ready for the next transaction (RSET sent when nothing was sent).
 */
export async function sendTransaction(
  client: UpstreamSmtpClient,
  envelope: Envelope,
  message: Readable,
  /** Runs once a recipient is accepted, before DATA (a queue records that upstream may get the message); a rejection aborts. */
  beforeData?: () => Promise<void>,
): Promise<TransactionReport> {
  try {
    const mail = await client.command(`MAIL FROM:<${envelope.from}>`);
    if (mail.code >= 400) {
      await client.command('RSET');
      return { mail, outcomes: envelope.to.map((recipient) => ({ recipient, code: mail.code, reply: text(mail) })) };
    }
    const refused: TransactionReport['outcomes'] = [];
    const accepted: string[] = [];
    for (const recipient of envelope.to) {
      const reply = await client.command(`RCPT TO:<${recipient}>`);
      if (reply.code < 400) accepted.push(recipient);
      else refused.push({ recipient, code: reply.code, reply: text(reply) });
    }
    if (!accepted.length) {
      await client.command('RSET');
      return { outcomes: refused };
    }
    if (beforeData) {
      try {
        await beforeData();
      } catch (err) {
        await client.command('RSET').catch(() => undefined);
        throw err;
      }
    }
    const final = await client.data(message);
    return { final, outcomes: [...accepted.map((recipient) => ({ recipient, code: final.code, reply: text(final) })), ...refused] };
  } finally {
    message.destroy();
  }
}
