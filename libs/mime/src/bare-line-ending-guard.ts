import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

export type BareLineEndingKind = 'bare LF' | 'bare CR' | 'NUL';

/** The input has a line ending that is not CRLF, or a NUL byte (SMTP smuggling protection). */
export class BareLineEndingError extends Error {
  override name = 'BareLineEndingError';
  constructor(
    readonly what: BareLineEndingKind,
    /** Byte offset of the offending byte in the whole stream. */
    readonly offset: number,
  ) {
    super(`${what} at byte ${offset}: only CRLF line endings are allowed`);
  }
}

/**
 * Passes bytes through unchanged, but fails with BareLineEndingError as soon as it sees a LF not
 * preceded by CR, a CR not followed by LF (also at the very end), or a NUL, across any chunking.
 * The chunk holding the offending byte is not passed on.
 */
export class BareLineEndingGuard extends Transform {
  private prevCr = false;
  private offset = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!chunk.length) return callback();
    if (this.prevCr && chunk[0] !== LF) return callback(new BareLineEndingError('bare CR', this.offset - 1));
    // Native searches rather than a per-byte loop (this sees every byte of every message); the
    // earliest offending byte is reported.
    let bad: { at: number; what: BareLineEndingKind } | undefined;
    const worse = (at: number, what: BareLineEndingKind) => {
      if (!bad || at < bad.at) bad = { at, what };
    };
    const nul = chunk.indexOf(NUL);
    if (nul !== -1) worse(nul, 'NUL');
    for (let p = chunk.indexOf(LF); p !== -1 && (!bad || p < bad.at); p = chunk.indexOf(LF, p + 1)) {
      if (p === 0 ? !this.prevCr : chunk[p - 1] !== CR) worse(p, 'bare LF');
    }
    for (let p = chunk.indexOf(CR); p !== -1 && p < chunk.length - 1 && (!bad || p < bad.at); p = chunk.indexOf(CR, p + 1)) {
      if (chunk[p + 1] !== LF) worse(p, 'bare CR');
    }
    if (bad) return callback(new BareLineEndingError(bad.what, this.offset + bad.at));
    this.prevCr = chunk[chunk.length - 1] === CR;
    this.offset += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.prevCr) return callback(new BareLineEndingError('bare CR', this.offset - 1));
    callback();
  }
}
