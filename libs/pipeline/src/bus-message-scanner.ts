import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Subscription } from '@nats-io/transport-node';
import { ObjectKeys, ScanResult, Streams, Subjects, decode } from '@mailwarden/contracts';
import type { Bus } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import type { Logger } from '@mailwarden/log';
import { newRef } from './ref.js';
import { Tee } from './tee.js';
import { HashCounter } from './hash-counter.js';
import { PermFailError, TempFailError } from './errors.js';
import { MemoryBudget, SmallCopy } from './small-copy.js';
import { Deadline } from './deadline.js';
import { envelopeFor } from './envelope.js';

/**
 * Untouched messages up to this size are forwarded from memory (see SmallCopy), while the
 * process holds at most SMALL_COPY_BUDGET bytes of such copies: a 1 MB message is then not read
 * back from S3 (measured: s3rver CPU per 1 MB message down by about a third, docs/decisions.md).
 */
const SMALL_COPY_LIMIT = 4 * 1024 * 1024;
const SMALL_COPY_BUDGET = 64 * 1024 * 1024;
import type { MessageScanner, ScanRequest, StoredMessage } from './message-scanner.js';

export interface BusMessageScannerOptions {
  bus: Bus;
  store: ObjectStore;
  log: Logger;
  /**
   * Deadline from the end of the message (the last byte received) to the result: the rest of the
   * upload of raw.eml (its last part and completion), the job, the scan and the reassembler's
   * result. Before the end, the object store's own deadlines bound each step of the upload.
   */
  scanTimeoutMs: number;
}

/** Gateway side of the pipeline: raw message to S3, one job (the envelope) to JetStream, wait for the result. */
export class BusMessageScanner implements MessageScanner {
  private readonly copies = new MemoryBudget(SMALL_COPY_BUDGET);

  constructor(private readonly opts: BusMessageScannerOptions) {}

  async store(req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    const ref = newRef();
    const key = ObjectKeys.raw(ref);
    const deadline = new Deadline(this.opts.scanTimeoutMs, 'storing the message');
    raw.once('end', () => deadline.start());
    try {
      const { size } = await deadline.race(this.opts.store.put(key, raw, { signal: deadline.signal }));
      return this.stored(ref, { key, size, removed: [], subjectPrefixed: false, scanned: false }, [key]);
    } catch (err) {
      deadline.cancel();
      raw.destroy();
      await this.opts.store.remove([key]).catch(() => undefined);
      throw new TempFailError(`storing message failed: ${(err as Error).message}`, ref, { cause: err });
    } finally {
      deadline.clear();
    }
  }

  /**
   * The gateway side of the pipeline: the raw message streams once into S3 (hashed on the way), one
   * job carrying the envelope goes to JetStream, then the result is awaited. No MIME work here:
   * content analysis is the scanners' job (docs/architecture.md).
   */
  async scan(req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    const { bus, store, log } = this.opts;
    const ref = newRef();
    const rawKey = ObjectKeys.raw(ref);
    const keys: string[] = [rawKey];
    // Subscribe before anything is published, so the result cannot slip past.
    const sub = bus.nc.subscribe(Subjects.result(ref), { max: 1 });
    // Armed when the last byte of the message is in: from then on, whatever stalls (the end of
    // the upload, the bus, a worker), the client has its answer within scanTimeoutMs.
    const deadline = new Deadline(this.opts.scanTimeoutMs, 'scan');
    let copy: SmallCopy | undefined;
    try {
      const counter = new HashCounter();
      const smallCopy = new SmallCopy(SMALL_COPY_LIMIT, this.copies);
      copy = smallCopy;
      const toRaw = new PassThrough({ highWaterMark: 256 * 1024 });
      const upload = store.put(rawKey, toRaw, { signal: deadline.signal });
      const receiving = pipeline(raw, counter, new Tee([toRaw, smallCopy]));
      receiving.then(
        () => deadline.start(),
        () => undefined,
      );
      const [, rawStored] = await deadline.race(Promise.all([receiving, upload]));
      const envelope = envelopeFor(ref, req, { key: rawKey, size: rawStored.size, sha256: counter.digest() });
      await deadline.race(bus.js.publish(Subjects.job(ref), JSON.stringify(envelope), { msgID: `job-${ref}` }));
      log.debug({ event: 'message.submitted', ref, size: rawStored.size }, 'message submitted for scanning');

      const result = await this.awaitResult(sub, ref, deadline);
      if (result.key && result.key !== rawKey) keys.push(result.key);
      if (result.outcome === 'reject') throw new PermFailError(result.error ?? 'message refused', ref);
      if (result.outcome !== 'deliver' || !result.key) {
        throw new TempFailError(`scan failed: ${result.error ?? 'no result'}`, ref);
      }
      const untouched = result.key === rawKey ? smallCopy.copy : undefined;
      if (!untouched) smallCopy.release();
      return this.stored(
        ref,
        { key: result.key, size: result.size ?? rawStored.size, removed: result.removed, subjectPrefixed: result.subjectPrefixed, scanned: true },
        keys,
        untouched,
        () => smallCopy.release(),
      );
    } catch (err) {
      // Stops the upload too, the S3 request in flight included.
      deadline.cancel();
      copy?.release();
      sub.unsubscribe();
      raw.destroy();
      void store.remove(keys).catch(() => undefined);
      if (err instanceof TempFailError || err instanceof PermFailError) throw err;
      throw new TempFailError(`scan pipeline failed: ${(err as Error).message}`, ref, { cause: err });
    } finally {
      deadline.clear();
    }
  }

  private async awaitResult(sub: Subscription, ref: string, deadline: Deadline): Promise<ScanResult> {
    const timer = setTimeout(() => sub.unsubscribe(), deadline.remaining());
    try {
      for await (const m of sub) return decode(ScanResult, m.data);
    } finally {
      clearTimeout(timer);
    }
    // The live message may have been missed across a reconnect: the stream keeps it.
    const stored = await deadline.race(this.opts.bus.jsm.direct.getMessage(Streams.results, { last_by_subj: Subjects.result(ref) })).catch(() => null);
    if (stored) return decode(ScanResult, stored.data);
    throw new TempFailError(`no scan result within ${this.opts.scanTimeoutMs} ms of the end of the message`, ref);
  }

  private stored(ref: string, r: Omit<StoredMessage, 'ref' | 'open' | 'discard'> & { key: string }, keys: string[], copy?: Buffer, release?: () => void): StoredMessage {
    const store = this.opts.store;
    return {
      ref,
      size: r.size,
      removed: r.removed,
      subjectPrefixed: r.subjectPrefixed,
      scanned: r.scanned,
      open: async () => (copy ? Readable.from([copy]) : store.get(r.key)),
      discard: () => {
        release?.();
        return store.remove(keys);
      },
    };
  }
}
