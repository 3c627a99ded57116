import type { ByteSource } from './byte-source.js';
import { readLines, type Line } from './line-reader.js';

/** Encoded blocks a client may show as attachments even inside a text body. */
export interface EncodedBlock {
  kind: 'uu' | 'base64' | 'yenc';
  /** The whole block, `begin` line to `end` line included (not the line break after the last line). */
  start: number;
  end: number;
  /** The lines between the first and the last one. */
  dataStart: number;
  dataEnd: number;
}

export interface BodyScan {
  /** Non-blank bytes that are base64 alphabet, and those that are not ('=' counts as neither). */
  b64Bytes: number;
  otherBytes: number;
  /** Bytes of lines that are pure base64 (alphabet, padding at the end), and of other non-blank lines. */
  b64LineBytes: number;
  otherLineBytes: number;
  /** `=XX` escapes and soft line breaks: the body may be quoted-printable. */
  qpHints: number;
  /** base64 padding followed by more base64: decoders that stop at padding and those that go on differ. */
  midPadding: boolean;
  blocks: EncodedBlock[];
  /** Maximal runs of base64-looking lines (whole lines; the line break after the last one not included). */
  runs: { start: number; end: number }[];
}

const B64_LINE = /^[A-Za-z0-9+/]+={0,2}$/;
const UU_BEGIN = /^begin[ \t]+[0-7]{1,4}([ \t]+|$)/i;
const B64_BEGIN = /^begin-base64[ \t]+[0-7]{1,4}([ \t]+|$)/i;
const YENC_BEGIN = /^=ybegin[ \t]/;
/** A run must carry at least this many base64 characters to be worth decoding. */
const MIN_RUN_CHARS = 24;
const MAX_BLOCKS = 256;

/** One pass over body lines: what interpretations the bytes allow. */
export async function scanBody(source: ByteSource, start: number, end: number): Promise<BodyScan> {
  const scan: BodyScan = { b64Bytes: 0, otherBytes: 0, b64LineBytes: 0, otherLineBytes: 0, qpHints: 0, midPadding: false, blocks: [], runs: [] };
  let open: { kind: EncodedBlock['kind']; start: number; dataStart: number } | undefined;
  let run: { start: number; end: number; chars: number } | undefined;
  let padded = false;
  const closeRun = (): void => {
    if (run && run.chars >= MIN_RUN_CHARS) scan.runs.push({ start: run.start, end: run.end });
    run = undefined;
  };
  let last: Line | undefined;
  for await (const line of readLines(source, start, end)) {
    last = line;
    const text = line.text.toString('latin1').replace(/[ \t]+$/, '');
    countBytes(scan, line.text);
    if (open) {
      const done = open.kind === 'uu' ? /^end\s*$/i.test(text) : open.kind === 'base64' ? /^====/.test(text) : text.startsWith('=yend');
      if (done) {
        if (scan.blocks.length < MAX_BLOCKS) scan.blocks.push({ kind: open.kind, start: open.start, end: line.end, dataStart: open.dataStart, dataEnd: line.start });
        open = undefined;
      }
      continue;
    }
    const begin = B64_BEGIN.test(text) ? 'base64' : UU_BEGIN.test(text) ? 'uu' : YENC_BEGIN.test(text) ? 'yenc' : undefined;
    if (begin) {
      closeRun();
      open = { kind: begin, start: line.start, dataStart: line.next };
      continue;
    }
    if (text.length >= 4 && B64_LINE.test(text)) {
      scan.b64LineBytes += text.length;
      if (padded) scan.midPadding = true;
      padded = text.endsWith('=');
      run ??= { start: line.start, end: line.end, chars: 0 };
      run.end = line.end;
      run.chars += text.length;
    } else if (text.length) {
      scan.otherLineBytes += text.length;
      closeRun();
    }
  }
  closeRun();
  // a block without its end line still decodes in lenient clients: up to the end of the body
  if (open && scan.blocks.length < MAX_BLOCKS) scan.blocks.push({ kind: open.kind, start: open.start, end: last ? last.end : end, dataStart: open.dataStart, dataEnd: last ? last.next : end });
  return scan;
}

function countBytes(scan: BodyScan, text: Buffer): void {
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0d) continue;
    if (c === 0x3d) {
      const a = text[i + 1];
      if (a === undefined || isHex(a)) scan.qpHints++;
      continue;
    }
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f) scan.b64Bytes++;
    else scan.otherBytes++;
  }
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * Most of the body is lines of base64: a client that sniffs (or ignores a wrong CTE) decodes it.
 * By lines, not characters: ordinary prose is mostly base64 alphabet too.
 */
export function looksBase64(scan: BodyScan): boolean {
  return scan.b64LineBytes >= 16 && scan.b64LineBytes >= 3 * scan.otherLineBytes;
}
