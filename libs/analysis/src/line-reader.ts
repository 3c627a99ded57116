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
 * Lines of source[start, end), with exact offsets, a block's worth at a time (one await per
 * block, not per line: the analysis reads every line of a message several times). LF ends a
 * line; a CR before it is part of the break (the gateway canonicalised to CRLF, decoded
 * contents may use bare LF).
 */
export async function* readLines(source: ByteSource, start: number, end: number): AsyncGenerator<Line[]> {
  let lineStart = start;
  /** The unfinished line from the previous block: its first bytes, and whether its last byte was CR. */
  let carry: Buffer[] = [];
  let carryLen = 0;
  let carryCr = false;
  for (let pos = start; pos < end; ) {
    const block = await source.read(pos, Math.min(end, pos + BLOCK));
    if (!block.length) break;
    const lines: Line[] = [];
    let at = 0;
    for (let lf = block.indexOf(0x0a); lf >= 0; lf = block.indexOf(0x0a, at)) {
      const next = pos + lf + 1;
      const cr = lf > at ? block[lf - 1] === 0x0d : lf === at && carryLen + (lf - at) > 0 ? carryCr : false;
      const contentEnd = next - 1 - (cr ? 1 : 0);
      const length = contentEnd - lineStart;
      const text = carryLen ? peek(carry, carryLen, block.subarray(at, lf), length) : block.subarray(at, at + Math.min(length, LINE_PEEK));
      lines.push({ start: lineStart, end: contentEnd, next, text });
      carry = [];
      carryLen = 0;
      carryCr = false;
      at = lf + 1;
      lineStart = next;
    }
    if (at < block.length) {
      const rest = block.subarray(at);
      if (carryLen < LINE_PEEK) carry.push(Buffer.from(rest.subarray(0, LINE_PEEK - carryLen)));
      carryLen += rest.length;
      carryCr = rest[rest.length - 1] === 0x0d;
    }
    pos += block.length;
    if (lines.length) yield lines;
  }
  if (lineStart < end) yield [{ start: lineStart, end, next: end, text: peek(carry, carryLen, Buffer.alloc(0), end - lineStart) }];
}

/** The first LINE_PEEK bytes of a line made of `carry` (earlier blocks) and `tail`, cut to its content length. */
function peek(carry: Buffer[], carryLen: number, tail: Buffer, length: number): Buffer {
  const keep = Math.min(length, LINE_PEEK);
  if (!carryLen) return tail.subarray(0, keep);
  return Buffer.concat([...carry, tail.subarray(0, Math.max(0, LINE_PEEK - Math.min(carryLen, LINE_PEEK)))]).subarray(0, keep);
}
