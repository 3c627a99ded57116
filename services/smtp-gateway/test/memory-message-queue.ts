import type { Readable } from 'node:stream';
import { TempFailError, type MessageQueue, type QueuedMessage, type ScanRequest } from '@mailwarden/pipeline';

/** An in-memory MessageQueue for the proxy's queue-mode tests: keeps what it was given; can be told to fail. */
export class MemoryMessageQueue implements MessageQueue {
  readonly queued: { req: ScanRequest; body: Buffer; ref: string }[] = [];
  fail = false;

  async enqueue(req: ScanRequest, raw: Readable, ref: string): Promise<QueuedMessage> {
    const chunks: Buffer[] = [];
    for await (const c of raw) chunks.push(c as Buffer);
    if (this.fail) throw new TempFailError('the bus is down', ref);
    const body = Buffer.concat(chunks);
    this.queued.push({ req, body, ref });
    return { ref, size: body.length };
  }
}
