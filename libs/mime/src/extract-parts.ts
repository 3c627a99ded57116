import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SplitterObject } from 'mailsplit';
import { createDecoder } from './decoder.js';
import { decodeSubject } from './header-text.js';
import { HOLD_LIMIT, LeafTracker, leafInfo, MimeStructureError, type LeafInfo } from './leaf.js';
import { createSplitter } from './splitter.js';

export type OnPart = (leaf: LeafInfo, decoded: Readable) => Promise<void>;

export interface ExtractOptions {
  /**
   * At most this many onPart calls are pending at once; the next leaf (and so the source) waits
   * for one to settle. Bounds memory and concurrency on messages with many small parts. Default 8.
   */
  maxPending?: number;
}

export interface ExtractResult {
  /** Number of leaves (at least 1: a message without body still has its root leaf). */
  leaves: number;
  /** The root Subject, RFC 2047 decoded; undefined when the message has no Subject header. */
  subject?: string;
}

/**
 * Splits a message into its MIME leaf parts (see isLeaf), decoded from their transfer encoding.
 *
 * onPart is called once per leaf, in document order, as soon as the leaf starts; it must consume
 * `decoded` (concurrently: extractParts keeps feeding it) and settle when done. The source is read
 * no faster than the slowest decoded stream is drained. A consumer may destroy `decoded` early: the
 * rest of that leaf is then skipped.
 *
 * Resolves when the source is fully read and every onPart promise has settled. Rejects with the
 * first error (source, parser, or an onPart rejection); on error the source and every unfinished
 * decoded stream are destroyed, and it still waits for the pending onPart calls to settle.
 */
export async function extractParts(source: Readable, onPart: OnPart, options: ExtractOptions = {}): Promise<ExtractResult> {
  const maxPending = Math.max(1, options.maxPending ?? 8);
  const tracker = new LeafTracker();
  const all: Promise<void>[] = [];
  const pending = new Set<Promise<void>>();
  const open = new Set<Transform>();
  let failure: { error: unknown } | undefined;
  let wakeUp: (() => void) | undefined;
  let subject: string | undefined;
  let current: Transform | undefined;

  const splitter = createSplitter();

  const fail = (error: unknown): void => {
    failure ??= { error };
    // stops the pipeline even while it waits for a stalled source
    splitter.destroy(asError(error));
    for (const stream of open) stream.destroy(asError(error));
    open.clear();
    wakeUp?.();
  };

  // a function, not an inline check: `failure` changes behind TypeScript's back (in callbacks)
  const throwIfFailed = (): void => {
    if (failure) throw failure.error;
  };

  const endCurrent = (last?: Buffer): void => {
    if (current && !current.destroyed) current.end(last);
    current = undefined;
  };

  /** Waits until `subscribe`'s callback is called, or extraction fails (fail() calls wakeUp). */
  const waitFor = (subscribe: (done: () => void) => () => void): Promise<void> =>
    new Promise<void>((resolve) => {
      const done = (): void => {
        unsubscribe();
        if (wakeUp === done) wakeUp = undefined;
        resolve();
      };
      const unsubscribe = subscribe(done);
      wakeUp = done;
    });

  /** Resolves when `stream` can take more, or is gone. */
  const drained = (stream: Transform): Promise<void> =>
    waitFor((done) => {
      stream.on('drain', done);
      stream.on('close', done);
      return () => {
        stream.off('drain', done);
        stream.off('close', done);
      };
    });

  /** Resolves when a pending onPart settles. */
  const slotFree = (): Promise<void> =>
    waitFor((done) => {
      void Promise.race(pending).then(done);
      return () => undefined;
    });

  const startLeaf = (info: LeafInfo): void => {
    const decoded = createDecoder(info.encoding);
    // errors reach the consumer through its own listeners; this one only keeps an ignored
    // stream from crashing the process
    decoded.on('error', () => undefined);
    open.add(decoded);
    decoded.once('close', () => open.delete(decoded));
    decoded.once('end', () => open.delete(decoded));
    current = decoded;
    const settled: Promise<void> = Promise.resolve()
      .then(() => onPart(info, decoded))
      .then(
        () => undefined,
        (err: unknown) => fail(err),
      )
      .finally(() => pending.delete(settled));
    pending.add(settled);
    all.push(settled);
  };

  // the raw root body until the first leaf, in case there is none (see isLeaf)
  let held: Buffer[] | undefined = [];
  let heldBytes = 0;

  const consume = async (objects: AsyncIterable<SplitterObject>): Promise<void> => {
    for await (const obj of objects) {
      throwIfFailed();
      if (obj.type === 'node' && obj.root && obj.headers) {
        const line = obj.headers.get('subject')[0];
        if (line !== undefined) subject = decodeSubject(line.slice(line.indexOf(':') + 1));
      }
      const event = tracker.next(obj);
      if (event.kind === 'leaf') {
        held = undefined;
      } else if (held && !(obj.type === 'node' && obj.root)) {
        const bytes = obj.type === 'node' ? obj.getHeaders() : obj.value;
        heldBytes += bytes.length;
        if (heldBytes <= HOLD_LIMIT) held.push(bytes);
      }
      if (event.kind === 'leaf') {
        endCurrent();
        while (pending.size >= maxPending) {
          await slotFree();
          throwIfFailed();
        }
        startLeaf(leafInfo(event.node, event.index));
      } else if (event.kind === 'body' && current && !current.destroyed) {
        if (!current.write(event.value)) await drained(current);
      }
    }
    endCurrent();
    const onlyLeaf = tracker.end();
    if (onlyLeaf) {
      if (!held || heldBytes > HOLD_LIMIT) {
        throw new MimeStructureError(`a message without any MIME part, and a body over ${HOLD_LIMIT} bytes`);
      }
      startLeaf(leafInfo(onlyLeaf.node, onlyLeaf.index));
      endCurrent(Buffer.concat(held));
    }
  };

  try {
    await pipeline(source, splitter, consume);
  } catch (err) {
    fail(err);
  }
  await Promise.all(all);
  if (failure) throw failure.error;
  return { leaves: tracker.leaves, ...(subject !== undefined ? { subject } : {}) };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
