import { createHash, type Hash } from 'node:crypto';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { Headers } from 'mailsplit';
import { encodeNoticeBody, rewriteHeadersAsNotice } from './notice-part.js';
import { encodeRegionNotice } from './region-notice.js';
import { normalizePlan, replacesRoot, SplicePlanError, type SplicePlan, type SpliceReplacement } from './splice-plan.js';
import { prefixSubject } from './subject-prefix.js';

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);

/**
 * A stretch [start, end) of the original that is not passed through: its bytes are either held
 * (a header block to rewrite, at most SPLICE_HEADER_LIMIT) or dropped as they go by; once they
 * have all gone by, `finish` says what takes their place.
 */
interface Segment {
  start: number;
  end: number;
  hold: boolean;
  /** `held`: the bytes if `hold`, else empty; `endedWithCrlf`: whether the segment's last two bytes were CRLF. */
  finish(held: Buffer, endedWithCrlf: boolean): Buffer;
  /** A line break must follow: the original's CRLF at `end` if there is one, else one is added. */
  lineBreakAfter: boolean;
}

/**
 * Streams `source` (the original raw message) out with the plan applied, in one pass:
 * - the root header block gets the Subject prefix (see prefixSubject; unchanged bytes if there
 *   was nothing to do);
 * - a leaf or container becomes a text/plain quoted-printable notice attachment in place: its
 *   non-Content-* headers stay, its body is dropped as it goes by; the notice's last line break is
 *   the one that precedes the next delimiter (or the end of the message);
 * - a region (body lines with no header) becomes the notice as escaped ASCII lines (see
 *   encodeRegionNotice);
 * - every other byte is passed through unchanged, so an empty plan gives back the input.
 * Memory: one header block (at most SPLICE_HEADER_LIMIT) plus a chunk; backpressure is honoured.
 *
 * A plan that is inconsistent in itself throws SplicePlanError here, synchronously, before
 * anything is read (`source` is left as it is, for the caller to destroy). A plan that does not
 * fit the bytes (size or sha256 differ; known only once they have gone by) errors the returned
 * stream with SplicePlanError, as does a source error: the consumer must treat the output as
 * lost on any error.
 */
export function spliceMessage(source: Readable, plan: SplicePlan): Readable {
  const splicer = new ByteSplicer(plan, segmentsOf(plan));
  return pipeline(source, splicer, () => undefined);
}

/** The plan as segments in stream order. */
function segmentsOf(plan: SplicePlan): Segment[] {
  const replace = normalizePlan(plan);
  const prefix = plan.subjectPrefix;
  const segments: Segment[] = [];
  const rootReplaced = replace.some((r) => replacesRoot(r, plan));
  if (prefix !== undefined && !rootReplaced) {
    segments.push({
      ...plan.rootHeader,
      hold: true,
      finish: (held) => {
        const headers = new Headers(held);
        return prefixSubject(headers, prefix) ? withLineEndOf(headers.build(), held) : held;
      },
      lineBreakAfter: false,
    });
  }
  for (const r of replace) {
    if (r.kind === 'region') segments.push(regionSegment(r));
    else segments.push(...nodeSegments(r, replacesRoot(r, plan) ? prefix : undefined, r.range.start === 0));
  }
  return segments;
}

/** A node: its header block held and rewritten, followed by the notice; its body dropped. */
function nodeSegments(r: SpliceReplacement, prefix: string | undefined, root: boolean): Segment[] {
  const header: Segment = {
    start: r.range.start,
    end: r.headerEnd,
    hold: true,
    finish: (held) => {
      const headers = new Headers(held);
      if (prefix !== undefined) prefixSubject(headers, prefix);
      rewriteHeadersAsNotice(headers, r.noticeFilename, root);
      const body = encodeNoticeBody(r.noticeText);
      // the notice's last CRLF is the one before the next delimiter (see lineBreakAfter below)
      return Buffer.concat([headers.build(), body.subarray(0, body.length - CRLF.length)]);
    },
    lineBreakAfter: false,
  };
  const body: Segment = { start: r.headerEnd, end: r.range.end, hold: false, finish: () => EMPTY, lineBreakAfter: true };
  return [header, body];
}

/** A region: dropped, the notice in its place; a line break at its end is kept. */
function regionSegment(r: SpliceReplacement): Segment {
  const empty = r.range.start === r.range.end;
  return {
    start: r.range.start,
    end: r.range.end,
    hold: false,
    finish: (_held, endedWithCrlf) => {
      const notice = encodeRegionNotice(r.noticeText);
      return endedWithCrlf || empty ? Buffer.concat([notice, CRLF]) : notice;
    },
    lineBreakAfter: false,
  };
}

/**
 * `built` (a rebuilt header block) ending with the same run of line breaks as `original` (which
 * may be a header-only message without the empty line, or without even a last line break). An
 * empty original (no header at all) keeps the built block whole, empty line included.
 */
function withLineEndOf(built: Buffer, original: Buffer): Buffer {
  if (!original.length) return built;
  const trailing = (data: Buffer): number => {
    let n = 0;
    while (n < data.length && (data[data.length - 1 - n] === CR || data[data.length - 1 - n] === LF)) n++;
    return n;
  };
  return Buffer.concat([built.subarray(0, built.length - trailing(built)), original.subarray(original.length - trailing(original))]);
}

/** Counts, hashes and passes bytes through, applying the segments as their offsets go by. */
class ByteSplicer extends Transform {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes of the source seen so far. */
  private pos = 0;
  /** Index of the current or next segment. */
  private next = 0;
  /** The current segment was entered (its held buffer allocated). */
  private entered = false;
  private held = EMPTY;
  private heldLength = 0;
  /** The last two bytes of the current segment (-1: none yet). */
  private tail: [number, number] = [-1, -1];
  /** A segment with lineBreakAfter just ended: check the bytes that follow. */
  private needLineBreak = false;

  private readonly size: number;
  private readonly sha256: string;

  constructor(
    plan: SplicePlan,
    private readonly segments: Segment[],
  ) {
    super();
    this.size = plan.size;
    this.sha256 = plan.sha256.toLowerCase();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.pos + chunk.length > this.size) throw new SplicePlanError(`the message is over the ${this.size} bytes of the plan`);
      this.hash.update(chunk);
      this.settle();
      let offset = 0;
      while (offset < chunk.length) {
        const segment = this.segments[this.next];
        if (!segment || this.pos < segment.start) {
          const n = Math.min(chunk.length - offset, segment ? segment.start - this.pos : Infinity);
          this.passThrough(chunk.subarray(offset, offset + n));
          offset += n;
          this.pos += n;
        } else {
          const n = Math.min(chunk.length - offset, segment.end - this.pos);
          this.consume(segment, chunk.subarray(offset, offset + n));
          offset += n;
          this.pos += n;
        }
        this.settle();
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.pos !== this.size) throw new SplicePlanError(`the message is ${this.pos} bytes, the plan is for ${this.size}`);
      const sha256 = this.hash.digest('hex');
      if (sha256 !== this.sha256) throw new SplicePlanError(`the message has sha256 ${sha256}, the plan is for ${this.sha256}`);
      this.settle();
      if (this.needLineBreak) this.push(CRLF);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** Bytes outside every segment: unchanged (after the line break a segment may owe). */
  private passThrough(data: Buffer): void {
    if (this.needLineBreak) {
      this.needLineBreak = false;
      // the message is canonical CRLF: a CR here is the start of the CRLF before a delimiter
      if (data[0] !== CR) this.push(CRLF);
    }
    this.push(data);
  }

  /** Bytes inside `segment`: held or dropped. */
  private consume(segment: Segment, data: Buffer): void {
    if (segment.hold) {
      data.copy(this.held, this.heldLength);
      this.heldLength += data.length;
    }
    this.tail = data.length >= 2 ? [data[data.length - 2] ?? -1, data[data.length - 1] ?? -1] : [this.tail[1], data[0] ?? -1];
  }

  /** Enters the segment that starts here and finishes those that end here (empty ones included). */
  private settle(): void {
    for (;;) {
      const segment = this.segments[this.next];
      if (!segment || this.pos < segment.start) return;
      if (!this.entered) {
        this.entered = true;
        if (this.needLineBreak) {
          // another segment starts right where a notice ends: nothing of the original in between
          this.needLineBreak = false;
          this.push(CRLF);
        }
        this.held = segment.hold ? Buffer.allocUnsafe(segment.end - segment.start) : EMPTY;
        this.heldLength = 0;
        this.tail = [-1, -1];
      }
      if (this.pos < segment.end) return;
      const out = segment.finish(this.held.subarray(0, this.heldLength), this.tail[0] === CR && this.tail[1] === LF);
      if (out.length) this.push(out);
      this.needLineBreak = segment.lineBreakAfter;
      this.held = EMPTY;
      this.entered = false;
      this.next++;
    }
  }
}
