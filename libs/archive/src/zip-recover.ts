/**
 * Lenient member recovery for a corrupt zip, the two ways real tools still get members out:
 * (a) through the central directory, ignoring a broken local header (as zipfile / Java's ZipFile
 *     do when only the local CRC or sizes are damaged), and
 * (b) by carving local headers front to back (as Java's ZipInputStream, `zip -FF` and 7-Zip do
 *     for an archive cut before its central directory), reading to the end of the deflate stream
 *     or to the next zip signature when the sizes are missing.
 * A method clamd cannot unpack is also tried as stored and as deflate: a fake method number is a
 * way to hide a plain member.
 */
import { inflateBounded } from './bounded-inflate.js';
import { crc32 } from './crc32.js';
import type { MemberCollector } from './member-collector.js';
import { METHOD_DEFLATE, METHOD_STORED } from './zip-methods.js';
import {
  displayName,
  FLAG_DESCRIPTOR,
  FLAG_ENCRYPTED,
  FLAG_STRONG_ENCRYPTION,
  LOCAL_SIG_BYTES,
  readLocalHeader,
  type CentralEntry,
} from './zip-records.js';

interface Decoded {
  content: Buffer;
  /** Input bytes the member's data used. */
  used: number;
  how: string;
}

type Span = [start: number, end: number];

/** Signatures tried per archive: real members are far fewer; the rest is hostile padding. */
const MAX_CARVE_ATTEMPTS = 4096;

export function recoverZip(buf: Buffer, entries: CentralEntry[], delta: number, collector: MemberCollector): void {
  const claimed: Span[] = [];
  for (const e of entries) {
    if (collector.full) return;
    fromCentral(buf, e, delta, collector, claimed);
  }
  carve(buf, collector, claimed);
}

function fromCentral(buf: Buffer, e: CentralEntry, delta: number, collector: MemberCollector, claimed: Span[]): void {
  if (e.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) return; // ciphertext helps no scanner
  const pos = e.localOffset + delta;
  const lh = readLocalHeader(buf, pos);
  // Where the data starts depends on name and extra lengths; a zeroed local header has none, so
  // also try the central directory's lengths (extra fields often differ between the two).
  const starts = new Set<number>();
  if (lh?.signatureOk) starts.add(lh.dataStart);
  starts.add(pos + 30 + e.name.length + e.extraLength);
  starts.add(pos + 30 + e.name.length);
  if (lh) starts.add(lh.dataStart);
  const name = displayName(e.name);
  const fallbacks: Decoded[] = [];
  for (const start of starts) {
    if (start < 0 || start >= buf.length) continue;
    const data = buf.subarray(start, Math.min(buf.length, start + e.compressedSize));
    for (const d of decode(data, e.method, collector.room)) {
      if (d.content.length === e.size && crc32(d.content) === e.crc) {
        collector.add(name, d.content, `central directory (${d.how})`);
        claimed.push([pos, start + d.used]);
        return;
      }
      fallbacks.push(d);
    }
  }
  for (const d of fallbacks) collector.add(name, d.content, `central directory (${d.how}, unverified)`);
}

/** Every local header signature in the file, read with its own sizes, or without them. */
function carve(buf: Buffer, collector: MemberCollector, claimed: Span[]): void {
  // Bounded work whatever the input: a file made of signatures gets a fixed number of attempts.
  let attempts = 0;
  const maxAttempts = MAX_CARVE_ATTEMPTS;
  for (let from = 0; !collector.full && attempts < maxAttempts; ) {
    const p = buf.indexOf(LOCAL_SIG_BYTES, from);
    if (p < 0) return;
    const inside = claimed.find(([s, e]) => p >= s && p < e);
    if (inside) {
      from = inside[1]; // a signature inside a member already read (a nested stored zip) is that member's business
      continue;
    }
    from = p + 4;
    attempts++;
    const lh = readLocalHeader(buf, p);
    if (!lh || lh.dataStart > buf.length || lh.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) continue;
    const name = displayName(lh.name) || `member at offset ${p}`;
    const sized = !(lh.flags & FLAG_DESCRIPTOR) && lh.compressedSize > 0 && lh.dataStart + lh.compressedSize <= buf.length;
    const data = sized ? buf.subarray(lh.dataStart, lh.dataStart + lh.compressedSize) : buf.subarray(lh.dataStart);
    for (const d of decode(data, lh.method, collector.room, !sized)) {
      if (collector.add(name, d.content, `local header carve (${d.how})`)) {
        claimed.push([p, lh.dataStart + d.used]);
        from = Math.max(from, lh.dataStart + d.used);
      }
    }
  }
}

/**
 * Candidate contents of one member's data. `open`: the size is unknown, so stored data runs to the
 * next zip signature and deflate data to the end of its stream.
 */
function decode(data: Buffer, method: number, room: number, open = false): Decoded[] {
  const out: Decoded[] = [];
  const asStored = (): void => {
    const len = open ? storedLength(data) : data.length;
    if (len > 0) out.push({ content: data.subarray(0, Math.min(len, room)), used: len, how: method === METHOD_STORED ? 'stored' : `method ${method} read as stored` });
  };
  const asDeflate = (): void => {
    if (room === 0) return;
    const r = inflateBounded(data, room, true);
    if (r.output.length === 0) return;
    const how = method === METHOD_DEFLATE ? 'deflate' : `method ${method} read as deflate`;
    out.push({ content: r.output, used: r.ended ? r.consumed : data.length, how: r.ended ? how : `${how}, ${r.error}` });
  };
  if (method === METHOD_STORED) asStored();
  else if (method === METHOD_DEFLATE) asDeflate();
  else {
    asDeflate();
    asStored();
  }
  return out;
}

/** Stored data of unknown size ends where the next zip record starts (or at EOF). */
function storedLength(data: Buffer): number {
  const RECORDS = new Set([0x0304, 0x0102, 0x0506, 0x0708, 0x0606, 0x0607]);
  for (let q = data.indexOf('PK'); q >= 0; q = data.indexOf('PK', q + 1)) {
    if (q + 4 <= data.length && RECORDS.has(((data[q + 2] as number) << 8) | (data[q + 3] as number))) return q;
  }
  return data.length;
}
