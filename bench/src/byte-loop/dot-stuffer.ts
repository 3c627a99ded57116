/**
 * The DotStuffer of libs/mime before commit abcc893 (a JavaScript loop over every byte), kept as
 * the baseline of bench/src/micro.ts.
 */
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const TERMINATOR = Buffer.from('.\r\n');
const EXTRA_DOT = Buffer.from('.');

/**
 * Message → SMTP DATA / POP3 multi-line body (RFC 5321 4.5.2, RFC 1939 3): doubles a '.' that
 * starts a line (a line starts after CRLF, and at the very beginning), makes sure the content
 * ends with CRLF, and appends the `.\r\n` terminator. Works across any chunking. The input should
 * be CRLF-only (see BareLineEndingGuard); a bare LF does not start a line here.
 */
export class ByteLoopDotStuffer extends Transform {
  /** True at the start of a line (after CRLF or at the very beginning). */
  private lineStart = true;
  private lastByte = -1;
  private prevCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!chunk.length) return callback();
    const out: Buffer[] = [];
    let from = 0;
    let lineStart = this.lineStart;
    let prevCr = this.prevCr;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (lineStart && byte === DOT) {
        out.push(chunk.subarray(from, i), EXTRA_DOT);
        from = i;
      }
      lineStart = byte === LF && prevCr;
      prevCr = byte === CR;
    }
    out.push(chunk.subarray(from));
    this.lineStart = lineStart;
    this.prevCr = prevCr;
    this.lastByte = chunk[chunk.length - 1] ?? -1;
    callback(null, out.length === 1 ? out[0] : Buffer.concat(out));
  }

  override _flush(callback: TransformCallback): void {
    if (this.lastByte === -1 || this.lineStart) callback(null, TERMINATOR);
    else if (this.lastByte === CR) callback(null, Buffer.from('\n.\r\n'));
    else callback(null, Buffer.from('\r\n.\r\n'));
  }
}
