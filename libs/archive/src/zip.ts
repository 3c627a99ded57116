/**
 * Zip integrity: an archive is intact only if the central directory, every local header and
 * every member's data agree, and no byte outside them could be read as another member.
 * For a corrupt one, recoverZip hands back what lenient extractors would still find.
 */
import { MemberCollector } from './member-collector.js';
import { Problems } from './problems.js';
import type { ArchiveCheck, ArchiveLimits } from './types.js';
import { checkEntry, type Region, type VerifyBudget } from './zip-entry.js';
import { readZipLayout, type ZipLayout } from './zip-layout.js';
import { LOCAL_SIG_BYTES } from './zip-records.js';
import { recoverZip } from './zip-recover.js';

/** `nested`: for an intact zip, hand back the members that are archives themselves (to be checked in turn). */
export function checkZip(buf: Buffer, limits: ArchiveLimits, nested?: (member: Buffer) => boolean): ArchiveCheck {
  const problems = new Problems();
  let layout: ZipLayout | undefined;
  let encrypted = false;
  try {
    layout = readZipLayout(buf, problems);
    if (layout) encrypted = checkMembers(buf, layout, limits, problems);
  } catch (err) {
    problems.addError('unreadable zip structure', err);
  }
  if (!problems.any) return { format: 'zip', status: encrypted ? 'encrypted' : 'intact', members: nested && !encrypted ? nestedMembers(buf, layout, limits, nested) : [] };
  const collector = new MemberCollector(limits);
  try {
    recoverZip(buf, layout?.entries ?? [], layout?.delta ?? 0, collector);
  } catch {
    // Recovery is best effort: whatever was collected before the fault is still handed back.
  }
  return { format: 'zip', status: 'corrupt', detail: problems.detail, members: collector.members };
}

/** Checks every entry, then the byte map; returns whether any member is encrypted. */
function checkMembers(buf: Buffer, layout: ZipLayout, limits: ArchiveLimits, problems: Problems): boolean {
  const budget: VerifyBudget = { maxMemberBytes: limits.maxMemberBytes, remaining: limits.maxTotalBytes };
  const regions: Region[] = [];
  let encrypted = false;
  for (const entry of layout.entries) {
    const outcome = checkEntry(buf, entry, layout.delta, budget, problems);
    encrypted ||= outcome.encrypted;
    if (outcome.region) regions.push(outcome.region);
  }
  checkByteMap(buf, layout, regions, problems);
  return encrypted;
}

/**
 * Members must not overlap (overlap is how "zip bombs" reuse data and how two readers get two
 * different files) and nothing may sit between them. The only bytes outside every record are a
 * prefix (self-extractor stub) and the comment; a local header there is a member only carving
 * readers see.
 */
function checkByteMap(buf: Buffer, layout: ZipLayout, regions: Region[], problems: Problems): void {
  const { cdStart, eocd } = layout;
  regions.sort((a, b) => a.start - b.start);
  const first = regions[0];
  const prefixEnd = Math.min(first ? first.start : cdStart, cdStart);
  findHiddenHeader(buf, 0, prefixEnd, problems);
  let prev: Region | undefined;
  let cursor = prefixEnd;
  for (const r of regions) {
    if (prev && r.start < cursor) problems.add(`${r.label()} overlaps ${prev.label()}`);
    else if (r.start > cursor) {
      problems.add(`${r.start - cursor} unaccounted bytes before ${r.label()}`);
      findHiddenHeader(buf, cursor, r.start, problems);
    }
    if (r.end > cursor) {
      cursor = r.end;
      prev = r;
    }
  }
  if (cursor > cdStart) problems.add('member data runs into the central directory');
  else if (cursor < cdStart) {
    problems.add(`${cdStart - cursor} unaccounted bytes before the central directory`);
    findHiddenHeader(buf, cursor, cdStart, problems);
  }
  findHiddenHeader(buf, eocd.pos + 22, buf.length, problems);
}

function findHiddenHeader(buf: Buffer, from: number, to: number, problems: Problems): void {
  if (to - from < 4) return;
  const at = buf.subarray(from, to).indexOf(LOCAL_SIG_BYTES);
  if (at >= 0) problems.add(`local file header at offset ${from + at} is not in the central directory`);
}

/**
 * clamd unpacks an intact zip and scans its members, but a damaged archive inside it is its blind
 * spot again: the members that are archives go back to the caller to be checked in turn.
 */
function nestedMembers(buf: Buffer, layout: ZipLayout | undefined, limits: ArchiveLimits, isArchive: (member: Buffer) => boolean): ArchiveCheck['members'] {
  const collector = new MemberCollector(limits);
  try {
    recoverZip(buf, layout?.entries ?? [], layout?.delta ?? 0, collector);
  } catch {
    // best effort, as for a corrupt zip
  }
  return collector.members.filter((m) => isArchive(m.content));
}
