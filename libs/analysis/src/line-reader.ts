import type { ByteSource } from './byte-source.js';

/** Bytes read from the source at once. */
const BLOCK = 256 * 1024;
/** Content of a line kept for inspection; offsets stay exact whatever the length. */
export const LINE_PEEK = 4096;

/** One line of a range: `text` is its content without the line break (cut at LINE_PEEK bytes). */
export interface Line {
  start: number;
  /** End of the content (before CR LF / LF). */
  end: number;
  /** Start of the next line (after the line break), or the end of the range. */
  next: number;
  text: Buffer;
}

/**
 * Lines of source[start, end), with exact offsets; LF ends a line, a CR before it is part of the
 * break (the gateway canonicalised to CRLF, decoded contents may use bare LF). Reads in blocks.
 */
export async function* readLines(source: ByteSource, start: number, end: number): AsyncGenerator<Line> {
  let block: Buffer = Buffer.alloc(0);
  let blockStart = start;
  let pos = start;
  let peek: Buffer[] = [];
  let peekLen = 0;
  let lineStart = start;
  while (pos < end) {
    if (pos >= blockStart + block.length) {
      blockStart = pos;
      block = await source.read(pos, Math.min(end, pos + BLOCK));
      if (!block.length) break;
    }
    const at = pos - blockStart;
    const lf = block.indexOf(0x0a, at);
    const stop = lf < 0 ? block.length : lf;
    if (peekLen < LINE_PEEK) {
      const piece = block.subarray(at, Math.min(stop, at + LINE_PEEK - peekLen));
      peek.push(piece);
      peekLen += piece.length;
    }
    if (lf < 0) {
      pos = blockStart + block.length;
      continue;
    }
    const next = blockStart + lf + 1;
    let text = peek.length === 1 ? peek[0]! : Buffer.concat(peek);
    let contentEnd = blockStart + lf;
    // the CR of CRLF (it may sit at the end of the previous block)
    if (contentEnd > lineStart && (lf > 0 ? block[lf - 1] === 0x0d : text[text.length - 1] === 0x0d)) {
      contentEnd--;
      if (text.length && text[text.length - 1] === 0x0d && text.length > contentEnd - lineStart) text = text.subarray(0, text.length - 1);
    }
    if (text.length > contentEnd - lineStart) text = text.subarray(0, contentEnd - lineStart);
    yield { start: lineStart, end: contentEnd, next, text };
    peek = [];
    peekLen = 0;
    pos = next;
    lineStart = next;
  }
  if (lineStart < end) {
    const text = peek.length === 1 ? peek[0]! : Buffer.concat(peek);
    yield { start: lineStart, end, next: end, text: text.subarray(0, end - lineStart) };
  }
}
