import { Writable } from 'node:stream';

/**
 * Keeps an in-memory copy of a message while it streams to storage, as long as it stays under
 * `limit` bytes: the gateway then forwards a small untouched message without reading it back
 * from S3 (one round trip less for most mail). Never slows the stream; memory per message is
 * bounded by `limit`, and a larger message simply has no copy.
 */
export class SmallCopy extends Writable {
  private chunks: Buffer[] | undefined = [];
  private size = 0;

  constructor(private readonly limit: number) {
    // Taking every chunk at once keeps the tee from ever waiting on this output.
    super({ highWaterMark: 4 * 1024 * 1024 });
    // Destroyed with the tee when the message fails; the failure is reported by the feed itself.
    this.on('error', () => undefined);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.chunks) {
      this.size += chunk.length;
      if (this.size > this.limit) this.chunks = undefined;
      else this.chunks.push(chunk);
    }
    cb();
  }

  /** The whole message, or undefined when it was larger than the limit (or not finished). */
  get copy(): Buffer | undefined {
    return this.chunks && this.writableFinished ? Buffer.concat(this.chunks, this.size) : undefined;
  }
}
