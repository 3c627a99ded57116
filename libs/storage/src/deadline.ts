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
 * Passes bytes through, failing when no byte moved for `ms`.
 * Streams have no fixed total deadline (a 50 MB message is allowed to take time) but must keep moving.
 */
export class IdleTimeout extends Transform {
  private timer: NodeJS.Timeout;
  /** Bytes that went through. */
  bytes = 0;
  constructor(
    private readonly ms: number,
    private readonly what: string,
  ) {
    super();
    this.timer = this.arm();
  }
  private arm(): NodeJS.Timeout {
    const t = setTimeout(() => this.destroy(new DeadlineError(`${this.what}: stalled for ${this.ms} ms`)), this.ms);
    t.unref();
    return t;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.timer.refresh();
    this.bytes += chunk.length;
    cb(null, chunk);
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
