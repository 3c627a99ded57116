import type { Headers } from 'mailsplit';

/**
 * A part whose header block is empty (a boundary line, then straight the empty line) parses as one
 * header "line" that is empty. Left in place, headers added to the block would be built after an
 * empty line, that is, into the body. Drops such blank entries (and only them) before a change.
 */
export function dropBlankHeaderLines(headers: Headers): void {
  const lines = headers.getList();
  if (!lines.some((line) => line.key === '' && line.line.trim() === '')) return;
  // remove('') also drops malformed lines without a colon (key ''): put those back where they were
  const keep: { line: string; index: number }[] = [];
  let index = 0;
  for (const line of lines) {
    if (line.key === '' && line.line.trim() === '') continue;
    if (line.key === '') keep.push({ line: line.line, index });
    index++;
  }
  headers.remove('');
  for (const { line, index: at } of keep) headers.addFormatted('', line, at);
}
