import type { ByteSource } from './byte-source.js';
import { readLines, type Line } from './line-reader.js';
import { continuationEnd, findInlineEncodings, type InlineEncoding } from './inline-encodings.js';

/** Encoded blocks a client may show as attachments even inside a text body. */
export interface EncodedBlock {
  kind: 'uu' | 'base64' | 'yenc' | 'percent';
  /** Inside a line of text (a `data:` URI, a string literal) rather than a block of lines of its own. */
  via?: InlineEncoding['via'];
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
  /**
   * Maximal runs of base64-looking lines (whole lines; the line break after the last one not
   * included). `lenient`: some line has junk or blanks in it, so a line of something else may have
   * joined the run and shifted its alignment.
   */
  runs: { start: number; end: number; lenient?: boolean }[];
}

/** 1 for each base64 alphabet byte. */
const B64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') B64[c.charCodeAt(0)] = 1;

/**
 * Whether t[0, n) is a line of base64: 1, alphabet bytes then at most two '='; 2, the same with
 * padding; 3, base64 with junk bytes in it (RFC 2045 §6.8: decoders skip what is not in the
 * alphabet, so a NUL or an 8-bit byte does not stop a lenient client): at least 16 bytes, no
 * blank inside (prose has blanks), three quarters alphabet. 0: no. A loop over bytes: no string per line.
 */
function base64Line(t: Buffer, n: number): 0 | 1 | 2 | 3 {
  if (n < 4) return 0;
  let alphabet = 0;
  let pads = 0;
  let junk = 0;
  let padInside = false;
  for (let i = 0; i < n; i++) {
    const c = t[i]!;
    if (B64[c]) {
      alphabet++;
      if (pads) padInside = true;
    } else if (c === 0x3d) pads++;
    else if (c === 0x20 || c === 0x09) return spacedBase64(t, n) ? 3 : 0;
    else junk++;
  }
  if (!alphabet) return 0;
  if (!junk && !padInside && pads <= 2) return pads ? 2 : 1;
  return n >= 16 && alphabet * 4 >= n * 3 ? 3 : 0;
}

/**
 * A line of base64 broken up by blanks ("WDVPI VAlQ EFQWzRc"), which lenient decoders read as
 * base64 all the same, told from prose by its letters: base64 is about half capitals, prose a few
 * percent. Junk bytes (control, 8-bit) are left out first, as a lenient decoder skips them.
 */
function spacedBase64(t: Buffer, n: number): boolean {
  const visible = t.toString('latin1', 0, n).replace(/[^\x21-\x7e]/g, '');
  if (visible.length < 12) return false;
  const alphabet = visible.replace(/[^A-Za-z0-9+/=]/g, '').length;
  const letters = visible.replace(/[^A-Za-z]/g, '').length;
  const capitals = visible.replace(/[^A-Z]/g, '').length;
  return alphabet * 10 >= visible.length * 9 && capitals * 4 >= letters;
}

const UU_BEGIN = /^begin[ \t]+[0-7]{1,4}([ \t]+|$)/i;
const B64_BEGIN = /^begin-base64[ \t]+[0-7]{1,4}([ \t]+|$)/i;
const YENC_BEGIN = /^=ybegin[ \t]/;
/** A run must carry at least this many base64 characters to be worth decoding. */
const MIN_RUN_CHARS = 24;

/** One pass over body lines: what interpretations the bytes allow. */
export async function scanBody(source: ByteSource, start: number, end: number): Promise<BodyScan> {
  const scan: BodyScan = { nonBlank: false, b64LineBytes: 0, otherLineBytes: 0, qpHints: 0, midPadding: false, blocks: [], runs: [] };
  let open: { kind: EncodedBlock['kind']; start: number; dataStart: number } | undefined;
  let run: { start: number; end: number; chars: number; lenient: boolean } | undefined;
  let padded = false;
  /** An inline base64 data URI that reached the end of its line: markup may wrap it over the next lines. */
  let inline: EncodedBlock | undefined;
  const closeRun = (): void => {
    if (run && run.chars >= MIN_RUN_CHARS) scan.runs.push({ start: run.start, end: run.end, ...(run.lenient ? { lenient: true } : {}) });
    run = undefined;
  };
  let last: Line | undefined;
  for await (const lines of readLines(source, start, end)) for (const line of lines) {
    last = line;
    const t = line.text;
    let n = t.length;
    while (n > 0 && (t[n - 1] === 0x20 || t[n - 1] === 0x09)) n--;
    if (inline) {
      const to = n ? continuationEnd(t, n) : 0;
      if (to) {
        inline.end = line.end;
        inline.dataEnd = cut(line, t, to, n);
      }
      if (to !== n || !n) inline = undefined;
    }
    if (!n) continue;
    const b64 = base64Line(t, n);
    // strings only for the few lines that may open or close a block, or carry an `=`
    const first = t[0]!;
    const text = b64 === 0 || b64 >= 2 || first === 0x62 || first === 0x42 || first === 0x65 || first === 0x45 || first === 0x3d ? t.toString('latin1', 0, n) : '';
    scan.nonBlank ||= b64 !== 0 || /\S/.test(text);
    // `=XX` escapes and soft breaks (a trailing `=`)
    if (text.includes('=')) scan.qpHints += (text.match(/=[0-9A-Fa-f]{2}|=$/g) ?? []).length;
    if (open) {
      const done = open.kind === 'uu' ? /^end\s*$/i.test(text) : open.kind === 'base64' ? /^====/.test(text) : text.startsWith('=yend');
      if (done) {
        scan.blocks.push({ kind: open.kind, start: open.start, end: line.end, dataStart: open.dataStart, dataEnd: line.start });
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
      if (padded || (b64 === 3 && text.replace(/=+$/, '').includes('='))) scan.midPadding = true;
      padded = b64 === 2 || (b64 === 3 && text.endsWith('='));
      run ??= { start: line.start, end: line.end, chars: 0, lenient: false };
      run.end = line.end;
      if (b64 === 3) run.lenient = true;
      run.chars += n;
    } else {
      scan.otherLineBytes += n;
      closeRun();
    }
    // a line of base64 with junk may be markup around a data: URI, so not only the other lines
    if (b64 === 0 || b64 === 3) {
      for (const found of findInlineEncodings(t, n)) {
        const block: EncodedBlock = { kind: found.kind, via: found.via, start: line.start, end: line.end, dataStart: line.start + found.from, dataEnd: cut(line, t, found.to, n) };
        scan.blocks.push(block);
        if (found.open) inline = block;
      }
    }
  }
  closeRun();
  // a block without its end line still decodes in lenient clients: up to the end of the body
  if (open) scan.blocks.push({ kind: open.kind, start: open.start, end: last ? last.end : end, dataStart: open.dataStart, dataEnd: last ? last.next : end });
  return scan;
}

/** The end of data that reaches `to` in a line's text: past the peeked text, the line's own end. */
function cut(line: Line, t: Buffer, to: number, n: number): number {
  return to === n && t.length < line.end - line.start ? line.end : line.start + to;
}

/**
 * Most of the body is lines of base64: a client that sniffs (or ignores a wrong CTE) decodes it.
 * By lines, not characters: ordinary prose is mostly base64 alphabet too.
 */
export function looksBase64(scan: BodyScan): boolean {
  return scan.b64LineBytes >= 16 && scan.b64LineBytes >= 3 * scan.otherLineBytes;
}
