import type { Readable } from 'node:stream';
import { ObjectKeys, Subjects, type Envelope } from '@mailwarden/contracts';
import type { Bus } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import type { Logger } from '@mailwarden/log';
import { HashCounter } from './hash-counter.js';
import { TempFailError } from './errors.js';
import { Deadline } from './deadline.js';
import { envelopeFor } from './envelope.js';
import type { ScanRequest } from './message-scanner.js';
import type { MessageQueue, QueuedMessage } from './message-queue.js';

export interface BusMessageQueueOptions {
  bus: Bus;
  store: ObjectStore;
  log: Logger;
  /** Deadline from the last byte of the message to the job's acknowledgement (SCAN_TIMEOUT_MS). */
  timeoutMs: number;
}

/**
 * Queue mode, gateway side: raw.eml streams once into S3 (hashed on the way), then one job with the
 * envelope (`delivery: 'queue'`) goes to JetStream, and the publish resolves only when JetStream has
 * stored it. Only then is the message durable, and only then may the sender get its 250.
 */
export class BusMessageQueue implements MessageQueue {
  constructor(private readonly opts: BusMessageQueueOptions) {}

  async enqueue(req: ScanRequest, raw: Readable, ref: string): Promise<QueuedMessage> {
    const { bus, store, log } = this.opts;
    const rawKey = ObjectKeys.raw(ref);
    const deadline = new Deadline(this.opts.timeoutMs, 'queueing the message');
    const counter = new HashCounter();
    raw.once('end', () => deadline.start());
    let published = false;
    try {
      // A refusal while receiving (size, NUL byte) destroys `raw`: the upload must fail with it.
      raw.once('error', (err) => counter.destroy(err));
      raw.once('close', () => !raw.readableEnded && counter.destroy(new Error('message cut before its end')));
      const stored = await deadline.race(store.put(rawKey, raw.pipe(counter), { signal: deadline.signal }));
      const envelope: Envelope = {
        ...envelopeFor(ref, req, { key: rawKey, size: stored.size, sha256: counter.digest() }),
        delivery: 'queue',
        ...(req.scan === false ? { scan: false as const } : {}),
      };
      await deadline.race(bus.js.publish(Subjects.job(ref), JSON.stringify(envelope), { msgID: `job-${ref}` }));
      published = true;
      log.info({ event: 'message.queued', ref, size: stored.size, recipients: req.rcptTo.length }, 'message accepted into the queue');
      return { ref, size: stored.size };
    } catch (err) {
      deadline.cancel();
      raw.destroy();
      // A job whose publish timed out may still land: its raw.eml must stay for it. (The sender
      // retries on the 451: at worst a second copy, never a lost one.)
      if (!published && !(err instanceof Error && /not done within/.test(err.message))) await store.remove([rawKey]).catch(() => undefined);
      throw new TempFailError(`queueing message failed: ${(err as Error).message}`, ref, { cause: err });
    } finally {
      deadline.clear();
    }
  }
}
