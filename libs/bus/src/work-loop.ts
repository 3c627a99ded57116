import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@mailwarden/log';

/** How long one pull waits for messages on an empty queue before it is renewed. */
const PULL_EXPIRES_MS = 10_000;

/**
 * Pulls messages and runs `handle` with at most `concurrency` in flight, until `signal` aborts.
 * Resolves when stopped and every in-flight handler has finished (graceful drain).
 *
 * A worker pulls only what it can start now: each pull asks for exactly as many messages as there
 * are free slots, and the next pull waits for a slot to free up. Nothing waits in a client-side
 * buffer, where the consumer's ack-wait timer would run out and redeliver it (a message's first
 * real attempt would then come with deliveryCount > 1, or it would run twice); so
 * `msg.info.deliveryCount` counts real attempts, and the retry budgets built on it hold.
 * (`consume()` keeps a buffer of `max_messages` topped up ahead of the handlers: not used here.)
 */
export async function runWorkLoop(opts: {
  consumer: () => Promise<Consumer>;
  concurrency: number;
  handle: (msg: JsMsg) => Promise<void>;
  log: Logger;
  signal: AbortSignal;
}): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const start = (msg: JsMsg): void => {
    const p = opts.handle(msg).catch((err) => opts.log.error({ event: 'worker.crash', err }, 'handler failed'));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  while (!opts.signal.aborted) {
    try {
      const consumer = await opts.consumer();
      while (!opts.signal.aborted) {
        while (inFlight.size >= opts.concurrency) await Promise.race(inFlight);
        if (opts.signal.aborted) break;
        const messages = await consumer.fetch({ max_messages: opts.concurrency - inFlight.size, expires: PULL_EXPIRES_MS });
        const stop = () => messages.stop();
        opts.signal.addEventListener('abort', stop, { once: true });
        try {
          for await (const msg of messages) {
            // Pulled just as the worker stopped: hand it straight back rather than sit on it until ack_wait.
            if (opts.signal.aborted) msg.nak();
            else start(msg);
          }
        } finally {
          opts.signal.removeEventListener('abort', stop);
        }
      }
    } catch (err) {
      if (opts.signal.aborted) break;
      opts.log.warn({ event: 'worker.consume_failed', err: (err as Error).message }, 'pulling messages failed, retrying');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  await Promise.allSettled(inFlight);
}

/**
 * Tells the server, every `everyMs`, that `msg` is still being worked on (resets its ack-wait
 * timer), until the returned function is called. A long job (a large message, a slow S3) is then
 * not handed to another worker while its own is busy with it.
 */
export function keepWorking(msg: JsMsg, everyMs: number): () => void {
  const timer = setInterval(() => msg.working(), everyMs);
  return () => clearInterval(timer);
}
