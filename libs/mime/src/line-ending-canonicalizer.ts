import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const CRLF = Buffer.from('\r\n');

/** DATA held a NUL byte: no line-ending fix can make that a valid message. */
export class NulByteError extends Error {
  override name = 'NulByteError';
  constructor(
    /** Byte offset of the NUL in the whole stream. */
    readonly offset: number,
  ) {
    super(`NUL byte at ${offset}`);
  }
}

/**
 * Makes every line ending CRLF: a bare LF or a bare CR becomes CRLF (what Postfix's
 * `smtpd_forbid_bare_newline = normalize` and every SMTP client library do); a NUL byte fails
 * with NulByteError. Used on SMTP DATA so that nothing but CRLF ever reaches
 * upstream: a smuggled `\n.\n` becomes an ordinary line that dot-stuffing then escapes, so
 * upstream can never see a second message (SMTP smuggling). CRLF-only input passes unchanged.
 * `changed` tells whether anything was rewritten.
 */
export class LineEndingCanonicalizer extends Transform {
  changed = false;
  private prevCr = false;
  private offset = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!chunk.length) return callback();
    const nul = chunk.indexOf(NUL);
    if (nul !== -1) return callback(new NulByteError(this.offset + nul));
    const out = this.clean(chunk) ? chunk : this.rewrite(chunk);
    this.offset += chunk.length;
    callback(null, out);
  }

  override _flush(callback: TransformCallback): void {
    // A CR at the very end was not followed by LF.
    if (this.prevCr) {
      this.changed = true;
      return callback(null, Buffer.from('\n'));
    }
    callback();
  }

  /** Native searches: true when every CR and LF in the chunk is part of a CRLF (the usual case). */
  private clean(chunk: Buffer): boolean {
    if (this.prevCr && chunk[0] !== LF) return false;
    for (let p = chunk.indexOf(LF); p !== -1; p = chunk.indexOf(LF, p + 1)) {
      if (p === 0 ? !this.prevCr : chunk[p - 1] !== CR) return false;
    }
    for (let p = chunk.indexOf(CR); p !== -1 && p < chunk.length - 1; p = chunk.indexOf(CR, p + 1)) {
      if (chunk[p + 1] !== LF) return false;
    }
    this.prevCr = chunk[chunk.length - 1] === CR;
    return true;
  }

  /** The rare path: byte by byte. */
  private rewrite(chunk: Buffer): Buffer {
    this.changed = true;
    const out: Buffer[] = [];
    let from = 0;
    let prevCr = this.prevCr;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (prevCr && b !== LF) {
        // The CR before this byte (possibly in the previous chunk) stood alone: add its LF.
        out.push(chunk.subarray(from, i), Buffer.from('\n'));
        from = i;
      }
      if (b === LF && !prevCr) {
        out.push(chunk.subarray(from, i), CRLF);
        from = i + 1;
      }
      prevCr = b === CR;
    }
    out.push(chunk.subarray(from));
    this.prevCr = prevCr;
    return Buffer.concat(out);
  }
}
