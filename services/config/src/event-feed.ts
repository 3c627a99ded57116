import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { ActivityEvent, ContractError, Streams, decode } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import type { ActivityLog } from './activity-log.js';

/** Reads one stored event; the kind comes from the subject when an older publisher left it out of the payload. */
export function parseEvent(subject: string, data: Uint8Array): ActivityEvent {
  const kind = subject.startsWith('mw.event.') ? subject.slice('mw.event.'.length) : undefined;
  const raw: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ContractError('/: expected an object', '/');
  return decode(ActivityEvent, { kind, ...raw });
}

export interface EventFeedOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  activity: ActivityLog;
  log: Logger;
  signal: AbortSignal;
}

/**
 * Folds the MW_EVENTS stream into `activity`: an ordered consumer replays it from the beginning
 * (so counters survive a restart of this service) and then follows it live. The consume loop is
 * restarted from the next unseen sequence if it ever ends. Resolves `caughtUp` once every event
 * stored at start has been read.
 */
export class EventFeed {
  readonly caughtUp: Promise<void>;
  private markCaughtUp!: () => void;
  private ignored = 0;
  /** Last stream sequence read, folded or skipped. */
  private seen = 0;

  private constructor(private readonly opts: EventFeedOptions) {
    this.caughtUp = new Promise((resolve) => (this.markCaughtUp = resolve));
    void this.caughtUp.then(() => {
      opts.activity.complete = true;
    });
  }

  static async start(opts: EventFeedOptions): Promise<EventFeed> {
    const feed = new EventFeed(opts);
    const info = await opts.jsm.streams.info(Streams.events);
    const target = info.state.messages === 0 ? 0 : info.state.last_seq;
    feed.seen = opts.activity.sequence;
    if (target <= feed.seen) feed.markCaughtUp();
    void feed.run(target);
    return feed;
  }

  private async run(target: number): Promise<void> {
    const { js, log, signal } = this.opts;
    while (!signal.aborted) {
      try {
        const next = this.seen + 1;
        const consumer = await js.consumers.get(
          Streams.events,
          next === 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: next },
        );
        const messages = await consumer.consume({ max_messages: 512 });
        const stop = () => void messages.close();
        signal.addEventListener('abort', stop, { once: true });
        for await (const m of messages) {
          this.fold(m);
          if (m.seq >= target) this.markCaughtUp();
        }
        signal.removeEventListener('abort', stop);
      } catch (err) {
        if (signal.aborted) break;
        log.warn({ event: 'events.consume_failed', err: (err as Error).message }, 'event feed failed, restarting');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private fold(m: JsMsg): void {
    if (m.seq <= this.seen) return;
    this.seen = m.seq;
    try {
      this.opts.activity.record(parseEvent(m.subject, m.data), m.seq);
    } catch (err) {
      // A malformed event must not stop the feed; it is skipped and counted.
      this.ignored++;
      this.opts.log.warn({ event: 'events.invalid', seq: m.seq, subject: m.subject, err: (err as Error).message, ignored: this.ignored }, 'ignoring an invalid activity event');
    }
  }
}
