/**
 * Prototype (proposed for libs/mime/src/dot-stuffer.ts): the same transform as DotStuffer, but it
 * finds line-starting dots with Buffer.indexOf('\r\n.') (native memchr/memmem) instead of a
 * JavaScript loop over every byte. Identical output for any input and any chunking (checked by
 * bench/src/micro.ts against the real DotStuffer).
 */
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF_DOT = Buffer.from('\r\n.');
const TERMINATOR = Buffer.from('.\r\n');
const EXTRA_DOT = Buffer.from('.');

export class FastDotStuffer extends Transform {
  private lineStart = true;
  private prevCr = false;
  private lastByte = -1;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const n = chunk.length;
    if (!n) return callback();
    const out: Buffer[] = [];
    let from = 0;
    if (this.lineStart && chunk[0] === DOT) {
      out.push(EXTRA_DOT);
    } else if (this.prevCr && chunk[0] === LF && n > 1 && chunk[1] === DOT) {
      out.push(chunk.subarray(0, 1), EXTRA_DOT);
      from = 1;
    }
    for (let i = chunk.indexOf(CRLF_DOT); i >= 0; i = chunk.indexOf(CRLF_DOT, i + 2)) {
      out.push(chunk.subarray(from, i + 2), EXTRA_DOT);
      from = i + 2;
    }
    // The state for the next chunk: a line starts after CRLF (possibly split across chunks).
    this.lineStart = n >= 2 ? chunk[n - 2] === CR && chunk[n - 1] === LF : this.prevCr && chunk[0] === LF;
    this.prevCr = chunk[n - 1] === CR;
    this.lastByte = chunk[n - 1]!;
    if (!out.length) return callback(null, chunk);
    out.push(chunk.subarray(from));
    callback(null, Buffer.concat(out));
  }

  override _flush(callback: TransformCallback): void {
    if (this.lastByte === -1 || this.lineStart) callback(null, TERMINATOR);
    else if (this.lastByte === CR) callback(null, Buffer.from('\n.\r\n'));
    else callback(null, Buffer.from('\r\n.\r\n'));
  }
}
