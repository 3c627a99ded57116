import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

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
 * On the terminator: the readable side ends ('end' once read), `terminated` becomes true and
 * 'terminated' is emitted synchronously (within the write that completed it), so a reader can stop
 * feeding socket data at once. `remainder` holds the bytes that came after the terminator (the
 * start of the next response); bytes written after that are appended to `remainder`, never to
 * the message. Ending the writable side before the terminator is an UnterminatedMultilineError.
 */
export class DotUnstuffer extends Transform {
  terminated = false;
  remainder: Buffer = Buffer.alloc(0);
  private state: State = State.LineStart;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.terminated) {
      this.remainder = Buffer.concat([this.remainder, chunk]);
      return callback();
    }
    // at most one extra byte per chunk: a held-back '.\r' whose CR turns out to be content
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let n = 0;
    let state = this.state;
    let done = false;
    let i = 0;
    for (; i < chunk.length; i++) {
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
          done = true;
          break;
        }
        // '.' CR something: the dot was stuffing, the CR is content
        out[n++] = CR;
        state = State.AfterCr;
      }
      out[n++] = byte;
      state = byte === CR ? State.AfterCr : state === State.AfterCr && byte === LF ? State.LineStart : State.InLine;
    }
    this.state = state;
    if (n) this.push(out.subarray(0, n));
    if (done) {
      this.terminated = true;
      this.remainder = Buffer.from(chunk.subarray(i + 1));
      this.push(null);
      this.emit('terminated');
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.terminated) return callback(new UnterminatedMultilineError('multi-line response ended without the CRLF.CRLF terminator'));
    callback();
  }
}
