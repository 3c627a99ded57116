import libmime from 'libmime';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Header text read as a 'binary' string (one char per byte: mailsplit's Headers, libs/analysis)
 * shows raw 8-bit header bytes (RFC 6532 UTF-8 headers) as latin1 mojibake: turn them back into
 * text when they are valid UTF-8, else keep the string as is.
 */
export function fromBinaryString(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[\x80-\xff]/.test(value) || /[^\x00-\xff]/.test(value)) return value;
  try {
    return utf8.decode(Buffer.from(value, 'latin1'));
  } catch {
    return value;
  }
}

/**
 * Decodes a raw Subject value (as found in the header, folding and RFC 2047 encoded-words kept;
 * raw UTF-8 bytes may be a 'binary' string) to text. Unknown charsets are left encoded.
 */
export function decodeSubject(raw?: string): string | undefined {
  if (raw === undefined) return undefined;
  const unfolded = fromBinaryString(raw).replace(/\r?\n(?=[ \t])/g, '');
  let decoded: string;
  try {
    decoded = libmime.decodeWords(unfolded);
  } catch {
    decoded = unfolded;
  }
  return decoded.trim();
}
