import type { Logger } from '@mailwarden/log';
import type { SmtpConnectionPool } from '@mailwarden/smtp-client';
import { SmtpReplyError, replyText, type SmtpReply } from './smtp-reply.js';

/** Entries kept at most (oldest dropped first): bounds memory against random-recipient floods. */
const MAX_ENTRIES = 50_000;
/** After upstream could not be reached, recipients are accepted unverified for this long without trying again (a black-holed upstream would cost every RCPT the whole connect deadline). */
const UNREACHABLE_BACKOFF_MS = 15_000;

/**
 * Queue mode: RCPT is checked against upstream at RCPT time, as Postfix's
 * `reject_unverified_recipient` does: a probe (MAIL FROM:<>, RCPT TO, RSET) on a pooled session,
 * and the answer reused for `ttlMs`. An unknown recipient is refused in the session (no bounce
 * later); when upstream cannot answer (down, 4xx, deadline) the recipient is accepted — the
 * queue will retry, and a later 5xx becomes a DSN — so mail is still taken while upstream is down.
 */
export class RecipientVerifier {
  private readonly cache = new Map<string, { until: number; refusal?: SmtpReply }>();
  private unreachableUntil = 0;

  constructor(
    private readonly pool: SmtpConnectionPool,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  /** Resolves when the recipient may be accepted; rejects with upstream's refusal (5xx). */
  async verify(address: string): Promise<void> {
    const key = address.toLowerCase();
    const hit = this.cache.get(key);
    let refusal: SmtpReply | undefined;
    if (hit && hit.until > Date.now()) refusal = hit.refusal;
    else {
      const reply = await this.probe(address);
      if (!reply || (reply.code >= 400 && reply.code < 500)) return; // unverifiable now: accepted, not remembered
      refusal = reply.code >= 500 ? reply : undefined;
      this.remember(key, refusal);
    }
    if (refusal) throw SmtpReplyError.fromUpstream(refusal);
  }

  private async probe(address: string): Promise<SmtpReply | undefined> {
    if (Date.now() < this.unreachableUntil) return undefined;
    let client;
    try {
      client = await this.pool.acquire();
    } catch (err) {
      this.unreachableUntil = Date.now() + UNREACHABLE_BACKOFF_MS;
      this.log.warn({ event: 'queue.rcpt_unverified', err: (err as Error).message }, 'upstream unreachable: recipient accepted unverified');
      return undefined;
    }
    try {
      const mail = await client.command('MAIL FROM:<>');
      if (mail.code >= 400) {
        await client.command('RSET');
        this.pool.release(client, true);
        return undefined;
      }
      const rcpt = await client.command(`RCPT TO:<${address}>`);
      await client.command('RSET');
      this.pool.release(client, true);
      if (rcpt.code >= 400) this.log.info({ event: 'queue.rcpt_checked', code: rcpt.code, reply: replyText(rcpt) }, 'recipient check: upstream refused');
      return rcpt;
    } catch (err) {
      this.pool.release(client, false);
      this.log.warn({ event: 'queue.rcpt_unverified', err: (err as Error).message }, 'recipient check failed: accepted unverified');
      return undefined;
    }
  }

  private remember(key: string, refusal: SmtpReply | undefined): void {
    if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { until: Date.now() + this.ttlMs, ...(refusal ? { refusal } : {}) });
  }
}
