import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Subscription } from '@nats-io/transport-node';
import {
  Envelope,
  ObjectKeys,
  ScanResult,
  Streams,
  Subjects,
  decode,
  type PartRef,
  type ScanJob,
} from '@mailwarden/contracts';
import type { Bus } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import { extractParts } from '@mailwarden/mime';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import { newRef } from './ref.js';
import { Tee } from './tee.js';
import { HashCounter } from './hash-counter.js';
import { TempFailError } from './errors.js';
import { SmallCopy } from './small-copy.js';

/** Messages up to this size are forwarded from memory when untouched (see SmallCopy). */
const SMALL_COPY_LIMIT = 256 * 1024;
import type { MessageScanner, ScanRequest, StoredMessage } from './message-scanner.js';

export interface BusMessageScannerOptions {
  bus: Bus;
  store: ObjectStore;
  log: Logger;
  /** Deadline from the end of DATA to the reassembler's result. */
  scanTimeoutMs: number;
}

/** Gateway side of the pipeline: raw + decoded parts to S3, envelope and jobs to JetStream, wait for the result. */
export class BusMessageScanner implements MessageScanner {
  constructor(private readonly opts: BusMessageScannerOptions) {}

  async store(req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    const ref = newRef();
    const key = ObjectKeys.raw(ref);
    try {
      const { size } = await this.opts.store.put(key, raw);
      return this.stored(ref, { key, size, removed: [], subjectPrefixed: false, scanned: false }, [key]);
    } catch (err) {
      raw.destroy();
      await this.opts.store.remove([key]).catch(() => undefined);
      throw new TempFailError(`storing message failed: ${(err as Error).message}`, ref, { cause: err });
    }
  }

  async scan(req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    const { bus, store, log } = this.opts;
    const ref = newRef();
    const keys: string[] = [ObjectKeys.raw(ref)];
    // Subscribe before anything is published, so the result cannot slip past.
    const sub = bus.nc.subscribe(Subjects.result(ref), { max: 1 });
    try {
      const toRaw = new PassThrough({ highWaterMark: 256 * 1024 });
      const toSplit = new PassThrough({ highWaterMark: 256 * 1024 });
      const parts: PartRef[] = [];
      const rawUpload = store.put(ObjectKeys.raw(ref), toRaw);
      const split = extractParts(toSplit, async (leaf, decoded) => {
        const key = ObjectKeys.part(ref, leaf.index);
        keys.push(key);
        const counter = new HashCounter();
        const upload = store.put(key, counter);
        await Promise.all([pipeline(decoded, counter), upload]);
        parts[leaf.index] = {
          index: leaf.index,
          key,
          size: counter.size,
          sha256: counter.digest(),
          contentType: leaf.contentType,
          ...(leaf.filename ? { filename: leaf.filename } : {}),
        };
      });
      const smallCopy = new SmallCopy(SMALL_COPY_LIMIT);
      const feed = pipeline(raw, new Tee([toRaw, toSplit, smallCopy]));
      const [, rawStored, splitInfo] = await Promise.all([feed, rawUpload, split]);

      const envelope: Envelope = {
        ref,
        protocol: req.protocol,
        direction: req.direction,
        receivedAt: new Date().toISOString(),
        mailFrom: req.mailFrom,
        rcptTo: req.rcptTo,
        ...(splitInfo.subject !== undefined ? { subject: splitInfo.subject } : {}),
        rawKey: ObjectKeys.raw(ref),
        rawSize: rawStored.size,
        parts,
      };
      await bus.js.publish(Subjects.envelope(ref), JSON.stringify(envelope), { msgID: `env-${ref}` });
      await Promise.all(
        parts.map((p) => {
          const job: ScanJob = { ref, part: p.index, parts: parts.length, key: p.key, size: p.size, sha256: p.sha256, ...(p.filename ? { filename: p.filename } : {}) };
          return bus.js.publish(Subjects.job(ref, p.index), JSON.stringify(job), { msgID: `job-${ref}-${p.index}` });
        }),
      );
      metrics.parts.inc({ protocol: req.protocol }, parts.length);
      log.debug({ event: 'message.submitted', ref, parts: parts.length, size: rawStored.size }, 'message submitted for scanning');

      const result = await this.awaitResult(sub, ref);
      if (result.key && result.key !== ObjectKeys.raw(ref)) keys.push(result.key);
      if (result.outcome !== 'deliver' || !result.key) {
        throw new TempFailError(`scan failed: ${result.error ?? 'no result'}`, ref);
      }
      const untouched = result.key === ObjectKeys.raw(ref) ? smallCopy.copy : undefined;
      return this.stored(
        ref,
        { key: result.key, size: result.size ?? rawStored.size, removed: result.removed, subjectPrefixed: result.subjectPrefixed, scanned: true },
        keys,
        untouched,
      );
    } catch (err) {
      sub.unsubscribe();
      raw.destroy();
      void store.remove(keys).catch(() => undefined);
      if (err instanceof TempFailError) throw err;
      throw new TempFailError(`scan pipeline failed: ${(err as Error).message}`, ref, { cause: err });
    }
  }

  private async awaitResult(sub: Subscription, ref: string): Promise<ScanResult> {
    const timer = setTimeout(() => sub.unsubscribe(), this.opts.scanTimeoutMs);
    try {
      for await (const m of sub) return decode(ScanResult, m.data);
    } finally {
      clearTimeout(timer);
    }
    // The live message may have been missed across a reconnect: the stream keeps it.
    const stored = await this.opts.bus.jsm.direct.getMessage(Streams.results, { last_by_subj: Subjects.result(ref) }).catch(() => null);
    if (stored) return decode(ScanResult, stored.data);
    throw new TempFailError(`no scan result within ${this.opts.scanTimeoutMs} ms`, ref);
  }

  private stored(ref: string, r: Omit<StoredMessage, 'ref' | 'open' | 'discard'> & { key: string }, keys: string[], copy?: Buffer): StoredMessage {
    const store = this.opts.store;
    return {
      ref,
      size: r.size,
      removed: r.removed,
      subjectPrefixed: r.subjectPrefixed,
      scanned: r.scanned,
      open: async () => (copy ? Readable.from([copy]) : store.get(r.key)),
      discard: () => store.remove(keys),
    };
  }
}
