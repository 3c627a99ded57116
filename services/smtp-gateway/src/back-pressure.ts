import { withDeadline } from '@mailwarden/storage';
import { SmtpReplyError } from './smtp-reply.js';

export interface BackPressureOptions {
  /** QUEUE_MAX_DEPTH: messages waiting (scan and delivery) past which new mail is refused. */
  maxDepth: number;
  /** Messages waiting now (the work queues' sizes). */
  depth: () => Promise<number>;
  /** Object storage and NATS both answer. */
  healthy: () => Promise<boolean>;
  /** One check serves every session for this long. Default 1 s. */
  cacheMs?: number;
  /** Deadline of one check; past it the gateway counts as unhealthy. Default 2 s. */
  timeoutMs?: number;
}

export type Refusal = { reason: 'depth' | 'unhealthy'; error: SmtpReplyError };

/**
 * Queue mode: the gateway only takes mail it can keep. When the queue is deeper than allowed, or
 * S3 or NATS does not answer, MAIL (and DATA) get a 451 and the sender keeps the message, rather
 * than the gateway answering 250 for mail it may not be able to store or deliver for long.
 */
export class BackPressure {
  private last: { at: number; refusal: Refusal | undefined } | undefined;
  private checking: Promise<Refusal | undefined> | undefined;

  constructor(private readonly opts: BackPressureOptions) {}

  /** undefined = accept; else the reason and the 451 to answer. Cached, single flight. */
  async check(): Promise<Refusal | undefined> {
    if (this.last && Date.now() - this.last.at < (this.opts.cacheMs ?? 1000)) return this.last.refusal;
    this.checking ??= this.measure().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async measure(): Promise<Refusal | undefined> {
    let refusal: Refusal | undefined;
    try {
      const [healthy, depth] = await withDeadline(Promise.all([this.opts.healthy(), this.opts.depth()]), this.opts.timeoutMs ?? 2000, 'queue health check');
      if (!healthy) refusal = unhealthy();
      else if (depth >= this.opts.maxDepth) refusal = { reason: 'depth', error: new SmtpReplyError(451, '4.3.2', 'Queue full, please try again later') };
    } catch {
      refusal = unhealthy();
    }
    this.last = { at: Date.now(), refusal };
    return refusal;
  }
}

const unhealthy = (): Refusal => ({ reason: 'unhealthy', error: new SmtpReplyError(451, '4.3.0', 'Mail system temporarily unavailable, please try again later') });
