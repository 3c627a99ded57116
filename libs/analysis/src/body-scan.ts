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
  /** Some line holds more than blanks. */
  nonBlank: boolean;
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

/** 1 for each base64 alphabet byte. */
const B64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') B64[c.charCodeAt(0)] = 1;

/**
 * Whether t[0, n) is a line of base64: at least 4 alphabet bytes, then at most two '='.
 * 0: no; 1: yes; 2: yes, with padding. A loop over bytes: no string per line.
 */
function base64Line(t: Buffer, n: number): 0 | 1 | 2 {
  if (n < 4) return 0;
  let i = 0;
  while (i < n && B64[t[i]!]) i++;
  if (i === 0) return 0;
  let pads = 0;
  while (i < n && t[i] === 0x3d && pads < 2) {
    i++;
    pads++;
  }
  return i === n ? (pads ? 2 : 1) : 0;
}
const UU_BEGIN = /^begin[ \t]+[0-7]{1,4}([ \t]+|$)/i;
const B64_BEGIN = /^begin-base64[ \t]+[0-7]{1,4}([ \t]+|$)/i;
const YENC_BEGIN = /^=ybegin[ \t]/;
/** A run must carry at least this many base64 characters to be worth decoding. */
const MIN_RUN_CHARS = 24;
const MAX_BLOCKS = 256;

/** One pass over body lines: what interpretations the bytes allow. */
export async function scanBody(source: ByteSource, start: number, end: number): Promise<BodyScan> {
  const scan: BodyScan = { nonBlank: false, b64LineBytes: 0, otherLineBytes: 0, qpHints: 0, midPadding: false, blocks: [], runs: [] };
  let open: { kind: EncodedBlock['kind']; start: number; dataStart: number } | undefined;
  let run: { start: number; end: number; chars: number } | undefined;
  let padded = false;
  const closeRun = (): void => {
    if (run && run.chars >= MIN_RUN_CHARS) scan.runs.push({ start: run.start, end: run.end });
    run = undefined;
  };
  let last: Line | undefined;
  for await (const lines of readLines(source, start, end)) for (const line of lines) {
    last = line;
    const t = line.text;
    let n = t.length;
    while (n > 0 && (t[n - 1] === 0x20 || t[n - 1] === 0x09)) n--;
    if (!n) continue;
    const b64 = base64Line(t, n);
    // strings only for the few lines that may open or close a block, or carry an `=`
    const first = t[0]!;
    const text = b64 === 0 || first === 0x62 || first === 0x42 || first === 0x65 || first === 0x45 || first === 0x3d || b64 === 2 ? t.toString('latin1', 0, n) : '';
    scan.nonBlank ||= b64 !== 0 || /\S/.test(text);
    // `=XX` escapes and soft breaks (a trailing `=`)
    if (text.includes('=')) scan.qpHints += (text.match(/=[0-9A-Fa-f]{2}|=$/g) ?? []).length;
    if (open) {
      const done = open.kind === 'uu' ? /^end\s*$/i.test(text) : open.kind === 'base64' ? /^====/.test(text) : text.startsWith('=yend');
      if (done) {
        if (scan.blocks.length < MAX_BLOCKS) scan.blocks.push({ kind: open.kind, start: open.start, end: line.end, dataStart: open.dataStart, dataEnd: line.start });
        open = undefined;
      }
      continue;
    }
    const begin = !text ? undefined : B64_BEGIN.test(text) ? 'base64' : UU_BEGIN.test(text) ? 'uu' : YENC_BEGIN.test(text) ? 'yenc' : undefined;
    if (begin) {
      closeRun();
      open = { kind: begin, start: line.start, dataStart: line.next };
      continue;
    }
    if (b64 !== 0) {
      scan.b64LineBytes += n;
      if (padded) scan.midPadding = true;
      padded = b64 === 2;
      run ??= { start: line.start, end: line.end, chars: 0 };
      run.end = line.end;
      run.chars += n;
    } else {
      scan.otherLineBytes += n;
      closeRun();
    }
  }
  closeRun();
  // a block without its end line still decodes in lenient clients: up to the end of the body
  if (open && scan.blocks.length < MAX_BLOCKS) scan.blocks.push({ kind: open.kind, start: open.start, end: last ? last.end : end, dataStart: open.dataStart, dataEnd: last ? last.next : end });
  return scan;
}

/**
 * Most of the body is lines of base64: a client that sniffs (or ignores a wrong CTE) decodes it.
 * By lines, not characters: ordinary prose is mostly base64 alphabet too.
 */
export function looksBase64(scan: BodyScan): boolean {
  return scan.b64LineBytes >= 16 && scan.b64LineBytes >= 3 * scan.otherLineBytes;
}
