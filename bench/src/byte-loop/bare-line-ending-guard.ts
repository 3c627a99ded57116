/**
 * The BareLineEndingGuard of libs/mime before commit abcc893 (a JavaScript loop over every byte),
 * kept as the baseline of bench/src/micro.ts.
 */
import { Transform, type TransformCallback } from 'node:stream';
/** The error the old guard threw (kept here: libs/mime now canonicalises instead). */
class BareLineEndingError extends Error {
  override name = 'BareLineEndingError';
  constructor(
    readonly what: 'bare LF' | 'bare CR' | 'NUL',
    readonly offset: number,
  ) {
    super(`${what} at byte ${offset}`);
  }
}

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

/**
 * Passes bytes through unchanged, but fails with BareLineEndingError as soon as it sees a LF not
 * preceded by CR, a CR not followed by LF (also at the very end), or a NUL, across any chunking.
 * The chunk holding the offending byte is not passed on.
 */
export class ByteLoopBareLineEndingGuard extends Transform {
  private prevCr = false;
  private offset = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let prevCr = this.prevCr;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (prevCr && byte !== LF) return callback(new BareLineEndingError('bare CR', this.offset + i - 1));
      if (byte === LF && !prevCr) return callback(new BareLineEndingError('bare LF', this.offset + i));
      if (byte === NUL) return callback(new BareLineEndingError('NUL', this.offset + i));
      prevCr = byte === CR;
    }
    this.prevCr = prevCr;
    this.offset += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.prevCr) return callback(new BareLineEndingError('bare CR', this.offset - 1));
    callback();
  }
}
