import type { Readable } from 'node:stream';
import type { ScanRequest } from './message-scanner.js';

/** A message the queue has taken: durable in object storage and on the bus. */
export interface QueuedMessage {
  ref: string;
  size: number;
}

/**
 * The port a gateway in queue mode uses: the message is stored and its job acknowledged by the bus,
 * then the sender may have its 250; scanning and delivery happen behind the queue.
 * Throws TempFailError on any failure or deadline (nothing half-queued stays behind).
 */
export interface MessageQueue {
  /** `ref` names the message from here on (the gateway quotes it in its Received line and its 250). */
  enqueue(req: ScanRequest, raw: Readable, ref: string): Promise<QueuedMessage>;
}
