/**
 * 7z integrity, as far as it can be judged without an LZMA decoder: the signature header's CRC,
 * and the next header (the archive's directory) lying inside the file with a matching CRC. A
 * 7z cut short loses its next header, which sits at the end. Members are not recovered.
 */
import { crc32 } from './crc32.js';
import { Problems } from './problems.js';
import type { ArchiveCheck } from './types.js';

const SIGNATURE = Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]);
/** Coder id of 7zAES: visible when the next header is an unpacked EncodedHeader (header encryption). */
const AES_CODER = Buffer.from([0x06, 0xf1, 0x07, 0x01]);
const K_HEADER = 0x01;
const K_ENCODED_HEADER = 0x17;

export function isSevenZip(buf: Buffer): boolean {
  return buf.length >= 6 && buf.subarray(0, 6).equals(SIGNATURE);
}

export function checkSevenZip(buf: Buffer): ArchiveCheck {
  const problems = new Problems();
  let encrypted = false;
  if (buf.length < 32) problems.add('7z signature header is cut off');
  else {
    if (buf[6] !== 0) problems.add(`unknown 7z format version ${buf[6]}.${buf[7]}`);
    if (crc32(buf.subarray(12, 32)) !== buf.readUInt32LE(8)) problems.add('7z start header CRC does not match');
    const offset = buf.readBigUInt64LE(12);
    const size = buf.readBigUInt64LE(20);
    const end = 32n + offset + size;
    if (end > BigInt(buf.length)) problems.add('7z next header lies beyond the end of the file (cut short?)');
    else {
      const start = Number(32n + offset);
      const header = buf.subarray(start, Number(end));
      if (crc32(header) !== buf.readUInt32LE(28)) problems.add('7z next header CRC does not match');
      else if (header.length > 0 && header[0] !== K_HEADER && header[0] !== K_ENCODED_HEADER) problems.add('7z next header is of an unknown kind');
      if (Number(end) < buf.length) problems.add(`${buf.length - Number(end)} bytes after the 7z next header`);
      encrypted = header.includes(AES_CODER);
    }
  }
  if (problems.any) return { format: '7z', status: 'corrupt', detail: problems.detail, members: [] };
  return { format: '7z', status: encrypted ? 'encrypted' : 'intact', members: [] };
}
