import { Readable } from 'node:stream';
import { ObjectKeys, type DeliveryJob, type RecipientOutcome } from '@mailwarden/contracts';
import type { Bus, DeliveryRecords } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import { buildDsn } from './dsn.js';
import { enqueueDelivery } from './enqueue.js';

/** The original's header block is quoted up to this size (RFC 6522 text/rfc822-headers). */
const MAX_HEADER_BYTES = 64 * 1024;

export interface BounceDeps {
  bus: Bus;
  store: ObjectStore;
  records: DeliveryRecords;
  hostname: string;
}

/**
 * Tells the sender which recipients were given up on: a DSN, queued like any message (route
 * `bounce`, null sender, so a DSN that cannot be delivered is retried and then dropped, never
 * bounced). Its reference is derived from the message and the attempt, so a retry after a crash
 * writes the same DSN object and job (dropped as a duplicate) instead of a second notification.
 * Returns the DSN's reference, or undefined when none is due (null sender, or a DSN itself).
 */
export async function bounce(deps: BounceDeps, job: DeliveryJob, failed: RecipientOutcome[], opts: { attempt: number; upstream: string }): Promise<string | undefined> {
  if (!job.mailFrom || job.route === 'bounce' || !failed.length) return undefined;
  const dsnRef = `${job.ref}b${opts.attempt}`.slice(0, 40);
  const headers = await readHeaders(deps.store, job.key).catch(() => Buffer.from(`X-Mailwarden-Ref: ${job.ref}\r\n`));
  const dsn = buildDsn({ hostname: deps.hostname, ref: job.ref, dsnRef, sender: job.mailFrom, receivedAt: job.receivedAt, upstream: opts.upstream, failed, headers });
  const key = ObjectKeys.raw(dsnRef);
  const { size } = await deps.store.put(key, Readable.from([dsn]));
  await enqueueDelivery(deps.bus, deps.records, { ref: dsnRef, route: 'bounce', mailFrom: '', rcptTo: [job.mailFrom], key, size, keys: [key], receivedAt: new Date().toISOString() });
  return dsnRef;
}

/** The message's header block (up to the empty line), read from the start of the object only. */
async function readHeaders(store: ObjectStore, key: string): Promise<Buffer> {
  const stream = await store.getRange(key, 0, MAX_HEADER_BYTES).catch(() => store.get(key));
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      const sofar = Buffer.concat(chunks);
      const end = sofar.indexOf('\r\n\r\n');
      if (end >= 0) return sofar.subarray(0, end + 2);
      if (size >= MAX_HEADER_BYTES) return sofar.subarray(0, MAX_HEADER_BYTES);
    }
    return Buffer.concat(chunks);
  } finally {
    stream.destroy();
  }
}
