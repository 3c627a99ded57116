import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const TERMINATOR = Buffer.from('.\r\n');
const EXTRA_DOT = Buffer.from('.');
const LF_DOT = Buffer.from('\n.');

/**
 * Message → SMTP DATA / POP3 multi-line body (RFC 5321 4.5.2, RFC 1939 3): doubles a '.' that
 * starts a line (a line starts after CRLF, and at the very beginning), makes sure the content
 * ends with CRLF, and appends the `.\r\n` terminator. Works across any chunking. The input should
 * be CRLF-only (see LineEndingCanonicalizer); a bare LF does not start a line here.
 */
export class DotStuffer extends Transform {
  /** True at the start of a line (after CRLF or at the very beginning). */
  private lineStart = true;
  private lastByte = -1;
  private prevCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!chunk.length) return callback();
    // Native searches for "\n." instead of a per-byte loop: this runs over every delivered byte.
    const out: Buffer[] = [];
    let from = 0;
    if (this.lineStart && chunk[0] === DOT) {
      out.push(EXTRA_DOT);
    }
    for (let p = chunk.indexOf(LF_DOT); p !== -1; p = chunk.indexOf(LF_DOT, p + 1)) {
      const afterCr = p === 0 ? this.prevCr : chunk[p - 1] === CR;
      if (!afterCr) continue;
      out.push(chunk.subarray(from, p + 1), EXTRA_DOT);
      from = p + 1;
    }
    out.push(chunk.subarray(from));
    const last = chunk[chunk.length - 1]!;
    this.lineStart = last === LF && (chunk.length > 1 ? chunk[chunk.length - 2] === CR : this.prevCr);
    this.prevCr = last === CR;
    this.lastByte = last;
    callback(null, out.length === 1 ? out[0] : Buffer.concat(out));
  }

  override _flush(callback: TransformCallback): void {
    if (this.lastByte === -1 || this.lineStart) callback(null, TERMINATOR);
    else if (this.lastByte === CR) callback(null, Buffer.from('\n.\r\n'));
    else callback(null, Buffer.from('\r\n.\r\n'));
  }
}
