import { Writable } from 'node:stream';

/** Bytes a process may hold in message copies at once (shared by every SmallCopy given it). */
export class MemoryBudget {
  private used = 0;
  constructor(readonly bytes: number) {}
  take(n: number): boolean {
    if (this.used + n > this.bytes) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
  get inUse(): number {
    return this.used;
  }
}

/**
 * Keeps an in-memory copy of a message while it streams to storage, as long as it stays under
 * `limit` bytes and the process-wide `budget` has room: the gateway then forwards an untouched
 * message without reading it back from S3 (one round trip and one transfer less for most mail).
 * Never slows the stream; a message that does not fit simply has no copy. Call release() when
 * the copy is no longer needed (it gives its bytes back to the budget).
 */
export class SmallCopy extends Writable {
  private chunks: Buffer[] | undefined = [];
  private size = 0;

  constructor(
    private readonly limit: number,
    private readonly budget?: MemoryBudget,
  ) {
    // Taking every chunk at once keeps the tee from ever waiting on this output.
    super({ highWaterMark: 4 * 1024 * 1024 });
    // Destroyed with the tee when the message fails; the failure is reported by the feed itself.
    this.on('error', () => undefined);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.chunks) {
      if (this.size + chunk.length > this.limit || (this.budget && !this.budget.take(chunk.length))) this.release();
      else {
        this.size += chunk.length;
        this.chunks.push(chunk);
      }
    }
    cb();
  }

  /** The whole message, or undefined when it did not fit (or is not finished, or was released). */
  get copy(): Buffer | undefined {
    return this.chunks && this.writableFinished ? Buffer.concat(this.chunks, this.size) : undefined;
  }

  /** Drops the copy and gives its bytes back. Idempotent. */
  release(): void {
    if (!this.chunks) return;
    this.budget?.give(this.size);
    this.chunks = undefined;
    this.size = 0;
  }
}
