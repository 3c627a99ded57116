import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@mailwarden/log';

/**
 * Pulls messages and runs `handle` with at most `concurrency` in flight, restarting the
 * consume loop when it ends (server restart, consumer hiccup) until `signal` aborts.
 * Resolves when stopped and every in-flight handler has finished (graceful drain).
 */
export async function runWorkLoop(opts: {
  consumer: () => Promise<Consumer>;
  concurrency: number;
  handle: (msg: JsMsg) => Promise<void>;
  log: Logger;
  signal: AbortSignal;
}): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  while (!opts.signal.aborted) {
    try {
      const consumer = await opts.consumer();
      const messages = await consumer.consume({ max_messages: opts.concurrency });
      const stop = () => messages.stop();
      opts.signal.addEventListener('abort', stop, { once: true });
      for await (const msg of messages) {
        const p = opts.handle(msg).catch((err) => opts.log.error({ event: 'worker.crash', err }, 'handler failed'));
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        while (inFlight.size >= opts.concurrency) await Promise.race(inFlight);
        if (opts.signal.aborted) break;
      }
      opts.signal.removeEventListener('abort', stop);
    } catch (err) {
      if (opts.signal.aborted) break;
      opts.log.warn({ event: 'worker.consume_failed', err: (err as Error).message }, 'consume loop failed, restarting');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  await Promise.allSettled(inFlight);
}
