import libmime from 'libmime';
import libqp from 'libqp';
import type { MimeNode } from 'mailsplit';
import { dropBlankHeaderLines } from './header-block.js';

/**
 * Turns a leaf's header block into the one of a text/plain notice, in place: every Content-*
 * header goes (type, encoding, disposition, ID, MD5, description...: they described the removed
 * content), then Content-Type text/plain; charset=utf-8, quoted-printable, and an attachment
 * disposition named `filename` are put where the first one was. Other headers stay. A root
 * part also gets MIME-Version if it had none.
 */
export function rewriteAsNotice(node: MimeNode, filename: string): void {
  const headers = node.headers;
  if (!headers) throw new Error('node headers not parsed');
  dropBlankHeaderLines(headers);
  const lines = headers.getList();
  const first = lines.findIndex((line) => line.key.startsWith('content-'));
  const keys = new Set(lines.filter((line) => line.key.startsWith('content-')).map((line) => line.key));
  for (const key of keys) headers.remove(key);

  let at = first >= 0 ? first : headers.getList().length;
  // eslint-disable-next-line no-control-regex
  const safeName = filename.replace(/[\x00-\x1f\x7f]+/g, ' ').trim() || 'notice.txt';
  headers.add('Content-Type', 'text/plain; charset=utf-8', at++);
  headers.add('Content-Transfer-Encoding', 'quoted-printable', at++);
  headers.add('Content-Disposition', libmime.buildHeaderValue({ value: 'attachment', params: { filename: safeName } }), at++);
  if (node.root && !headers.hasHeader('mime-version')) headers.add('MIME-Version', '1.0', at);

  node.contentType = 'text/plain';
  node.charset = 'utf-8';
  node.encoding = 'quoted-printable';
  node.disposition = 'attachment';
  node.filename = safeName;
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
