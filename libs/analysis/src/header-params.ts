import libmime from 'libmime';
import { fromBinaryString } from '@mailwarden/mime';

/** How a body is turned into content. `uu` also covers begin-base64 blocks (see blocks.ts). */
export type Decoding = 'identity' | 'base64' | 'qp' | 'uu';

/** "Multipart / Mixed (x); a=b" → "multipart/mixed"; empty when there is no usable type. */
export function mediaType(value: string): string {
  const main = value.replace(/\([^)]*\)/g, '').split(';', 1)[0] ?? '';
  return main.replace(/\s+/g, '').toLowerCase();
}

/**
 * Every way a parser may read a Content-Transfer-Encoding value: the token as RFC 2045 has it
 * (case-insensitive, parameters and comments ignored), and what a looser reading finds in the
 * garbage around it ("base 64", "x-base64", "base64; x-junk"). Unknown values read as identity.
 */
export function decodingsOf(value: string): Decoding[] {
  const bare = value.replace(/\([^)]*\)/g, '').toLowerCase();
  const token = (bare.split(';', 1)[0] ?? '').trim();
  const squeezed = bare.replace(/[\s"']+/g, '');
  const out = new Set<Decoding>([strictDecoding(token)]);
  if (squeezed.includes('base64') || squeezed.includes('base-64')) out.add('base64');
  if (squeezed.includes('quoted') || squeezed.includes('printable')) out.add('qp');
  if (/uu(encode|e\b|e;|e$)|uue/.test(squeezed)) out.add('uu');
  return [...out];
}

function strictDecoding(token: string): Decoding {
  switch (token) {
    case 'base64':
      return 'base64';
    case 'quoted-printable':
      return 'qp';
    case 'x-uuencode':
    case 'uuencode':
    case 'x-uue':
    case 'uue':
      return 'uu';
    default:
      return 'identity';
  }
}

/**
 * Every boundary a parser may read from a Content-Type value, the RFC 2046 reading first: each
 * `boundary` parameter (also without a preceding `;`, with whitespace around `=`, repeated, RFC 2231
 * continuations), quoted strings taken as they are and trimmed, single quotes kept and dropped,
 * unquoted values cut at the first tspecial, at whitespace, or only at `;`.
 */
export function boundaryReadings(value: string): string[] {
  const out: string[] = [];
  const add = (b: string | undefined): void => {
    if (b === undefined) return;
    for (const v of [b, b.replace(/[ \t]+$/, ''), b.trim()]) if (v.length && v.length <= 200 && !out.includes(v)) out.push(v);
  };
  const re = /boundary\s*=\s*/gi;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const rest = value.slice(m.index + m[0].length);
    if (rest.startsWith('"')) {
      const q = /^"((?:[^"\\]|\\.)*)"?/.exec(rest);
      const inner = q?.[1] ?? '';
      add(inner.replace(/\\(.)/g, '$1'));
      add(inner);
    } else if (rest.startsWith("'")) {
      const q = /^'([^']*)'?/.exec(rest);
      add(q?.[0].endsWith("'") ? q[0] : undefined);
      add(q?.[1]);
    } else {
      add(/^[^\s()<>@,;:\\"/[\]?=]+/.exec(rest)?.[0]);
      add(/^[^\s;]+/.exec(rest)?.[0]);
      add(/^[^;]*/.exec(rest)?.[0]);
    }
  }
  // RFC 2231: boundary*0="a"; boundary*1="b", boundary*=utf-8''x — libmime's reading
  try {
    add(libmime.parseHeaderValue(value).params.boundary);
  } catch {
    // unparseable: the readings above stand
  }
  // encoded-words are not allowed in parameters (RFC 2047 §5), yet some parsers decode them
  for (const b of [...out]) {
    if (!b.includes('=?')) continue;
    try {
      add(libmime.decodeWords(b));
    } catch {
      // not decodable
    }
  }
  return out;
}

/** The file name a client would show: Content-Disposition filename, else Content-Type name (RFC 2231 and 2047 decoded). */
export function fileName(disposition: string | undefined, contentType: string | undefined): string | undefined {
  for (const [value, param] of [
    [disposition, 'filename'],
    [contentType, 'name'],
  ] as const) {
    if (!value) continue;
    try {
      const name = libmime.parseHeaderValue(value).params[param];
      if (name) return decodeName(name);
    } catch {
      // try the next one
    }
  }
  return undefined;
}

function decodeName(name: string): string {
  let text = fromBinaryString(name);
  try {
    text = libmime.decodeWords(text);
  } catch {
    // keep it encoded
  }
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, 255);
}
