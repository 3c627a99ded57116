/**
 * Readers for the zip records of APPNOTE.TXT (sections 4.3.x): end of central directory (plain
 * and Zip64), central directory entries, local file headers, data descriptors. They only decode
 * and bounds-check; judging consistency is zip.ts's job.
 */
export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_EOCD = 0x06054b50;
export const SIG_EOCD64 = 0x06064b50;
export const SIG_EOCD64_LOCATOR = 0x07064b50;
export const SIG_DESCRIPTOR = 0x08074b50;
export const LOCAL_SIG_BYTES = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/** Flag bits that change how a member is read (encryption, data descriptor, strong encryption). */
export const FLAG_ENCRYPTED = 0x0001;
export const FLAG_DESCRIPTOR = 0x0008;
export const FLAG_STRONG_ENCRYPTION = 0x0040;

export class ZipFormatError extends Error {
  override name = 'ZipFormatError';
}

export interface Eocd {
  /** Position of the plain end-of-central-directory record. */
  pos: number;
  commentLength: number;
  disk: number;
  cdDisk: number;
  entriesOnDisk: number;
  entries: number;
  cdSize: number;
  cdOffset: number;
  /** Where the central directory must end: the Zip64 record if there is one, else the EOCD. */
  cdEnd: number;
  zip64: boolean;
}

export interface CentralEntry {
  index: number;
  name: Buffer;
  extraLength: number;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  disk: number;
  localOffset: number;
  /** Sizes or offset came from a Zip64 extra field (descriptor sizes are then 8 bytes). */
  zip64: boolean;
}

export interface LocalHeader {
  signatureOk: boolean;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  nameLength: number;
  extraLength: number;
  name: Buffer;
  dataStart: number;
}

const MAX_COMMENT = 0xffff;

function u64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError(`64-bit field at offset ${at} is out of range`);
  return Number(v);
}

/** Every EOCD signature in the tail (the last one first), where a reader would look. */
export function eocdCandidates(buf: Buffer): number[] {
  const found: number[] = [];
  const floor = Math.max(0, buf.length - 22 - MAX_COMMENT);
  for (let p = buf.length - 22; p >= floor; p--) {
    if (buf[p] === 0x50 && buf[p + 1] === 0x4b && buf[p + 2] === 0x05 && buf[p + 3] === 0x06) found.push(p);
  }
  return found;
}

/** Decodes the EOCD at `pos`, following the Zip64 locator when there is one. */
export function readEocd(buf: Buffer, pos: number): Eocd {
  const e: Eocd = {
    pos,
    disk: buf.readUInt16LE(pos + 4),
    cdDisk: buf.readUInt16LE(pos + 6),
    entriesOnDisk: buf.readUInt16LE(pos + 8),
    entries: buf.readUInt16LE(pos + 10),
    cdSize: buf.readUInt32LE(pos + 12),
    cdOffset: buf.readUInt32LE(pos + 16),
    commentLength: buf.readUInt16LE(pos + 20),
    cdEnd: pos,
    zip64: false,
  };
  const loc = pos - 20;
  if (loc >= 0 && buf.readUInt32LE(loc) === SIG_EOCD64_LOCATOR) {
    // The locator's offset is relative to the archive start, which a prefix (SFX stub) shifts:
    // the record normally sits right before the locator, so look there when the offset misses.
    const declared = u64(buf, loc + 8);
    const at = [declared, loc - 56].find((p) => p >= 0 && p + 56 <= loc && buf.readUInt32LE(p) === SIG_EOCD64);
    if (at === undefined) throw new ZipFormatError('Zip64 end of central directory record is missing');
    e.zip64 = true;
    e.cdEnd = at;
    e.disk = buf.readUInt32LE(at + 16);
    e.cdDisk = buf.readUInt32LE(at + 20);
    e.entriesOnDisk = u64(buf, at + 24);
    e.entries = u64(buf, at + 32);
    e.cdSize = u64(buf, at + 40);
    e.cdOffset = u64(buf, at + 48);
  } else if (e.entries === 0xffff || e.cdSize === 0xffffffff || e.cdOffset === 0xffffffff) {
    throw new ZipFormatError('end of central directory asks for Zip64 but has no Zip64 locator');
  }
  return e;
}

/** Reads one central directory entry at `pos` (within [pos, end)); returns it and the next position. */
export function readCentralEntry(buf: Buffer, pos: number, end: number, index: number): { entry: CentralEntry; next: number } {
  if (pos + 46 > end) throw new ZipFormatError(`central directory entry ${index + 1} is cut off`);
  if (buf.readUInt32LE(pos) !== SIG_CENTRAL) throw new ZipFormatError(`central directory entry ${index + 1} has no signature`);
  const nameLength = buf.readUInt16LE(pos + 28);
  const extraLength = buf.readUInt16LE(pos + 30);
  const commentLength = buf.readUInt16LE(pos + 32);
  const next = pos + 46 + nameLength + extraLength + commentLength;
  if (next > end) throw new ZipFormatError(`central directory entry ${index + 1} runs past the central directory`);
  const entry: CentralEntry = {
    index,
    name: buf.subarray(pos + 46, pos + 46 + nameLength),
    extraLength,
    flags: buf.readUInt16LE(pos + 8),
    method: buf.readUInt16LE(pos + 10),
    crc: buf.readUInt32LE(pos + 16),
    compressedSize: buf.readUInt32LE(pos + 20),
    size: buf.readUInt32LE(pos + 24),
    disk: buf.readUInt16LE(pos + 34),
    localOffset: buf.readUInt32LE(pos + 42),
    zip64: false,
  };
  applyZip64Extra(buf.subarray(pos + 46 + nameLength, pos + 46 + nameLength + extraLength), entry);
  return { entry, next };
}

/** APPNOTE 4.5.3: the Zip64 extra field holds, in order, only the fields set to all ones. */
function applyZip64Extra(extra: Buffer, e: CentralEntry): void {
  const needs = e.size === 0xffffffff || e.compressedSize === 0xffffffff || e.localOffset === 0xffffffff || e.disk === 0xffff;
  for (let p = 0; p + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    const body = extra.subarray(p + 4, Math.min(extra.length, p + 4 + len));
    p += 4 + len;
    if (id !== 0x0001) continue;
    let q = 0;
    const take = (): number => {
      if (q + 8 > body.length) throw new ZipFormatError(`Zip64 extra field of entry ${e.index + 1} is too short`);
      const v = u64(body, q);
      q += 8;
      return v;
    };
    if (e.size === 0xffffffff) e.size = take();
    if (e.compressedSize === 0xffffffff) e.compressedSize = take();
    if (e.localOffset === 0xffffffff) e.localOffset = take();
    if (e.disk === 0xffff && q + 4 <= body.length) e.disk = body.readUInt32LE(q);
    e.zip64 = true;
    return;
  }
  if (needs) throw new ZipFormatError(`entry ${e.index + 1} needs a Zip64 extra field and has none`);
}

/** Reads the local header at `pos`, or undefined when it does not fit in the file. */
export function readLocalHeader(buf: Buffer, pos: number): LocalHeader | undefined {
  if (pos < 0 || pos + 30 > buf.length) return undefined;
  const nameLength = buf.readUInt16LE(pos + 26);
  const extraLength = buf.readUInt16LE(pos + 28);
  const h: LocalHeader = {
    signatureOk: buf.readUInt32LE(pos) === SIG_LOCAL,
    flags: buf.readUInt16LE(pos + 6),
    method: buf.readUInt16LE(pos + 8),
    crc: buf.readUInt32LE(pos + 14),
    compressedSize: buf.readUInt32LE(pos + 18),
    size: buf.readUInt32LE(pos + 22),
    nameLength,
    extraLength,
    name: buf.subarray(pos + 30, Math.min(buf.length, pos + 30 + nameLength)),
    dataStart: pos + 30 + nameLength + extraLength,
  };
  // A local Zip64 extra field always holds both sizes (APPNOTE 4.5.3).
  if (h.size === 0xffffffff || h.compressedSize === 0xffffffff) {
    const extra = buf.subarray(pos + 30 + nameLength, Math.min(buf.length, h.dataStart));
    for (let p = 0; p + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(p);
      const len = extra.readUInt16LE(p + 2);
      if (id === 0x0001 && len >= 16 && p + 20 <= extra.length) {
        h.size = u64(extra, p + 4);
        h.compressedSize = u64(extra, p + 12);
        break;
      }
      p += 4 + len;
    }
  }
  return h;
}

export interface Descriptor {
  crc: number;
  compressedSize: number;
  size: number;
  length: number;
}

/** The data descriptor at `pos` (signature optional, APPNOTE 4.3.9); undefined if it does not fit. */
export function readDescriptor(buf: Buffer, pos: number, zip64: boolean): Descriptor | undefined {
  const signed = pos + 4 <= buf.length && buf.readUInt32LE(pos) === SIG_DESCRIPTOR;
  const at = signed ? pos + 4 : pos;
  const length = (signed ? 4 : 0) + (zip64 ? 20 : 12);
  if (pos + length > buf.length) return undefined;
  return zip64
    ? { crc: buf.readUInt32LE(at), compressedSize: u64(buf, at + 4), size: u64(buf, at + 12), length }
    : { crc: buf.readUInt32LE(at), compressedSize: buf.readUInt32LE(at + 4), size: buf.readUInt32LE(at + 8), length };
}

/** A member name fit for a log line: decoded, control characters replaced, length capped. */
export function displayName(name: Buffer): string {
  // eslint-disable-next-line no-control-regex
  const s = name.toString('utf8').replace(/[\u0000-\u001f\u007f]/g, '?');
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}
