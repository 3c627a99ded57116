/**
 * Encoded files inside a line of text that a browser or a script turns back into a file: HTML
 * smuggling. An HTML body (or an .html/.svg attachment opened in a browser) can carry a payload as
 * a `data:` URI (`<a href="data:application/octet-stream;base64,…" download>`, base64 or
 * percent-encoded) or as a base64 string literal that a script hands to `atob()` and saves as a
 * Blob. Neither is a line of base64 of its own, so the line-based readings do not see them.
 */

/** Where one inline encoding's data lies in a line (offsets within the line's text). */
export interface InlineEncoding {
  kind: 'base64' | 'percent';
  /** What holds it, for the verdict's `source`. */
  via: 'data: URI' | 'quoted base64 string';
  from: number;
  /** End of the data; `open`: it reaches the end of the line and may go on in the next lines. */
  to: number;
  open: boolean;
}

/** `data:[<media type>][;base64],`: browsers take the `base64` marker in any case. */
const DATA_URI = /data:([^,"'<>\s]{0,200}),/gi;
/** A string literal of base64 long enough to be a file rather than an identifier or a token. */
const QUOTED_BASE64 = /(["'`])([A-Za-z0-9+/]{64,}={0,2})\1/g;
/** Characters a percent-encoded data URI ends at inside markup. */
const URI_END = /["'<>\s)]/;

/** 1 for each base64 alphabet byte and '='. */
const B64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=') B64[c.charCodeAt(0)] = 1;

/**
 * The inline encodings of one line (`text`: its content, trailing blanks removed). Cheap for
 * prose: a line without a colon or a quote is not looked at.
 */
export function findInlineEncodings(t: Buffer, n: number): InlineEncoding[] {
  const firstColon = t.indexOf(0x3a);
  const colon = firstColon >= 0 && firstColon < n;
  const quote = n >= 66 && (t.includes(0x22) || t.includes(0x27) || t.includes(0x60));
  if (!colon && !quote) return [];
  const text = t.toString('latin1', 0, n);
  const found: InlineEncoding[] = [];
  if (colon) {
    for (const m of text.matchAll(DATA_URI)) {
      const from = m.index + m[0].length;
      if (/;\s*base64\s*$/i.test(m[1]!)) {
        const to = base64End(t, from, n);
        if (to - from >= 8) found.push({ kind: 'base64', via: 'data: URI', from, to, open: to === n });
        continue;
      }
      const rest = text.slice(from);
      const end = rest.search(URI_END);
      const to = end < 0 ? n : from + end;
      // without an escape the bytes are in the text as they are, and scanned with it
      if (/%[0-9A-Fa-f]{2}/.test(text.slice(from, to))) found.push({ kind: 'percent', via: 'data: URI', from, to, open: false });
    }
  }
  if (quote) {
    for (const m of text.matchAll(QUOTED_BASE64)) {
      const from = m.index + 1;
      found.push({ kind: 'base64', via: 'quoted base64 string', from, to: from + m[2]!.length, open: false });
    }
  }
  return found;
}

/** Where base64 (alphabet, padding, blanks between) starting at `from` ends. */
export function base64End(t: Buffer, from: number, n: number): number {
  let i = from;
  while (i < n && (B64[t[i]!] || t[i] === 0x20 || t[i] === 0x09)) i++;
  // blanks after the data belong to the markup
  while (i > from && (t[i - 1] === 0x20 || t[i - 1] === 0x09)) i--;
  return i;
}

/** Where a continuation line of an open data URI ends: its leading blanks, then base64. */
export function continuationEnd(t: Buffer, n: number): number {
  let i = 0;
  while (i < n && (t[i] === 0x20 || t[i] === 0x09)) i++;
  return i === n ? 0 : base64End(t, i, n);
}
