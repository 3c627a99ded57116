import { Readable } from 'node:stream';

/**
 * Random access to the bytes of a message (raw.eml, or a decoded content analysed as a message).
 * The analysis reads lines through it and opens ranges as streams, so the same code serves a
 * message held in memory and one read from object storage by range (see the scanner's RangeSource).
 */
export interface ByteSource {
  readonly size: number;
  /** Bytes [start, end); at most a block's worth is asked for at once by the line reader. */
  read(start: number, end: number): Promise<Buffer>;
  /** Bytes [start, end) as a stream (large ranges are not buffered). */
  stream(start: number, end: number): Readable;
}

/** A message in memory. */
export class MemorySource implements ByteSource {
  constructor(readonly bytes: Buffer) {}

  get size(): number {
    return this.bytes.length;
  }

  read(start: number, end: number): Promise<Buffer> {
    return Promise.resolve(this.bytes.subarray(start, end));
  }

  stream(start: number, end: number): Readable {
    return Readable.from([this.bytes.subarray(start, end)], { objectMode: false });
  }
}
