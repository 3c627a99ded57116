import type { Socket } from 'node:net';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { ScanRequest } from '@mailwarden/pipeline';
import type { QueueAcceptance } from './queue-acceptance.js';

/**
 * Where a session's transaction goes once the session has checked the order of the verbs: the
 * held upstream leg (proxy mode, UpstreamRoute) or the queue (queue mode, QueueRoute). Every
 * rejection carries the client's reply (an SmtpReplyError), or is a ClientGoneError.
 */
export interface MailRoute {
  /** Before the greeting (proxy mode opens the upstream leg: refused early when upstream is down). */
  open(): Promise<void>;
  /** The client's STARTTLS can be relayed to upstream (TLS passthrough). */
  canPassThroughTls(): boolean;
  /** Passthrough: STARTTLS upstream; the raw upstream socket once it said 220. */
  handOver(): Promise<Socket | undefined>;
  mail(address: SMTPServerAddress): Promise<void>;
  rcpt(address: string): Promise<void>;
  /** DATA: the text of the client's 250; the one hand-off that differs most between the modes. */
  data(stream: SMTPServerDataStream, req: ScanRequest): Promise<string>;
  /** The client left. */
  close(): void;
}

/** Queue mode: no upstream session is held (mail is taken while upstream is down). */
export class QueueRoute implements MailRoute {
  constructor(
    private readonly queue: QueueAcceptance,
    /** smtp-server's session for the connection (the client, for the Received line). */
    private readonly conn: SMTPServerSession,
  ) {}

  async open(): Promise<void> {}

  /** Without an upstream session there is nothing to pass TLS through to: passthrough is served as strip. */
  canPassThroughTls(): boolean {
    return false;
  }

  async handOver(): Promise<undefined> {
    return undefined;
  }

  mail(): Promise<void> {
    return this.queue.admit();
  }

  rcpt(address: string): Promise<void> {
    return this.queue.verifyRecipient(address);
  }

  data(stream: SMTPServerDataStream, req: ScanRequest): Promise<string> {
    return this.queue.accept(stream, req, this.conn);
  }

  close(): void {}
}
