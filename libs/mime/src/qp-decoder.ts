import { Transform, type TransformCallback } from 'node:stream';
import libqp from 'libqp';

/** A line longer than this is decoded in pieces, so memory stays bounded on one-line bodies. */
const MAX_PENDING = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const EQ = 0x3d;
const SP = 0x20;
const TAB = 0x09;

/**
 * Streaming quoted-printable decoder. libqp's own Decoder stream buffers the whole part before
 * decoding it; this one decodes line by line with libqp.decode (same result as decoding the whole
 * input at once) and keeps at most one incomplete line, itself cut at MAX_PENDING.
 */
export class QpDecoder extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let cut = buf.lastIndexOf(LF) + 1;
    if (cut === 0 && buf.length > MAX_PENDING) cut = safeCut(buf);
    if (cut > 0) {
      const decoded = libqp.decode(buf.subarray(0, cut));
      if (decoded.length) this.push(decoded);
    }
    // copy: a subarray would pin the whole (possibly large) chunk in memory
    this.pending = Buffer.from(buf.subarray(cut));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.pending.length) {
      const decoded = libqp.decode(this.pending);
      if (decoded.length) this.push(decoded);
      this.pending = Buffer.alloc(0);
    }
    callback();
  }
}

/**
 * A position inside a line where decoding both halves apart gives the same bytes as decoding the
 * whole: not inside or right after an escape or a soft line break, not after whitespace (which
 * is dropped at the end of a line). A pathological line of only such bytes is cut anyway.
 */
function safeCut(buf: Buffer): number {
  for (let p = buf.length - 1; p > 2; p--) {
    const prev = buf[p - 1];
    if (prev === EQ || prev === CR || prev === SP || prev === TAB || buf[p - 2] === EQ) continue;
    return p;
  }
  return buf.length - 2;
}
