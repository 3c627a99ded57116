/**
 * gzip (RFC 1952) integrity: every member's header parses, its deflate stream ends, and the
 * trailer's CRC-32 and ISIZE match; members may follow each other (gunzip concatenates them).
 * Anything else after the last member is data gunzip skips with a warning and clamd may never
 * look at, so it is corrupt and handed back as a member of its own.
 */
import { inflateBounded } from './bounded-inflate.js';
import { crc32 } from './crc32.js';
import { MemberCollector } from './member-collector.js';
import { Problems } from './problems.js';
import type { ArchiveCheck, ArchiveLimits } from './types.js';

const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const FRESERVED = 0xe0;

class GzipHeaderError extends Error {
  override name = 'GzipHeaderError';
}

export function isGzip(buf: Buffer): boolean {
  return buf.length >= 3 && buf[0] === 0x1f && buf[1] === 0x8b && buf[2] === 8;
}

function readHeader(buf: Buffer, pos: number): { dataStart: number; name?: string } {
  if (pos + 10 > buf.length) throw new GzipHeaderError('gzip header is cut off');
  if (buf[pos] !== 0x1f || buf[pos + 1] !== 0x8b || buf[pos + 2] !== 8) throw new GzipHeaderError('not a deflate gzip member');
  const flags = buf[pos + 3] as number;
  if (flags & FRESERVED) throw new GzipHeaderError('reserved gzip header flags are set');
  let p = pos + 10;
  let name: string | undefined;
  if (flags & FEXTRA) {
    if (p + 2 > buf.length) throw new GzipHeaderError('gzip extra field is cut off');
    p += 2 + buf.readUInt16LE(p);
  }
  const zeroTerminated = (what: string): string => {
    const end = buf.indexOf(0, p);
    if (end < 0) throw new GzipHeaderError(`gzip ${what} is not terminated`);
    const s = buf.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  if (flags & FNAME) name = zeroTerminated('file name');
  if (flags & FCOMMENT) zeroTerminated('comment');
  if (flags & FHCRC) {
    if (p + 2 > buf.length) throw new GzipHeaderError('gzip header CRC is cut off');
    if ((crc32(buf.subarray(pos, p)) & 0xffff) !== buf.readUInt16LE(p)) throw new GzipHeaderError('gzip header CRC does not match');
    p += 2;
  }
  if (p > buf.length) throw new GzipHeaderError('gzip header is cut off');
  return { dataStart: p, name };
}

/** `nested`: for an intact gzip, hand back its output when that is an archive itself (a .tar.gz, a zipped zip). */
export function checkGzip(buf: Buffer, limits: ArchiveLimits, nested?: (member: Buffer) => boolean): ArchiveCheck {
  const problems = new Problems();
  const outputs: Buffer[] = [];
  let produced = 0;
  let firstName: string | undefined;
  let trailing: Buffer | undefined;
  // gunzip writes one file: all members' output together is held to one member's limit.
  const cap = Math.min(limits.maxMemberBytes, limits.maxTotalBytes);
  try {
    for (let pos = 0, n = 1; ; n++) {
      const header = readHeader(buf, pos);
      firstName ??= header.name;
      const data = buf.subarray(header.dataStart);
      const r = inflateBounded(data, cap - produced, false);
      if (!r.ended) {
        if (r.overLimit) break; // too big to verify within limits: not a sign of corruption
        problems.add(`gzip member ${n}: ${r.error}`);
        const partial = inflateBounded(data, cap - produced, true).output;
        outputs.push(partial);
        break;
      }
      outputs.push(r.output);
      produced += r.output.length;
      const t = header.dataStart + r.consumed;
      if (t + 8 > buf.length) {
        problems.add(`gzip member ${n}: trailer is cut off`);
        break;
      }
      if (buf.readUInt32LE(t) !== crc32(r.output)) problems.add(`gzip member ${n}: CRC-32 does not match`);
      if (buf.readUInt32LE(t + 4) !== r.output.length % 2 ** 32) problems.add(`gzip member ${n}: ISIZE does not match`);
      pos = t + 8;
      if (pos === buf.length) break;
      if (buf[pos] === 0x1f && buf[pos + 1] === 0x8b) continue;
      // Zero padding (tape blocking) hides nothing; gzip itself accepts it.
      if (buf.subarray(pos).every((b) => b === 0)) break;
      problems.add(`${buf.length - pos} bytes of trailing data after gzip member ${n}`);
      trailing = buf.subarray(pos);
      break;
    }
  } catch (err) {
    problems.addError('gzip', err);
  }
  if (!problems.any) {
    const output = nested && outputs.length ? Buffer.concat(outputs) : undefined;
    return { format: 'gzip', status: 'intact', members: output && nested?.(output) ? [{ name: firstName || 'gunzip output', content: output, via: 'gunzip output' }] : [] };
  }
  const collector = new MemberCollector(limits);
  collector.add(firstName || 'gunzip output', Buffer.concat(outputs), 'gunzip output');
  if (trailing) collector.add('trailing data', trailing, 'data after the last gzip member');
  return { format: 'gzip', status: 'corrupt', detail: problems.detail, members: collector.members };
}
