import type { Socket } from 'node:net';
import type { SMTPServerAddress, SMTPServerDataStream } from 'smtp-server';
import type { Direction } from '@mailwarden/contracts';
import { newRef, type MessageScanner, type ScanRequest } from '@mailwarden/pipeline';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import { UpstreamError } from '@mailwarden/smtp-client';
import { ClientGoneError } from './client-gone.js';
import type { MailRoute } from './mail-route.js';
import { scanAndDeliver } from './scan-and-deliver.js';
import { SmtpReplyError } from './smtp-reply.js';
import type { UpstreamLeg } from './upstream-leg.js';

export interface UpstreamRouteOptions {
  scanner: MessageScanner;
  direction: Direction;
  log: Logger;
  /** The client session's id, for the logs. */
  sessionId: string;
}

/**
 * Proxy mode: the client's session is mirrored on its own upstream leg (MAIL and RCPT replies are
 * upstream's), DATA is stored and scanned, then sent over that leg, and the final reply is upstream's.
 */
export class UpstreamRoute implements MailRoute {
  constructor(
    private readonly leg: UpstreamLeg,
    private readonly opts: UpstreamRouteOptions,
  ) {}

  /** An upstream that is down refuses the session with 421, as the MTA behind us would. */
  async open(): Promise<void> {
    try {
      await this.leg.open();
    } catch (err) {
      if (err instanceof ClientGoneError) throw err;
      const e = err instanceof SmtpReplyError ? err : this.upstreamDown(err);
      throw Object.assign(e, { responseCode: e.responseCode === 451 ? 421 : e.responseCode });
    }
  }

  canPassThroughTls(): boolean {
    return this.leg.has('STARTTLS');
  }

  handOver(): Promise<Socket | undefined> {
    return this.leg.handOver();
  }

  async mail(address: SMTPServerAddress): Promise<void> {
    let reply;
    try {
      reply = await this.leg.mail(address);
    } catch (err) {
      throw err instanceof SmtpReplyError ? err : this.upstreamDown(err);
    }
    if (reply.code !== 250) throw SmtpReplyError.fromUpstream(reply);
  }

  async rcpt(address: string): Promise<void> {
    if (!this.leg.alive) throw this.upstreamDown(new UpstreamError('upstream session lost'));
    let reply;
    try {
      reply = await this.leg.rcpt(address);
    } catch (err) {
      throw this.upstreamDown(err);
    }
    if (reply.code !== 250 && reply.code !== 251) throw SmtpReplyError.fromUpstream(reply);
  }

  async data(stream: SMTPServerDataStream, req: ScanRequest): Promise<string> {
    const { scanner, log, direction } = this.opts;
    try {
      const text = await scanAndDeliver(stream, req, { scanner, log, leg: this.leg, sessionId: this.opts.sessionId });
      metrics.messages.inc({ protocol: 'smtp', direction, outcome: 'delivered' });
      return text;
    } catch (err) {
      const outcome = ((err as { responseCode?: number }).responseCode ?? 451) >= 500 ? 'refused' : 'tempfail';
      metrics.messages.inc({ protocol: 'smtp', direction, outcome });
      throw err;
    }
  }

  close(): void {
    this.leg.close();
  }

  private upstreamDown(err: unknown): SmtpReplyError {
    const ref = newRef();
    this.opts.log.warn({ event: 'upstream.unavailable', ref, session: this.opts.sessionId, err: (err as Error).message }, 'upstream unavailable');
    return new SmtpReplyError(451, '4.4.1', `Upstream mail server unavailable, please try again later (ref ${ref})`);
  }
}
