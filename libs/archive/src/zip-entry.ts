/**
 * Checks one central directory entry against its local header and its data: the places where
 * readers that trust different records (CD-driven: zipfile, unzip, clamd; stream-driven: Java's
 * ZipInputStream, carving) would see different members.
 */
import { inflateBounded } from './bounded-inflate.js';
import { crc32 } from './crc32.js';
import type { Problems } from './problems.js';
import { CLAMD_ZIP_METHODS, METHOD_AES, METHOD_DEFLATE, METHOD_STORED } from './zip-methods.js';
import {
  displayName,
  FLAG_DESCRIPTOR,
  FLAG_ENCRYPTED,
  FLAG_STRONG_ENCRYPTION,
  readDescriptor,
  readLocalHeader,
  type CentralEntry,
} from './zip-records.js';

/** Bytes one member occupies: local header, name, extra, data and data descriptor. */
export interface Region {
  start: number;
  end: number;
  /** Built only when a problem is reported: a million healthy entries need no names. */
  label: () => string;
}

/** Inflation budget shared by all members of one archive (verification stops when spent). */
export interface VerifyBudget {
  maxMemberBytes: number;
  remaining: number;
}

export interface EntryOutcome {
  region?: Region;
  encrypted: boolean;
}

const READ_FLAGS = FLAG_ENCRYPTED | FLAG_DESCRIPTOR | FLAG_STRONG_ENCRYPTION;

export function checkEntry(buf: Buffer, e: CentralEntry, delta: number, budget: VerifyBudget, problems: Problems): EntryOutcome {
  const label = (): string => `member ${e.index + 1} (${displayName(e.name)})`;
  const encrypted = (e.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) !== 0;
  const out: EntryOutcome = { encrypted };
  if (e.disk !== 0) problems.add(`${label()} is on another disk`);
  const pos = e.localOffset + delta;
  const lh = readLocalHeader(buf, pos);
  if (!lh) {
    problems.add(`local header of ${label()} lies outside the file`);
    return out;
  }
  if (!lh.signatureOk) {
    problems.add(`local header of ${label()} has no local header signature`);
    return out;
  }
  if (!lh.name.equals(e.name)) problems.add(`local header of ${label()} names it "${displayName(lh.name)}"`);
  if (lh.method !== e.method || (lh.flags & READ_FLAGS) !== (e.flags & READ_FLAGS)) {
    problems.add(`local header of ${label()} does not match the central directory (method or flags)`);
  }
  // With a data descriptor (flag bit 3) the local CRC and sizes may be zero: the real values follow the data.
  const deferred = (e.flags & FLAG_DESCRIPTOR) !== 0;
  const differs = (local: number, central: number): boolean => (deferred ? local !== 0 && local !== central : local !== central);
  if (differs(lh.crc, e.crc) || differs(lh.compressedSize, e.compressedSize) || differs(lh.size, e.size)) {
    problems.add(`local header of ${label()} does not match the central directory (CRC or sizes)`);
  }
  const dataStart = lh.dataStart;
  const dataEnd = dataStart + e.compressedSize;
  if (dataEnd > buf.length) {
    problems.add(`data of ${label()} runs past the end of the file`);
    return out;
  }
  let end = dataEnd;
  if (deferred) {
    const d = readDescriptor(buf, dataEnd, e.zip64);
    if (!d) problems.add(`data descriptor of ${label()} is missing`);
    else {
      if (d.crc !== e.crc || d.compressedSize !== e.compressedSize || d.size !== e.size) {
        problems.add(`data descriptor of ${label()} does not match the central directory`);
      }
      end += d.length;
    }
  }
  out.region = { start: pos, end, label };

  if (encrypted) {
    if (!CLAMD_ZIP_METHODS.has(e.method) && e.method !== METHOD_AES) problems.add(`${label()} uses compression method ${e.method}, which clamd cannot unpack`);
    return out; // ciphertext: nothing more to verify
  }
  if (!CLAMD_ZIP_METHODS.has(e.method)) {
    problems.add(`${label()} uses compression method ${e.method}, which clamd cannot unpack`);
    return out;
  }
  verifyData(buf.subarray(dataStart, dataEnd), e, label, budget, problems);
  return out;
}

/** CRC and size of stored and deflated members, while the budget lasts (over budget is not corruption). */
function verifyData(data: Buffer, e: CentralEntry, label: () => string, budget: VerifyBudget, problems: Problems): void {
  if (e.method === METHOD_STORED && e.compressedSize !== e.size) {
    // clamd then tries to inflate it; other readers copy it: they disagree.
    problems.add(`stored ${label()} has different compressed and uncompressed sizes`);
    return;
  }
  if (e.method !== METHOD_STORED && e.method !== METHOD_DEFLATE) return; // no decoder here
  if (e.size > budget.maxMemberBytes || e.size > budget.remaining) return;
  budget.remaining -= e.size;
  let content = data;
  if (e.method === METHOD_DEFLATE) {
    // One byte over the declared size is enough to prove the size is a lie; never allocate more.
    const r = inflateBounded(data, e.size + 1, false);
    if (!r.ended) {
      problems.add(r.overLimit ? `${label()} inflates to more than its declared ${e.size} bytes` : `${label()}: ${r.error}`);
      return;
    }
    if (r.consumed !== data.length) {
      problems.add(`deflate stream of ${label()} ends ${data.length - r.consumed} bytes before its compressed size`);
    }
    content = r.output;
  }
  if (content.length !== e.size) problems.add(`${label()} holds ${content.length} bytes, not the declared ${e.size}`);
  else if (crc32(content) !== e.crc) problems.add(`CRC-32 of ${label()} does not match`);
}
