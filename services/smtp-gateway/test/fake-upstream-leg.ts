import type { Readable } from 'node:stream';
import type { SMTPServerAddress } from 'smtp-server';
import { UpstreamError, type SmtpReply } from '@mailwarden/smtp-client';
import type { UpstreamLeg } from '../src/upstream-leg.js';

const ok = (text: string): SmtpReply => ({ code: 250, lines: [text] });

/**
 * An upstream leg for unit tests of the SMTP session: no socket. It records what the session
 * asked of upstream, in order, answers with the replies it is given, and can be held while
 * opening (an upstream slow to greet) or while taking a message (a slow upstream mid-DATA).
 */
export class FakeUpstreamLeg implements UpstreamLeg {
  /** What reached upstream, in order: `open`, `MAIL <from>`, `RCPT <to>`, `DATA`, `.`, `close`. */
  readonly calls: string[] = [];
  /** The messages upstream took, as sent. */
  readonly delivered: string[] = [];
  readonly capabilities = new Set(['SIZE', '8BITMIME']);
  replies = { mail: ok('2.1.0 Ok'), rcpt: ok('2.1.5 Ok'), data: ok('2.0.0 Ok: queued as UP123') };
  /** open() fails with this (upstream down, or its EHLO refused). */
  openError: Error | undefined;
  /** RCPT fails with this (the upstream connection broke). */
  rcptError: Error | undefined;
  /** open() waits for this: the upstream greeting has not come yet. */
  greeting: Promise<void> = Promise.resolve();
  /** deliver() waits for this after the body, before the final dot. */
  finalDot: Promise<void> = Promise.resolve();
  alive = false;
  closed = false;
  /** A message is being written upstream right now. */
  sending = false;
  private started: Array<() => void> = [];

  async open(): Promise<void> {
    if (this.alive) return;
    this.calls.push('open');
    await this.greeting;
    if (this.openError) throw this.openError;
    this.alive = true;
  }

  has(capability: string): boolean {
    return this.capabilities.has(capability);
  }

  async mail(address: SMTPServerAddress): Promise<SmtpReply> {
    await this.open();
    this.calls.push(`MAIL ${address.address}`);
    return this.replies.mail;
  }

  async rcpt(address: string): Promise<SmtpReply> {
    this.calls.push(`RCPT ${address}`);
    if (this.rcptError) throw this.rcptError;
    return this.replies.rcpt;
  }

  async deliver(message: Readable): Promise<SmtpReply> {
    this.calls.push('DATA');
    this.sending = true;
    try {
      const chunks: Buffer[] = [];
      for await (const c of message) chunks.push(c as Buffer);
      for (const resolve of this.started.splice(0)) resolve();
      await this.finalDot;
      // A real leg closed mid-message drops the connection: the transfer fails.
      if (this.closed) throw new UpstreamError('upstream connection closed while sending the message');
      this.calls.push('.');
      this.delivered.push(Buffer.concat(chunks).toString());
      return this.replies.data;
    } finally {
      this.sending = false;
    }
  }

  /** Resolves once a message body has been written (the final dot not yet). */
  sendingMessage(): Promise<void> {
    return new Promise((resolve) => this.started.push(resolve));
  }

  async handOver(): Promise<undefined> {
    this.calls.push('STARTTLS');
    return undefined;
  }

  close(): void {
    this.calls.push(this.sending ? 'close (mid-DATA)' : 'close');
    this.closed = true;
    this.alive = false;
  }
}
