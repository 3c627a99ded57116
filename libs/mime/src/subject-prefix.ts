import libmime from 'libmime';
import type { Headers } from 'mailsplit';
import { dropBlankHeaderLines } from './header-block.js';
import { decodeSubject } from './header-text.js';

/**
 * Prepends `prefix` to every Subject line of a root header block, in place:
 * - `Subject: <prefix> <original value>`, the original kept byte for byte (encoded-words and
 *   folding included); a prefix that is not plain printable ASCII is itself an RFC 2047 word;
 * - a header block without Subject gets `Subject: <prefix>` (at the end);
 * - a Subject whose decoded text already starts with the prefix is left alone (never twice).
 * Control characters in the prefix are replaced by spaces (no header injection).
 * Returns whether the headers were changed.
 */
export function prefixSubject(headers: Headers, rawPrefix: string): boolean {
  // eslint-disable-next-line no-control-regex
  const prefix = rawPrefix.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  if (!prefix) return false;

  const lines = headers.getList();
  const subjects = lines.map((line, index) => ({ ...line, index })).filter((line) => line.key === 'subject');
  if (!subjects.length) {
    dropBlankHeaderLines(headers);
    headers.add('Subject', encodePrefix(prefix, false), headers.getList().length);
    return true;
  }

  let changed = false;
  const rewritten = subjects.map(({ line, index }) => {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^(?:[ \t]|\r?\n)+/, '');
    if ((decodeSubject(value) ?? '').startsWith(prefix)) return { line, index };
    changed = true;
    if (!value) return { line: `${name}: ${encodePrefix(prefix, false)}`, index };
    const encoded = encodePrefix(prefix, /^=\?[^?\s]+\?[bBqQ]\?/.test(value));
    const firstLine = value.split(/\r?\n/, 1)[0] ?? '';
    // fold after the prefix rather than make the first line long (unfolds to the same text)
    const separator = name.length + encoded.length + firstLine.length + 3 > 78 ? '\r\n ' : ' ';
    return { line: `${name}: ${encoded}${separator}${value}`, index };
  });
  if (!changed) return false;

  headers.remove('subject');
  for (const { line, index } of rewritten) headers.addFormatted('subject', line, index);
  return true;
}

/**
 * Plain printable ASCII stays as is. Anything else becomes encoded-words; when an encoded-word
 * follows, the separating space goes inside the encoding, as whitespace between two encoded-words
 * is dropped by decoders.
 */
function encodePrefix(prefix: string, beforeEncodedWord: boolean): string {
  if (/^[\x20-\x7e]*$/.test(prefix) && !prefix.includes('=?')) return prefix;
  return libmime.encodeWord(beforeEncodedWord ? `${prefix} ` : prefix, 'Q', 52);
}
