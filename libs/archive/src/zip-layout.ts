/**
 * Finds the central directory the way readers do: the EOCD record in the file's tail, then the
 * directory just before it. `delta` is the prefix a self-extractor stub adds when the offsets
 * were written relative to the zip itself (Python's zipfile and unzip both apply it).
 */
import type { Problems } from './problems.js';
import { eocdCandidates, readCentralEntry, readEocd, type CentralEntry, type Eocd } from './zip-records.js';

export interface ZipLayout {
  eocd: Eocd;
  cdStart: number;
  delta: number;
  entries: CentralEntry[];
}

export function readZipLayout(buf: Buffer, problems: Problems): ZipLayout | undefined {
  const candidates = eocdCandidates(buf);
  if (candidates.length === 0) {
    problems.add('no end of central directory record (archive cut short?)');
    return undefined;
  }
  // Strict readers want the record whose comment ends exactly at EOF; lenient ones take the last
  // signature. When those differ, two readers can see two different archives.
  const strict = candidates.find((p) => p + 22 + buf.readUInt16LE(p + 20) === buf.length);
  if (strict === undefined) {
    const last = candidates[0] as number;
    problems.add(`${buf.length - last - 22 - buf.readUInt16LE(last + 20)} unaccounted bytes after the end of central directory record`);
  } else if (strict !== candidates[0]) {
    problems.add('the archive comment hides a second end of central directory record');
  }
  let eocd: Eocd;
  try {
    eocd = readEocd(buf, strict ?? (candidates[0] as number));
  } catch (err) {
    problems.addError('end of central directory', err);
    return undefined;
  }
  if (eocd.disk !== 0 || eocd.cdDisk !== 0 || eocd.entriesOnDisk !== eocd.entries) {
    problems.add('archive claims to span several disks');
  }
  const cdStart = eocd.cdEnd - eocd.cdSize;
  if (cdStart < 0) {
    problems.add('central directory is larger than the data before its end record');
    return undefined;
  }
  const delta = cdStart - eocd.cdOffset;
  if (delta < 0) problems.add(`central directory sits ${-delta} bytes before where its end record says`);

  const entries: CentralEntry[] = [];
  // Each entry takes at least 46 bytes, so this loop is bounded by the directory's size.
  for (let pos = cdStart; pos < eocd.cdEnd; ) {
    try {
      const { entry, next } = readCentralEntry(buf, pos, eocd.cdEnd, entries.length);
      entries.push(entry);
      pos = next;
    } catch (err) {
      problems.addError('central directory', err);
      break;
    }
  }
  if (entries.length !== eocd.entries) {
    problems.add(`end record counts ${eocd.entries} members but the central directory holds ${entries.length}`);
  }
  return { eocd, cdStart, delta, entries };
}
