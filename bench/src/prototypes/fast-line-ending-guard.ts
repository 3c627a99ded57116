/**
 * Prototype (proposed for libs/mime/src/bare-line-ending-guard.ts): the same checks as
 * BareLineEndingGuard (bare LF, bare CR, NUL; same error, same offset) but with native
 * Buffer.indexOf scans per line instead of a JavaScript loop over every byte.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { BareLineEndingError } from '@mailwarden/mime';

const CR = 0x0d;
const LF = 0x0a;

export class FastBareLineEndingGuard extends Transform {
  private prevCr = false;
  private offset = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const n = chunk.length;
    // Where each fault is *detected* while reading left to right (as the byte loop would).
    let bareCrAt = Infinity; // detected at the byte after the CR
    if (this.prevCr && n > 0 && chunk[0] !== LF) bareCrAt = 0;
    let bareLfAt = Infinity;
    for (let i = chunk.indexOf(LF); i >= 0 && i < bareCrAt; i = chunk.indexOf(LF, i + 1)) {
      if (i === 0 ? !this.prevCr : chunk[i - 1] !== CR) {
        bareLfAt = i;
        break;
      }
    }
    if (bareCrAt === Infinity) {
      for (let j = chunk.indexOf(CR); j >= 0 && j + 1 < n && j + 1 < bareLfAt; j = chunk.indexOf(CR, j + 1)) {
        if (chunk[j + 1] !== LF) {
          bareCrAt = j + 1;
          break;
        }
      }
    }
    const nulAt = chunk.indexOf(0);
    const first = Math.min(bareCrAt, bareLfAt, nulAt < 0 ? Infinity : nulAt);
    if (first !== Infinity) {
      if (first === bareCrAt) return callback(new BareLineEndingError('bare CR', this.offset + bareCrAt - 1));
      if (first === bareLfAt) return callback(new BareLineEndingError('bare LF', this.offset + bareLfAt));
      return callback(new BareLineEndingError('NUL', this.offset + first));
    }
    if (n > 0) this.prevCr = chunk[n - 1] === CR;
    this.offset += n;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.prevCr) return callback(new BareLineEndingError('bare CR', this.offset - 1));
    callback();
  }
}
