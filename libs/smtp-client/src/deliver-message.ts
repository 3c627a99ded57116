import type { Readable } from 'node:stream';
import { replyText, type SmtpReply } from './smtp-reply.js';
import { sendTransaction } from './transaction.js';
import { UpstreamError, UpstreamSmtpClient, type UpstreamOptions } from './upstream-smtp-client.js';

export interface Delivery {
  /** MAIL FROM (empty for the null sender). */
  from: string;
  to: string[];
  /** The message, CRLF line endings, not dot-stuffed. */
  message: Readable;
  /** Name said in EHLO. */
  helloName: string;
}

export interface DeliveryReport {
  /** Recipients upstream accepted at RCPT. */
  accepted: string[];
  /** Recipients upstream refused, with its reply. */
  rejected: { recipient: string; reply: string }[];
  /** The reply to the final dot, `250 …`. */
  reply: string;
}

/** Upstream refused the message (or every recipient); `code` is its reply code. */
export class DeliveryError extends UpstreamError {
  override name = 'DeliveryError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One whole message to an SMTP server in one session (EHLO, MAIL, RCPT…, DATA, QUIT), with the
 * deadlines of UpstreamSmtpClient on every step. Resolves when upstream accepted the message for
 * at least one recipient; rejects with DeliveryError when it refused, UpstreamError on a failure.
 */
export async function deliverMessage(server: UpstreamOptions, delivery: Delivery): Promise<DeliveryReport> {
  if (!delivery.to.length) throw new DeliveryError(0, 'no recipients');
  const { client } = await UpstreamSmtpClient.connect(server);
  const expect = (reply: SmtpReply, what: string): void => {
    if (reply.code >= 400) throw new DeliveryError(reply.code, `upstream refused ${what}: ${reply.code} ${replyText(reply)}`);
  };
  try {
    expect(await client.hello(delivery.helloName), 'EHLO');
    const report = await sendTransaction(client, delivery, delivery.message);
    if (report.mail) expect(report.mail, 'MAIL FROM');
    if (report.final) expect(report.final, 'the message');
    const accepted = report.outcomes.filter((o) => o.code < 400).map((o) => o.recipient);
    const rejected = report.outcomes.filter((o) => o.code >= 400).map((o) => ({ recipient: o.recipient, reply: o.reply }));
    if (!report.final) throw new DeliveryError(550, `upstream refused every recipient: ${rejected.map((r) => `${r.recipient}: ${r.reply}`).join('; ')}`);
    return { accepted, rejected, reply: `${report.final.code} ${replyText(report.final)}` };
  } finally {
    delivery.message.destroy();
    await client.quit();
  }
}
