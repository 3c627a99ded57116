import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Direction } from '@mailwarden/contracts';
import { TempFailError, newRef, type MessageQueue, type ScanRequest } from '@mailwarden/pipeline';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import type { BackPressure } from './back-pressure.js';
import type { RecipientVerifier } from './recipient-verifier.js';
import { guardedBody, readToEnd } from './data-guards.js';
import { ClientGoneError, clientAborted } from './client-gone.js';
import { SmtpReplyError, tempFail } from './smtp-reply.js';
import { Prepend, receivedHeader } from './received-header.js';

export interface QueueAcceptanceOptions {
  queue: MessageQueue;
  verifier: RecipientVerifier;
  backPressure: BackPressure;
  direction: Direction;
  /** Our name in the Received header. */
  hostname: string;
  log: Logger;
}

/**
 * Queue mode (SMTP_DELIVERY=queue) for one listener: what the session does instead of mirroring
 * upstream. The proxy calls it at MAIL (back-pressure), RCPT (recipient verification) and DATA
 * (the 250 only once the message is durable: raw.eml in S3 and its job acknowledged by JetStream;
 * any failure before that is a 451 and the sender keeps the message). Errors carry their reply.
 */
export class QueueAcceptance {
  constructor(private readonly opts: QueueAcceptanceOptions) {}

  /** MAIL: refused with 451 while the queue is too deep or S3/NATS is unhealthy. */
  async admit(): Promise<void> {
    const refusal = await this.opts.backPressure.check();
    if (!refusal) return;
    metrics.queueRefusals.inc({ reason: refusal.reason });
    this.opts.log.warn({ event: 'queue.back_pressure', reason: refusal.reason }, 'new mail refused for now');
    throw refusal.error;
  }

  verifyRecipient(address: string): Promise<void> {
    return this.opts.verifier.verify(address);
  }

  /** DATA: the reply text of the 250 (quoting the reference), or an error with its wire reply. */
  async accept(stream: SMTPServerDataStream, req: ScanRequest, session: SMTPServerSession): Promise<string> {
    const { body, limited, refusals } = guardedBody(stream);
    // The trace line a relaying server adds (RFC 5321 4.4): in queue mode the gateway is one.
    const ref = newRef();
    const traced = body.pipe(new Prepend(receivedHeader(session, this.opts.hostname, ref)));
    limited.once('error', (err) => traced.destroy(err));
    try {
      // Checked again at the end of DATA: S3 or NATS may have gone since MAIL.
      const queuing = this.admit().then(() => this.opts.queue.enqueue(req, traced, ref));
      await Promise.race([queuing, refusals, clientAborted(stream)]);
      metrics.messages.inc({ protocol: 'smtp', direction: this.opts.direction, outcome: 'queued' });
      return `2.0.0 Ok: queued as ${ref}`;
    } catch (err) {
      limited.destroy();
      traced.destroy();
      await readToEnd(stream);
      metrics.messages.inc({ protocol: 'smtp', direction: this.opts.direction, outcome: err instanceof SmtpReplyError && err.responseCode >= 500 ? 'refused' : 'tempfail' });
      if (err instanceof SmtpReplyError) throw err;
      if ((err as Error).name === 'NulByteError') throw new SmtpReplyError(550, '5.6.0', 'Message contains a NUL byte; refused');
      this.opts.log.warn({ event: err instanceof ClientGoneError ? 'smtp.client_aborted' : 'smtp.tempfail', ref, err: (err as Error).message }, 'message not queued, temporary failure to client');
      throw tempFail(err instanceof TempFailError ? err.ref : ref, 'Temporary failure while queueing the message');
    }
  }
}
