import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

type WriteCallback = (error?: Error | null) => void;

/** The input ended before the `CRLF.CRLF` terminator: the multi-line response is truncated. */
export class UnterminatedMultilineError extends Error {
  override name = 'UnterminatedMultilineError';
}

const enum State {
  /** At the start of a line: after CRLF, or at the very beginning. */
  LineStart,
  InLine,
  /** In a line, just after a CR. */
  AfterCr,
  /** A '.' started the line (held back). */
  Dot,
  /** A '.' then CR started the line (held back). */
  DotCr,
}

/**
 * POP3 multi-line response body → message (RFC 1939 3). Write the bytes that follow the `+OK`
 * line (socket data as it comes); the readable side gives the message with the dot-stuffing
 * undone, ending with the CRLF that precedes the terminating `.` line. The terminator is
 * `CRLF.CRLF`, the first CRLF being the end of the `+OK` line or of the last message line.
 *
 * The terminator is found when the bytes are written, not when the stream gets round to them, so
 * that it is known at once even while the reader lags behind: within the write() that completes
 * it, `terminated` becomes true, 'terminated' is emitted, and the writable side is ended (the
 * readable side then ends, 'end', once read). `remainder` holds the bytes of that write after
 * the terminator (the start of the next response); bytes written later are appended to it, never
 * to the message. Ending the input before the terminator is an UnterminatedMultilineError.
 *
 * Note: a `for await` loop over the readable side destroys the stream when it ends; read it with
 * 'data'/pipe if you still write to it after the terminator.
 */
export class DotUnstuffer extends Transform {
  terminated = false;
  remainder: Buffer = Buffer.alloc(0);
  private state: State = State.LineStart;

  override write(chunk: Buffer | Uint8Array | string, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    const done = typeof encoding === 'function' ? encoding : callback;
    const data = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.terminated) {
      this.remainder = Buffer.concat([this.remainder, data]);
      if (done) process.nextTick(done);
      return true;
    }
    const { output, end } = this.unstuff(data);
    if (end < 0) return super.write(output, done);
    this.terminated = true;
    this.remainder = Buffer.from(data.subarray(end));
    if (output.length) super.write(output);
    super.end(done);
    this.emit('terminated');
    return true;
  }

  override end(...args: unknown[]): this {
    const done = args.find((arg): arg is WriteCallback => typeof arg === 'function');
    const chunk = args[0];
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) this.write(chunk, typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined);
    if (this.writableEnded) {
      if (done) process.nextTick(done);
    } else {
      super.end(done);
    }
    return this;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.terminated) return callback(new UnterminatedMultilineError('multi-line response ended without the CRLF.CRLF terminator'));
    callback();
  }

  /** Unstuffs one chunk; `end` is the offset just after the terminator, -1 if not in this chunk. */
  private unstuff(chunk: Buffer): { output: Buffer; end: number } {
    // at most one extra byte: a held-back '.\r' whose CR turns out to be content
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let n = 0;
    let state = this.state;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (state === State.LineStart && byte === DOT) {
        state = State.Dot;
        continue;
      }
      if (state === State.Dot) {
        if (byte === CR) {
          state = State.DotCr;
          continue;
        }
        // the held-back dot was stuffing: dropped
        state = State.InLine;
      } else if (state === State.DotCr) {
        if (byte === LF) {
          this.state = state;
          return { output: out.subarray(0, n), end: i + 1 };
        }
        // '.' CR something: the dot was stuffing, the CR is content
        out[n++] = CR;
        state = State.AfterCr;
      }
      out[n++] = byte;
      state = byte === CR ? State.AfterCr : state === State.AfterCr && byte === LF ? State.LineStart : State.InLine;
    }
    this.state = state;
    return { output: out.subarray(0, n), end: -1 };
  }
}
