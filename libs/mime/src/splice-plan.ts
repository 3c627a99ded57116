/** [start, end) in bytes of the original message, end exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface SpliceReplacement {
  /** What the range is: a MIME node with its own header block (leaf or container), or a region of body bytes with no header. */
  kind: 'leaf' | 'container' | 'region';
  /**
   * [start, end) in the original: for leaf/container the node's header block start up to the end
   * of its body (the end is where the CRLF that precedes the next boundary delimiter line begins,
   * or EOF); for region whole lines.
   */
  range: ByteRange;
  /** Where the body starts (just after the empty line ending the header block); == range.start for a region. */
  headerEnd: number;
  noticeText: string;
  noticeFilename: string;
}

export interface SplicePlan {
  /** Size and sha256 (hex) the original must have; a mismatch fails the splice (the part map does not belong to these bytes). */
  size: number;
  sha256: string;
  /** The root header block [0, end), the empty line that ends it included: Subject prefix is applied here. */
  rootHeader: ByteRange;
  subjectPrefix?: string;
  replace: SpliceReplacement[];
}

/** The plan does not fit the message: inconsistent ranges, or size/sha256 of another message. */
export class SplicePlanError extends Error {
  override name = 'SplicePlanError';
}

/** The most a header block to rewrite may weigh: it is the one thing held in memory. */
export const SPLICE_HEADER_LIMIT = 1024 * 1024;

/**
 * Checks a plan and puts it in stream order: replacements sorted by start, those nested inside
 * another dropped (the outer one wins). Throws SplicePlanError if a number is not an offset, a
 * range is out of [0, size] or inverted, two ranges partially overlap, a replacement starts
 * before the end of the root header without being the root node itself (a leaf or container
 * from 0 that covers the root header), or a header block to rewrite is over SPLICE_HEADER_LIMIT.
 */
export function normalizePlan(plan: SplicePlan): SpliceReplacement[] {
  if (!isOffset(plan.size)) throw new SplicePlanError(`bad size ${String(plan.size)}`);
  if (typeof plan.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(plan.sha256)) throw new SplicePlanError('sha256 is not 64 hex digits');
  const root = plan.rootHeader;
  if (!inBounds(root, plan.size)) throw new SplicePlanError(`root header [${root.start}, ${root.end}) is not within [0, ${plan.size}]`);

  for (const [index, r] of plan.replace.entries()) {
    const where = `replacement ${index} [${r.range.start}, ${r.range.end})`;
    if (!inBounds(r.range, plan.size)) throw new SplicePlanError(`${where} is not within [0, ${plan.size}]`);
    if (!isOffset(r.headerEnd) || r.headerEnd < r.range.start || r.headerEnd > r.range.end) throw new SplicePlanError(`${where}: header end ${r.headerEnd} is outside the range`);
    if (r.kind === 'region' && r.headerEnd !== r.range.start) throw new SplicePlanError(`${where}: a region has no header`);
    if (r.kind !== 'region' && r.kind !== 'leaf' && r.kind !== 'container') throw new SplicePlanError(`${where}: unknown kind ${String(r.kind)}`);
  }

  const sorted = [...plan.replace].sort((a, b) => a.range.start - b.range.start || b.range.end - a.range.end);
  const kept: SpliceReplacement[] = [];
  for (const r of sorted) {
    const outer = kept.at(-1);
    if (outer && r.range.start < outer.range.end) {
      if (r.range.end <= outer.range.end) continue; // nested: the outer one wins
      throw new SplicePlanError(`[${r.range.start}, ${r.range.end}) partially overlaps [${outer.range.start}, ${outer.range.end})`);
    }
    if (outer && r.range.start === r.range.end && r.range.start === outer.range.start) continue; // a duplicate empty range
    kept.push(r);
  }

  for (const r of kept) {
    // everything but the root node itself comes after the root header
    if (r.range.start < root.end && !replacesRoot(r, plan)) {
      throw new SplicePlanError(`[${r.range.start}, ${r.range.end}) overlaps the root header without replacing the root node`);
    }
    if (r.kind !== 'region' && r.headerEnd - r.range.start > SPLICE_HEADER_LIMIT) {
      throw new SplicePlanError(`header block at ${r.range.start} is over ${SPLICE_HEADER_LIMIT} bytes`);
    }
  }
  if (plan.subjectPrefix !== undefined && root.end - root.start > SPLICE_HEADER_LIMIT) throw new SplicePlanError(`root header is over ${SPLICE_HEADER_LIMIT} bytes`);
  return kept;
}

/** A leaf or container from offset 0 that covers the root header: the root node itself. */
export function replacesRoot(r: SpliceReplacement, plan: SplicePlan): boolean {
  return r.range.start === 0 && r.kind !== 'region' && plan.rootHeader.end <= r.range.end;
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function inBounds(range: ByteRange, size: number): boolean {
  return isOffset(range.start) && isOffset(range.end) && range.start <= range.end && range.end <= size;
}

