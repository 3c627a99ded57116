import libmime from 'libmime';
import libqp from 'libqp';
import type { Headers } from 'mailsplit';

/**
 * Turns a header block into the one of a text/plain notice, in place: every Content-* header goes
 * (type, encoding, disposition, ID, MD5, description...: they described the removed content;
 * whitespace before the colon does not save one), so do lines that are not headers (no colon, or
 * a continuation line with nothing to continue); then Content-Type text/plain; charset=utf-8,
 * quoted-printable, and an attachment disposition named `filename` are put where the first
 * Content-* header was. Other headers stay, byte for byte. A root part (`root`) also gets
 * MIME-Version if it had none. Returns the file name as written (control characters replaced).
 */
export function rewriteHeadersAsNotice(headers: Headers, filename: string, root: boolean): string {
  const lines = headers.getList();
  if (!root) headers.mbox = false; // a "From " line opening a part's header is no envelope, just not a header
  const content = (key: string): boolean => key.startsWith('content-');
  const first = lines.filter((line) => isHeaderLine(line.key, line.line)).findIndex((line) => content(line.key));
  const kept = lines.filter((line) => isHeaderLine(line.key, line.line) && !content(line.key));
  // remove() works by key: empty everything, then put the kept lines back in order
  for (const key of new Set(lines.map((line) => line.key))) headers.remove(key);
  kept.forEach((line, index) => headers.addFormatted(line.key, line.line, index));

  let at = first >= 0 ? first : kept.length;
  // eslint-disable-next-line no-control-regex
  const safeName = filename.replace(/[\x00-\x1f\x7f]+/g, ' ').trim() || 'notice.txt';
  headers.add('Content-Type', 'text/plain; charset=utf-8', at++);
  headers.add('Content-Transfer-Encoding', 'quoted-printable', at++);
  headers.add('Content-Disposition', libmime.buildHeaderValue({ value: 'attachment', params: { filename: safeName } }), at++);
  if (root && !headers.hasHeader('mime-version')) headers.add('MIME-Version', '1.0', at);
  return safeName;
}

/** A header line has a name before its colon and does not start with whitespace. */
function isHeaderLine(key: string, line: string): boolean {
  return key !== '' && !/^[ \t]/.test(line);
}

/**
 * The notice body: text with CRLF line endings, quoted-printable encoded (lines starting with '-'
 * are escaped, so the text can never form a MIME boundary). Always ends with CRLF, so whatever
 * follows (a boundary delimiter, or the end of the message) starts on its own line.
 */
export function encodeNoticeBody(text: string): Buffer {
  let body = text.replace(/\r\n|\r|\n/g, '\r\n');
  if (!body.endsWith('\r\n')) body += '\r\n';
  return Buffer.from(libqp.wrap(libqp.encode(body), 76), 'latin1');
}
