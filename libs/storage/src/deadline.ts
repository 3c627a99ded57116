import { Transform, type TransformCallback } from 'node:stream';

export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

/** Rejects with DeadlineError when `promise` has not settled within `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Passes bytes through, failing when no byte moved for `ms` while the reader wanted more.
 * Streams have no fixed total deadline (a 50 MB message is allowed to take time) but must keep
 * moving. Time spent waiting on a slow reader (its buffer full: a part being uploaded, a slow
 * upstream MTA) is not a stall of the source and does not count.
 */
export class IdleTimeout extends Transform {
  private timer: NodeJS.Timeout | undefined;
  /** Bytes that went through. */
  bytes = 0;
  constructor(
    private readonly ms: number,
    private readonly what: string,
  ) {
    super();
    this.arm();
  }
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.destroy(new DeadlineError(`${this.what}: stalled for ${this.ms} ms`)), this.ms);
    this.timer.unref();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
    // The reader has enough for now: the clock waits until it asks for more (_read).
    if (this.readableLength >= this.readableHighWaterMark) {
      clearTimeout(this.timer);
      this.timer = undefined;
    } else this.arm();
  }
  override _read(size: number): void {
    if (!this.timer && !this.writableFinished) this.arm();
    super._read(size);
  }
  override _flush(cb: TransformCallback): void {
    clearTimeout(this.timer);
    cb();
  }
  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(err);
  }
}
