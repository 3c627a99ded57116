import type { ByteSource } from './byte-source.js';
import { readLines } from './line-reader.js';
import { AnalysisLimitError } from './limits.js';

export interface HeaderField {
  /** Lower-cased name, whitespace before the colon dropped ("Content-Type :" → "content-type"). */
  name: string;
  /** Unfolded value as latin1 text (one char per byte), leading whitespace dropped. */
  value: string;
}

export interface HeaderBlock {
  fields: HeaderField[];
  /** Where the body starts: after the empty line, or the end of the range when there is none. */
  bodyStart: number;
  /** A line that is neither a field nor a continuation, if any: strict parsers (Python's email) end the header there. */
  malformedAt?: number;
  /** After a line of blanks read as a continuation: lenient parsers take that line for the empty line, the body starting here. */
  blankAt?: number;
}

const FIELD = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;

/** Reads the header block at source[start, end). */
export async function readHeaderBlock(source: ByteSource, start: number, end: number, maxBytes: number): Promise<HeaderBlock> {
  const fields: HeaderField[] = [];
  let malformedAt: number | undefined;
  let blankAt: number | undefined;
  let current: { name: string; parts: string[] } | undefined;
  const flush = (): void => {
    if (current) fields.push({ name: current.name, value: current.parts.join('').replace(/^[ \t]+/, '') });
    current = undefined;
  };
  for await (const lines of readLines(source, start, end)) for (const line of lines) {
    if (line.next - start > maxBytes) throw new AnalysisLimitError(`a header block over ${maxBytes} bytes`);
    if (line.end === line.start) {
      flush();
      return { fields, bodyStart: line.next, ...(malformedAt !== undefined ? { malformedAt } : {}), ...(blankAt !== undefined ? { blankAt } : {}) };
    }
    const text = line.text.toString('latin1');
    if ((text[0] === ' ' || text[0] === '\t') && current) {
      if (!text.trim()) blankAt ??= line.next;
      current.parts.push(text);
      continue;
    }
    const m = FIELD.exec(text);
    if (!m) {
      flush();
      malformedAt ??= line.start;
      continue;
    }
    flush();
    current = { name: m[1]!.toLowerCase(), parts: [text.slice(m[0].length)] };
  }
  flush();
  return { fields, bodyStart: end, ...(malformedAt !== undefined ? { malformedAt } : {}), ...(blankAt !== undefined ? { blankAt } : {}) };
}

export function values(block: HeaderBlock, name: string): string[] {
  return block.fields.filter((f) => f.name === name).map((f) => f.value);
}
