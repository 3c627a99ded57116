import type { ByteSource } from './byte-source.js';
import { readHeaderBlock, values, type HeaderBlock } from './header-block.js';
import { boundaryReadings, decodingsOf, fileName, mediaType, type Decoding } from './header-params.js';
import { readLines } from './line-reader.js';
import { AnalysisLimitError, type AnalysisLimits } from './limits.js';

/** A MIME entity as one reading of the bytes sees it; offsets are in its source. */
export interface MimeEntity {
  path: string;
  kind: 'leaf' | 'container';
  start: number;
  /** Where the body starts. */
  headerEnd: number;
  end: number;
  header: HeaderBlock;
  /** The media type this reading went by (lower case). */
  contentType: string;
  /** Every transfer-encoding reading of every CTE header; the first is the one this reading went by. */
  decodings: Decoding[];
  filename?: string;
  children: MimeEntity[];
  /** Preamble and epilogue of a multipart, when they hold anything but blanks. */
  regions: { path: string; start: number; end: number }[];
  /** Other readings of this entity's structure, to be parsed as alternative trees. */
  alternates: AlternateSplit[];
  /** A container that another header reads as one single part: its body is also derived as text. */
  bodyAsText?: boolean;
}

/** Split the body [start, end) by `boundary` (another boundary reading, or a guessed one). */
export interface AlternateSplit {
  why: string;
  start: number;
  end: number;
  boundary: string;
  /** Go on splitting after a close delimiter (parsers that ignore it). */
  ignoreClose: boolean;
  /** Match delimiter lines whatever their case (ClamAV does). */
  caseInsensitive?: boolean;
  defaultType: string;
}

export interface ParseContext {
  source: ByteSource;
  limits: AnalysisLimits;
  /** Entities parsed so far in this reading (for maxParts). */
  count: number;
}

const MESSAGE_TYPES = new Set(['message/rfc822', 'message/global', 'message/news']);

/**
 * Parses source[start, end) as one entity (a message or a body part), the way a careful client
 * does (first Content-Type and CTE header, RFC boundary reading, no close delimiter needed), and
 * notes the other readings a lenient client could make (alternates).
 */
export async function parseEntity(ctx: ParseContext, start: number, end: number, path: string, depth: number, defaultType = 'text/plain'): Promise<MimeEntity> {
  if (++ctx.count > ctx.limits.maxParts) throw new AnalysisLimitError(`more than ${ctx.limits.maxParts} MIME parts`);
  if (depth > ctx.limits.maxDepth) throw new AnalysisLimitError(`MIME nesting deeper than ${ctx.limits.maxDepth}`);
  const header = await readHeaderBlock(ctx.source, start, end, ctx.limits.maxHeaderBytes);
  const types = values(header, 'content-type');
  const ctes = values(header, 'content-transfer-encoding');
  const decodings = [...new Set(ctes.length ? ctes.flatMap(decodingsOf) : ['identity' as const])];
  // every boundary any Content-Type header offers, whatever its type says
  const readings = types.flatMap((t) => boundaryReadings(t).map((boundary) => ({ boundary, multipart: mediaType(t).startsWith('multipart/'), type: mediaType(t) })));
  // The main reading is the most granular one a client could make: the first multipart reading
  // whose boundary really splits the body (so a finding removes one part, not the whole message).
  let chosen: { boundary: string; type: string; split: SplitResult; caseInsensitive: boolean } | undefined;
  // the "--" lines of the body, learned on the first pass: a boundary no such line carries cannot split it
  let dashes: DashLines | undefined;
  for (const caseInsensitive of [false, true]) {
    for (const r of readings) {
      if (!r.multipart || chosen || (dashes && !dashes.mayDelimit(r.boundary, caseInsensitive))) continue;
      const split = await splitBody(ctx.source, header.bodyStart, end, r.boundary, false, caseInsensitive);
      dashes ??= split.dashes;
      if (split.parts.length) chosen = { boundary: r.boundary, type: r.type, split, caseInsensitive };
    }
  }
  if (!dashes && readings.length) dashes = await dashLinesOf(ctx.source, header.bodyStart, end);
  const contentType = chosen?.type ?? ((types.length ? mediaType(types[0]!) : '') || defaultType);
  const filename = fileName(values(header, 'content-disposition')[0], types[0]);
  const entity: MimeEntity = {
    path,
    kind: 'leaf',
    start,
    headerEnd: header.bodyStart,
    end,
    header,
    contentType,
    decodings,
    ...(filename ? { filename } : {}),
    children: [],
    regions: [],
    alternates: [],
  };
  const bodyStart = header.bodyStart;
  const seen = new Set<string>();
  if (chosen) {
    const { boundary, split } = chosen;
    const childType = contentType === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    seen.add(boundary);
    entity.kind = 'container';
    let n = 0;
    for (const part of split.parts) entity.children.push(await parseEntity(ctx, part.start, part.end, `${path}.${++n}`, depth + 1, childType));
    if (split.preamble.end > split.preamble.start) entity.regions.push({ path: `${path}.preamble`, ...split.preamble });
    if (split.epilogue && split.epilogue.end > split.epilogue.start) entity.regions.push({ path: `${path}.epilogue`, ...split.epilogue });
    if (split.delimitersAfterClose) entity.alternates.push({ why: 'parts after the close delimiter', start: bodyStart, end, boundary, ignoreClose: true, defaultType: childType, caseInsensitive: chosen.caseInsensitive });
    if (!chosen.caseInsensitive && split.dashes.hasCaseVariant(boundary)) entity.alternates.push({ why: 'delimiters matched whatever their case', start: bodyStart, end, boundary, ignoreClose: false, defaultType: childType, caseInsensitive: true });
    // another Content-Type header reads the same body as a single part
    if (types.some((t) => !mediaType(t).startsWith('multipart/'))) entity.bodyAsText = true;
  }
  for (const r of readings) {
    if (seen.has(r.boundary)) continue;
    seen.add(r.boundary);
    if (dashes?.mayDelimit(r.boundary, false) !== false) entity.alternates.push({ why: `boundary read as "${printable(r.boundary)}"`, start: bodyStart, end, boundary: r.boundary, ignoreClose: false, defaultType: 'text/plain' });
    if (dashes?.hasCaseVariant(r.boundary) !== false) entity.alternates.push({ why: `boundary read as "${printable(r.boundary)}", any case`, start: bodyStart, end, boundary: r.boundary, ignoreClose: false, defaultType: 'text/plain', caseInsensitive: true });
  }
  if (entity.kind === 'leaf' && (contentType.startsWith('multipart/') || readings.length)) {
    // a multipart without a usable boundary: guess it from the body as lenient parsers do
    dashes ??= await dashLinesOf(ctx.source, bodyStart, end);
    for (const guess of dashes.guesses()) {
      if (seen.has(guess)) continue;
      seen.add(guess);
      entity.alternates.push({ why: `boundary guessed from the body ("${printable(guess)}")`, start: bodyStart, end, boundary: guess, ignoreClose: false, defaultType: 'text/plain' });
    }
  }
  // an embedded message needs a body: a header block cut short (no empty line) stays one leaf,
  // or a notice for the empty embedded root would land inside this node's header
  if (entity.kind === 'leaf' && MESSAGE_TYPES.has(contentType) && decodings[0] === 'identity' && bodyStart < end) {
    entity.kind = 'container';
    entity.children.push(await parseEntity(ctx, bodyStart, end, `${path}.1`, depth + 1));
  }
  return entity;
}

interface SplitResult {
  preamble: { start: number; end: number };
  parts: { start: number; end: number }[];
  epilogue?: { start: number; end: number };
  /** Delimiter lines after the close delimiter (a lenient parser would read more parts there). */
  delimitersAfterClose: number;
  dashes: DashLines;
}

/**
 * The tokens of a body's lines that start with "--" (counted; at most 64 distinct, past which
 * any boundary is taken as possible): what boundaries could split it.
 */
export class DashLines {
  private readonly counts = new Map<string, number>();
  private readonly lower = new Map<string, Set<string>>();
  private full = false;

  add(text: Buffer): void {
    if (text[0] !== 0x2d || text[1] !== 0x2d || text.length > 202) return;
    const line = text.toString('latin1', 2).replace(/[ \t]+$/, '');
    for (const token of line.endsWith('--') ? [line, line.slice(0, -2)] : [line]) {
      if (!token) continue;
      if (!this.counts.has(token) && this.counts.size >= 64) {
        this.full = true;
        continue;
      }
      this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
      const key = token.toLowerCase();
      if (!this.lower.has(key)) this.lower.set(key, new Set());
      this.lower.get(key)!.add(token);
    }
  }

  /** Some line could be a delimiter of `boundary` (exactly, or whatever its case). */
  mayDelimit(boundary: string, anyCase: boolean): boolean {
    return this.full || this.counts.has(boundary) || (anyCase && this.lower.has(boundary.toLowerCase()));
  }

  /** Some line is a delimiter of `boundary` only when case is ignored. */
  hasCaseVariant(boundary: string): boolean {
    return this.full || [...(this.lower.get(boundary.toLowerCase()) ?? [])].some((t) => t !== boundary);
  }

  /** Boundaries a lenient parser could infer: tokens seen at least twice, most frequent first. */
  guesses(): string[] {
    return [...this.counts]
      .filter(([, n]) => n >= 2)
      .sort((a, b) => b[1] - a[1])
      .map(([t]) => t)
      .slice(0, 4);
  }
}

async function dashLinesOf(source: ByteSource, start: number, end: number): Promise<DashLines> {
  const dashes = new DashLines();
  for await (const lines of readLines(source, start, end)) for (const line of lines) dashes.add(line.text);
  return dashes;
}

/**
 * Splits a multipart body at the delimiter lines of `boundary` (RFC 2046 §5.1.1: "--" boundary,
 * optional trailing blanks; the line break before a delimiter belongs to it). A missing close
 * delimiter ends the last part at the end of the body.
 */
export async function splitBody(source: ByteSource, start: number, end: number, boundary: string, ignoreClose: boolean, caseInsensitive = false): Promise<SplitResult> {
  const dash = Buffer.from(caseInsensitive ? `--${boundary}`.toLowerCase() : `--${boundary}`, 'latin1');
  const result: SplitResult = { preamble: { start, end: start }, parts: [], delimitersAfterClose: 0, dashes: new DashLines() };
  let partStart: number | undefined;
  let prevBreak = 0;
  let closed = false;
  for await (const lines of readLines(source, start, end)) for (const line of lines) {
    const breakLen = prevBreak;
    prevBreak = line.next - line.end;
    // most lines do not start with "--": nothing to do for them
    if (line.text[0] !== 0x2d || line.text[1] !== 0x2d) continue;
    result.dashes.add(line.text);
    const kind = delimiterKind(caseInsensitive ? Buffer.from(line.text.toString('latin1').toLowerCase(), 'latin1') : line.text, line.end - line.start, dash);
    if (!kind) continue;
    if (closed) {
      // the epilogue is read on only to know whether it holds more delimiters
      result.delimitersAfterClose++;
      continue;
    }
    // the delimiter owns the line break before it
    const before = line.start > start ? Math.max(start, line.start - breakLen) : line.start;
    if (partStart === undefined) result.preamble = { start, end: before };
    else result.parts.push({ start: partStart, end: Math.max(partStart, before) });
    partStart = line.next;
    if (kind === 'close' && !ignoreClose) {
      result.epilogue = { start: line.next, end };
      closed = true;
    }
  }
  if (closed) return result;
  if (partStart !== undefined && partStart < end) result.parts.push({ start: partStart, end });
  else if (partStart !== undefined && !result.parts.length) result.parts.push({ start: partStart, end: partStart });
  return result;
}

function delimiterKind(text: Buffer, length: number, dash: Buffer): 'open' | 'close' | undefined {
  if (length < dash.length || text.length < dash.length || text.compare(dash, 0, dash.length, 0, dash.length) !== 0) return undefined;
  const rest = text.subarray(dash.length).toString('latin1');
  if (/^[ \t]*$/.test(rest)) return 'open';
  if (/^--[ \t]*$/.test(rest)) return 'close';
  return undefined;
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 80);
}
