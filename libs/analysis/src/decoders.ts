import { PassThrough, Transform, type TransformCallback } from 'node:stream';

const JUNK = /[^A-Za-z0-9+/=]+/g;

/**
 * Lenient base64: every byte outside the alphabet is skipped, as most mail clients do.
 * - `restart`: padding ends a quantum and decoding goes on after it (concatenated base64).
 * - `ignore-padding`: '=' is skipped like junk, the alphabet bytes decode as one stream.
 * String operations and Buffer.from(…, 'base64') rather than a loop over bytes: native speed.
 */
export class LenientBase64Decoder extends Transform {
  /** Alphabet characters of an unfinished quantum (fewer than 4). */
  private pending = '';

  /** `skip`: alphabet characters dropped at the start (another alignment of the quanta). */
  constructor(
    private readonly mode: 'restart' | 'ignore-padding' = 'restart',
    private skip = 0,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let text = chunk.toString('latin1').replace(JUNK, '');
    if (this.skip) {
      const dropped = text.slice(0, this.skip).replace(/=/g, '').length;
      text = text.slice(dropped === this.skip ? this.skip : text.length);
      this.skip -= Math.min(this.skip, dropped);
    }
    if (this.mode === 'ignore-padding') text = text.replace(/=/g, '');
    const segments = text.split(/=+/);
    const out: Buffer[] = [];
    segments.forEach((segment, i) => {
      const chars = this.pending + segment;
      if (i < segments.length - 1) {
        // padding follows: this quantum ends here, whatever is left of it
        out.push(Buffer.from(chars, 'base64'));
        this.pending = '';
        return;
      }
      const whole = chars.length - (chars.length % 4);
      if (whole) out.push(Buffer.from(chars.slice(0, whole), 'base64'));
      this.pending = chars.slice(whole);
    });
    const bytes = out.length === 1 ? out[0]! : Buffer.concat(out);
    cb(null, bytes.length ? bytes : undefined);
  }

  override _flush(cb: TransformCallback): void {
    const rest = Buffer.from(this.pending, 'base64');
    this.pending = '';
    cb(null, rest.length ? rest : undefined);
  }
}

const HEX = new Int8Array(256).fill(-1);
'0123456789ABCDEF'.split('').forEach((c, i) => {
  HEX[c.charCodeAt(0)] = i;
  HEX[c.toLowerCase().charCodeAt(0)] = i;
});

/** Lenient quoted-printable: `=XX` in either case, soft breaks with CRLF or LF (and trailing blanks), a stray `=` kept. */
export class LenientQpDecoder extends Transform {
  private carry = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const { out, used } = this.decode(data, false);
    this.carry = Buffer.from(data.subarray(used));
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.decode(this.carry, true).out);
  }

  private decode(data: Buffer, final: boolean): { out: Buffer; used: number } {
    const out = Buffer.allocUnsafe(data.length);
    let n = 0;
    let i = 0;
    while (i < data.length) {
      const c = data[i]!;
      if (c !== 0x3d) {
        out[n++] = c;
        i++;
        continue;
      }
      // need up to 2 more bytes (=XX, =\r\n) plus blanks before a soft break
      let j = i + 1;
      while (j < data.length && (data[j] === 0x20 || data[j] === 0x09)) j++;
      if (j + 1 >= data.length && !final) break;
      if (data[j] === 0x0a) {
        i = j + 1;
        continue;
      }
      if (data[j] === 0x0d && data[j + 1] === 0x0a) {
        i = j + 2;
        continue;
      }
      const h = HEX[data[i + 1] ?? 0]!;
      const l = HEX[data[i + 2] ?? 0]!;
      if (h >= 0 && l >= 0) {
        out[n++] = (h << 4) | l;
        i += 3;
      } else {
        out[n++] = c;
        i++;
      }
    }
    return { out: out.subarray(0, n), used: i };
  }
}

/** `%XX` escapes of a URI (a percent-encoded data: URI); anything else is kept as it is. */
export class PercentDecoder extends Transform {
  private carry = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    // an escape cut by the chunk boundary waits for the next chunk
    const tail = data.lastIndexOf(0x25, data.length - 1);
    const keep = tail >= 0 && tail > data.length - 3 ? data.length - tail : 0;
    this.carry = Buffer.from(data.subarray(data.length - keep));
    cb(null, percentDecode(data.subarray(0, data.length - keep)));
  }

  override _flush(cb: TransformCallback): void {
    cb(null, percentDecode(this.carry));
  }
}

function percentDecode(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    const h = c === 0x25 ? HEX[data[i + 1] ?? 0]! : -1;
    const l = h >= 0 ? HEX[data[i + 2] ?? 0]! : -1;
    if (l >= 0) {
      out[n++] = (h << 4) | l;
      i += 2;
    } else out[n++] = c;
  }
  return out.subarray(0, n);
}

/** A decoder for a whole body under `decoding`; uu bodies are decoded by block (blocks.ts), so identity here. */
export function createLenientDecoder(decoding: 'identity' | 'base64' | 'base64-ignore-padding' | 'qp'): Transform {
  switch (decoding) {
    case 'base64':
      return new LenientBase64Decoder('restart');
    case 'base64-ignore-padding':
      return new LenientBase64Decoder('ignore-padding');
    case 'qp':
      return new LenientQpDecoder();
    default:
      return new PassThrough();
  }
}

/** One uuencoded line → bytes (length from its first character; short lines padded, as uudecode tolerates). */
export function uudecodeLine(line: Buffer): Buffer {
  if (!line.length) return Buffer.alloc(0);
  const len = (line[0]! - 32) & 0x3f;
  const out = Buffer.alloc(len);
  const val = (k: number): number => ((line[k] ?? 0x20) - 32) & 0x3f;
  let o = 0;
  for (let k = 1; o < len; k += 4) {
    const a = val(k);
    const b = val(k + 1);
    const c = val(k + 2);
    const d = val(k + 3);
    out[o++] = (a << 2) | (b >> 4);
    if (o < len) out[o++] = ((b << 4) | (c >> 2)) & 0xff;
    if (o < len) out[o++] = ((c << 6) | d) & 0xff;
  }
  return out;
}

/** One yEnc line → bytes (each byte minus 42; `=` escapes the next minus 64). */
export function ydecodeLine(line: Buffer): Buffer {
  const out = Buffer.allocUnsafe(line.length);
  let n = 0;
  for (let i = 0; i < line.length; i++) {
    let c = line[i]!;
    if (c === 0x3d && i + 1 < line.length) c = (line[++i]! - 64) & 0xff;
    out[n++] = (c - 42) & 0xff;
  }
  return out.subarray(0, n);
}
