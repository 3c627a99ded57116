/**
 * checkArchive: recognises the format by its magic bytes (or, for zips with something in front,
 * by the end-of-central-directory record) and runs that format's check. Never throws: any fault
 * inside a checker is reported as corruption.
 */
import { checkGzip, isGzip } from './gzip.js';
import { checkSevenZip, isSevenZip } from './seven-zip.js';
import { checkTar, isTar } from './tar.js';
import { resolveLimits, type ArchiveCheck, type ArchiveFormat, type ArchiveLimits } from './types.js';
import { checkZip } from './zip.js';
import { eocdCandidates, SIG_CENTRAL, SIG_EOCD, SIG_EOCD64_LOCATOR, SIG_LOCAL } from './zip-records.js';

export interface CheckOptions {
  /** Intact archives also hand back the members that are archives themselves (zip and gzip), so nested ones get checked too. */
  nested?: boolean;
}

/** undefined when `content` is not an archive this library knows (by magic bytes / structure). */
export function checkArchive(content: Buffer, limits?: Partial<ArchiveLimits>, options: CheckOptions = {}): ArchiveCheck | undefined {
  const format = detectFormat(content);
  if (!format) return undefined;
  const resolved = resolveLimits(limits);
  const nested = options.nested ? (member: Buffer) => detectFormat(member) !== undefined : undefined;
  try {
    switch (format) {
      case '7z':
        return checkSevenZip(content);
      case 'gzip':
        return checkGzip(content, resolved, nested);
      case 'tar':
        return checkTar(content, resolved);
      case 'zip':
        return checkZip(content, resolved, nested);
    }
  } catch (err) {
    return { format, status: 'corrupt', detail: `unreadable ${format}: ${err instanceof Error ? err.message : String(err)}`, members: [] };
  }
}

export function detectFormat(buf: Buffer): ArchiveFormat | undefined {
  if (isSevenZip(buf)) return '7z';
  if (isGzip(buf)) return 'gzip';
  if (buf.length >= 4 && (buf.readUInt32LE(0) === SIG_LOCAL || buf.readUInt32LE(0) === SIG_EOCD)) return 'zip';
  // Before the tail search: a tar whose last member is a zip has that zip's records in its tail.
  if (isTar(buf)) return 'tar';
  if (hasZipTail(buf)) return 'zip';
  return undefined;
}

/**
 * A zip with something in front (self-extractor stub, or a first local header wiped out) is
 * found from its end record. Four random bytes match now and then, so the record must also be
 * plausible: its comment ends at EOF, or it points back at a central directory.
 */
function hasZipTail(buf: Buffer): boolean {
  for (const p of eocdCandidates(buf)) {
    if (p + 22 + buf.readUInt16LE(p + 20) === buf.length) return true;
    const cdStart = p - buf.readUInt32LE(p + 12);
    if (cdStart >= 0 && cdStart + 4 <= buf.length && buf.readUInt32LE(cdStart) === SIG_CENTRAL) return true;
    if (p >= 20 && buf.readUInt32LE(p - 20) === SIG_EOCD64_LOCATOR) return true;
  }
  return false;
}
