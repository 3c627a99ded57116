import { PassThrough, type Transform } from 'node:stream';
import libbase64 from 'libbase64';
import { QpDecoder } from './qp-decoder.js';

/**
 * A stream that undoes a Content-Transfer-Encoding: base64 and quoted-printable are decoded, any
 * other value (7bit, 8bit, binary, x-uuencode, unknown) passes the bytes unchanged.
 */
export function createDecoder(encoding: string | undefined): Transform {
  switch ((encoding ?? '').toLowerCase().trim()) {
    case 'base64':
      return new libbase64.Decoder();
    case 'quoted-printable':
      return new QpDecoder();
    default:
      return new PassThrough();
  }
}
