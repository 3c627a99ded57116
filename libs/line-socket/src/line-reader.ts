/** No line came within the deadline. The reader stays usable; callers usually drop the connection. */
export class LineTimeoutError extends Error {
  override name = 'LineTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no line within ${timeoutMs} ms`);
  }
}

/** A line, or bytes sent ahead of any reader, over the limit: the reader fails for good. */
export class LineTooLongError extends Error {
  override name = 'LineTooLongError';
  constructor(readonly maxLineBytes: number) {
    super(`line or unread data over ${maxLineBytes} bytes`);
  }
}

export interface LineReaderOptions {
  /** The longest line, and the most bytes the peer may send before anyone reads them. */
  maxLineBytes: number;
  /** The reader failed on its own (a line over the limit): the owner drops the connection. */
  onTooLong?: (err: LineTooLongError) => void;
}

/**
 * Splits a socket's bytes into lines (CRLF, or a bare LF) for a line-based client, one line per
 * `next()`, each with its own deadline. Lines are latin1 strings, so any byte round-trips. The
 * owner feeds it with `push()` (so it can send some bytes elsewhere instead, such as a message
 * body) and takes back what is left with `take()`.
 */
export class LineReader {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter: { resolve: (line: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout; onTaken?: (line: string) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly opts: LineReaderOptions) {}

  /** Bytes received and not read as lines yet. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** Bytes from the socket. */
  push(chunk: Buffer): void {
    if (this.failure || !chunk.length) return;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.serve();
  }

  /**
   * The next line, without its line ending; rejects with LineTimeoutError after `timeoutMs`.
   * `onTaken` runs in the very tick the line is taken, before the promise settles: a caller that
   * sends the following bytes elsewhere (a POP3 body after `+OK`) switches before another chunk.
   */
  next(timeoutMs: number, onTaken?: (line: string) => void): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    // One reader at a time: a second one would take the first one's line.
    if (this.waiter) return Promise.reject(new Error('a line is already awaited'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new LineTimeoutError(timeoutMs));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer, ...(onTaken ? { onTaken } : {}) };
      this.serve();
    });
  }

  /** Removes and returns the unread bytes (someone else reads the socket from here on). */
  take(): Buffer {
    const rest = this.buffer;
    this.buffer = Buffer.alloc(0);
    return rest;
  }

  /** Fails the line awaited, if any, and every later one. */
  fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.buffer = Buffer.alloc(0);
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }

  private serve(): void {
    const nl = this.buffer.indexOf(0x0a);
    if (nl > this.opts.maxLineBytes || (nl < 0 && this.buffer.length > this.opts.maxLineBytes) || (!this.waiter && this.buffer.length > this.opts.maxLineBytes)) {
      const err = new LineTooLongError(this.opts.maxLineBytes);
      this.fail(err);
      return this.opts.onTooLong?.(err);
    }
    const w = this.waiter;
    if (!w || nl < 0) return;
    const line = this.buffer.subarray(0, nl).toString('latin1').replace(/\r$/, '');
    this.buffer = this.buffer.subarray(nl + 1);
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.onTaken?.(line);
    w.resolve(line);
  }
}
