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
  for (const caseInsensitive of [false, true]) {
    for (const r of readings) {
      if (!r.multipart || chosen) continue;
      const split = await splitBody(ctx.source, header.bodyStart, end, r.boundary, false, caseInsensitive);
      if (split.parts.length) chosen = { boundary: r.boundary, type: r.type, split, caseInsensitive };
    }
  }
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
    if (split.epilogue) entity.alternates.push({ why: 'parts after the close delimiter', start: bodyStart, end, boundary, ignoreClose: true, defaultType: childType, caseInsensitive: chosen.caseInsensitive });
    if (!chosen.caseInsensitive) entity.alternates.push({ why: 'delimiters matched whatever their case', start: bodyStart, end, boundary, ignoreClose: false, defaultType: childType, caseInsensitive: true });
    // another Content-Type header reads the same body as a single part
    if (types.some((t) => !mediaType(t).startsWith('multipart/'))) entity.bodyAsText = true;
  }
  for (const r of readings) {
    if (seen.has(r.boundary)) continue;
    seen.add(r.boundary);
    entity.alternates.push({ why: `boundary read as "${printable(r.boundary)}"`, start: bodyStart, end, boundary: r.boundary, ignoreClose: false, defaultType: 'text/plain' });
    entity.alternates.push({ why: `boundary read as "${printable(r.boundary)}", any case`, start: bodyStart, end, boundary: r.boundary, ignoreClose: false, defaultType: 'text/plain', caseInsensitive: true });
  }
  if (entity.kind === 'leaf' && (contentType.startsWith('multipart/') || readings.length)) {
    // a multipart without a usable boundary: guess it from the body as lenient parsers do
    for (const guess of await guessBoundaries(ctx.source, bodyStart, end)) {
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
}

/**
 * Splits a multipart body at the delimiter lines of `boundary` (RFC 2046 §5.1.1: "--" boundary,
 * optional trailing blanks; the line break before a delimiter belongs to it). A missing close
 * delimiter ends the last part at the end of the body.
 */
export async function splitBody(source: ByteSource, start: number, end: number, boundary: string, ignoreClose: boolean, caseInsensitive = false): Promise<SplitResult> {
  const dash = Buffer.from(caseInsensitive ? `--${boundary}`.toLowerCase() : `--${boundary}`, 'latin1');
  const result: SplitResult = { preamble: { start, end: start }, parts: [] };
  let partStart: number | undefined;
  let prevBreak = 0;
  for await (const line of readLines(source, start, end)) {
    const kind = delimiterKind(caseInsensitive ? Buffer.from(line.text.toString('latin1').toLowerCase(), 'latin1') : line.text, line.end - line.start, dash);
    const breakLen = prevBreak;
    prevBreak = line.next - line.end;
    const lineNext = line.next;
    if (!kind) continue;
    // the delimiter owns the line break before it
    const before = line.start > start ? Math.max(start, line.start - breakLen) : line.start;
    if (partStart === undefined) result.preamble = { start, end: before };
    else result.parts.push({ start: partStart, end: Math.max(partStart, before) });
    partStart = lineNext;
    if (kind === 'close' && !ignoreClose) {
      result.epilogue = { start: lineNext, end };
      return result;
    }
  }
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

/** Boundaries a lenient parser could infer: a `--token` line that occurs at least twice, or once with its close form. */
async function guessBoundaries(source: ByteSource, start: number, end: number): Promise<string[]> {
  const counts = new Map<string, number>();
  for await (const line of readLines(source, start, end)) {
    const t = line.text.toString('latin1');
    if (!t.startsWith('--') || t.length < 3 || t.length > 200) continue;
    const token = t.slice(2).replace(/[ \t]+$/, '').replace(/--$/, '');
    if (!token) continue;
    counts.set(token, (counts.get(token) ?? 0) + 1);
    if (counts.size > 64) break;
  }
  return [...counts].filter(([, n]) => n >= 2).map(([t]) => t).slice(0, 4);
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 80);
}
