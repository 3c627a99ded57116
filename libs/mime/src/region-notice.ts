/** Longest notice line written (SMTP allows 998 octets; leave room for the escape). */
const MAX_LINE = 900;

/**
 * A notice that takes the place of body lines inside a 7bit/8bit body of unknown charset: plain
 * printable ASCII lines joined by CRLF (no trailing line break; the caller decides).
 * - Accented letters lose their accent (NFKD); any other character outside printable ASCII (tab
 *   kept) becomes '?'.
 * - Lines are cut at MAX_LINE characters.
 * - A line that a reader of the enclosing body could take for markup is escaped with a leading
 *   "> ": a MIME boundary delimiter ("--" at line start, or after whitespace for lenient parsers),
 *   the start of an embedded encoding (uuencode "begin", yEnc "=ybegin", BinHex), an mbox "From ".
 */
export function encodeRegionNotice(text: string): Buffer {
  const ascii = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/\r\n|\r|\n/g, '\n')
    .replace(/[^\x20-\x7e\t\n]/gu, '?');
  const lines: string[] = [];
  for (const line of ascii.split('\n')) {
    for (let at = 0; at === 0 || at < line.length; at += MAX_LINE) lines.push(escapeLine(line.slice(at, at + MAX_LINE)));
  }
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

function escapeLine(line: string): string {
  return /^[ \t]*(?:-|begin|=ybegin|\(this file must be converted with binhex|from )/i.test(line) ? `> ${line}` : line;
}
