/**
 * tar integrity: every header's checksum is valid, every member's data (padded to 512 bytes) is
 * in the file, and after the end-of-archive zero blocks there is nothing but zeros or EOF. Data
 * after the end marker is read by `tar --ignore-zeros` and carving tools, so it is corrupt.
 * Recovery walks the headers that are valid, skipping damaged blocks like GNU tar does.
 */
import { MemberCollector } from './member-collector.js';
import { Problems } from './problems.js';
import { checksumOk, headerName, isZeroBlock, readNumber, readPax } from './tar-header.js';
import type { ArchiveCheck, ArchiveLimits } from './types.js';

const BLOCK = 512;
const REGULAR = new Set([0x30, 0x00, 0x37]); // '0', NUL (old tars), '7' (contiguous)

export function isTar(buf: Buffer): boolean {
  if (buf.length < BLOCK) return false;
  const first = buf.subarray(0, BLOCK);
  if (buf.toString('latin1', 257, 262) === 'ustar') return true;
  return !isZeroBlock(first) && checksumOk(first);
}

interface Span {
  name: string;
  start: number;
  end: number;
}

export function checkTar(buf: Buffer, limits: ArchiveLimits): ArchiveCheck {
  const problems = new Problems();
  const spans: Span[] = [];
  try {
    walk(buf, problems, spans, limits.maxMembers);
  } catch (err) {
    problems.addError('tar', err);
  }
  if (!problems.any) return { format: 'tar', status: 'intact', members: [] };
  const collector = new MemberCollector(limits);
  for (const s of spans) {
    if (collector.full) break;
    collector.add(s.name, buf.subarray(s.start, Math.min(s.end, buf.length)), s.end > buf.length ? 'tar header walk, cut short' : 'tar header walk');
  }
  return { format: 'tar', status: 'corrupt', detail: problems.detail, members: collector.members };
}

/** One pass over the blocks (at most length/512 steps), noting problems and regular members. */
function walk(buf: Buffer, problems: Problems, spans: Span[], maxSpans: number): void {
  let ended = false;
  let afterEnd = false;
  let pax: { path?: string; size?: number } = {};
  let longName: string | undefined;
  let pos = 0;
  for (; pos + BLOCK <= buf.length; ) {
    const block = buf.subarray(pos, pos + BLOCK);
    if (isZeroBlock(block)) {
      ended = true;
      pos += BLOCK;
      continue;
    }
    if (ended && !afterEnd) {
      afterEnd = true;
      problems.add(`data after the end-of-archive marker at offset ${pos}`);
    }
    const size = pax.size ?? readNumber(block.subarray(124, 136));
    if (!checksumOk(block) || size === undefined) {
      problems.add(`damaged tar header at offset ${pos}`);
      pos += BLOCK; // resynchronise on the next block, as GNU tar does
      continue;
    }
    const type = block[156] as number;
    const name = longName ?? pax.path ?? headerName(block);
    const start = pos + BLOCK;
    const end = start + size;
    const meta = type === 0x78 || type === 0x67 || type === 0x4c || type === 0x4b; // x g L K
    if (!meta && REGULAR.has(type) && size > 0 && spans.length < maxSpans) spans.push({ name, start, end });
    if (end > buf.length) {
      problems.add(`tar member "${name}" is cut off`);
      return;
    }
    const data = buf.subarray(start, end);
    if (type === 0x78) pax = readPax(data);
    else if (type === 0x4c) longName = data.toString('utf8').replace(/\0.*$/s, '');
    else if (type !== 0x67 && type !== 0x4b) {
      pax = {};
      longName = undefined;
    }
    pos = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (pos > buf.length) problems.add('tar archive ends inside the padding of its last member');
  else if (pos < buf.length && !isZeroBlock(buf.subarray(pos))) problems.add(`${buf.length - pos} trailing bytes after the last tar block`);
}
