/** Malformed base64 and quoted-printable bodies that forgiving decoders still turn into the file. */
import { attHeaders, b64, marker, qpAll, textAndPart, type EvasionCase, type Payload } from '../build.js';

const RFC2045_IGNORE = 'RFC 2045 §6.8: characters outside the base64 alphabet "must be ignored by decoding software"';

/** A clean text part plus an attachment part (CTE `cte`) whose body is `body(payload)`. */
const bodyCase = (id: string, title: string, trick: string, body: (p: Payload) => string, cte = 'Content-Transfer-Encoding: base64', opts: Partial<EvasionCase> = {}): EvasionCase => ({
  id,
  title,
  trick,
  clean: [marker(id)],
  build: (p) => textAndPart(id, attHeaders(p, cte), body(p)),
  ...opts,
});

/** base64 of `bytes` in pieces of 3 bytes or fewer, each padded on its own: "=" in the middle. */
function paddedChunks(bytes: Buffer, sizes: number[]): string {
  const out: string[] = [];
  let i = 0;
  let k = 0;
  while (i < bytes.length) {
    const n = sizes[k++ % sizes.length]!;
    out.push(bytes.subarray(i, i + n).toString('base64'));
    i += n;
  }
  return out.join('').replace(/(.{64})/g, '$1\r\n');
}

export const bodyEncodingCases: EvasionCase[] = [
  bodyCase('b64-whitespace-inside', 'base64 with spaces and tabs inside lines', `${RFC2045_IGNORE}; a decoder that stops at whitespace yields a few harmless bytes`, (p) =>
    b64(p.bytes, 16).split('\r\n').map((l) => `${l.slice(0, 5)} ${l.slice(5, 9)}\t${l.slice(9)}`).join('\r\n')),
  bodyCase('b64-junk-lines', 'base64 with junk lines between the data lines', `${RFC2045_IGNORE}; lines like "*** ---- ***" break scanners that stop at the first non-base64 line`, (p) =>
    b64(p.bytes, 24).split('\r\n').join('\r\n*** ---- *** ---- ***\r\n')),
  bodyCase('b64-bang-characters', 'base64 with "!" characters sprinkled in', `${RFC2045_IGNORE}; "!" is not in the alphabet and is silently skipped by Thunderbird, Outlook and Python (binascii non-strict)`, (p) =>
    b64(p.bytes, 76).replace(/(.{7})/g, '$1!')),
  bodyCase('b64-missing-padding', 'base64 without its final "=" padding', 'RFC 4648 §3.2 padding omitted: strict decoders reject the body, lenient ones decode it', (p) => {
    const bytes = p.bytes.length % 3 === 0 ? Buffer.concat([p.bytes, Buffer.from('\n')]) : p.bytes;
    return b64(bytes).replace(/=+$/, '');
  }),
  bodyCase('b64-padding-in-middle', 'base64 of short chunks, each padded: "=" in the middle of the data', 'padding inside the stream: decoders that stop at the first "=" see a few bytes, decoders that continue (many clients) see the whole file', (p) => paddedChunks(p.bytes, [2, 1, 3, 2])),
  bodyCase('b64-data-after-end', 'a decoy padded quantum, then the real data', 'a complete padded decoy ("SGk=") first: "end of data" for one decoder, a mere quantum for another that keeps decoding', (p) => `SGk=\r\n${b64(p.bytes)}`),
  bodyCase('b64-odd-line-lengths', 'base64 lines of odd, varying lengths', 'line lengths not a multiple of 4 (1..13 characters): decoders that decode line by line lose alignment, stream decoders do not', (p) => {
    const s = p.bytes.toString('base64');
    const out: string[] = [];
    for (let i = 0, n = 1; i < s.length; i += n, n = (n % 13) + 1) out.push(s.slice(i, i + n));
    return out.join('\r\n');
  }),
  bodyCase('b64-one-long-line', 'base64 on one long line (no wrapping)', 'RFC 2045 limits encoded lines to 76 characters; decoders that reject longer lines see nothing, clients decode it', (p) => p.bytes.toString('base64')),
  bodyCase('b64-leading-junk-line', 'a non-base64 text line before the data', `${RFC2045_IGNORE}; a leading line of prose misaligns decoders that abort on it`, (p) => `-- begin of attached file --\r\n${b64(p.bytes)}`),
  bodyCase('b64-blank-lines', 'base64 data split by blank lines', 'empty lines inside the data: some decoders treat the first blank line as the end of the part body', (p) => b64(p.bytes, 12).split('\r\n').join('\r\n\r\n')),
  bodyCase('qp-all-encoded-soft-breaks', 'quoted-printable, every byte =XX, soft break after each one', 'a soft line break ("=" CRLF, RFC 2045 §6.7 rule 5) after every encoded octet: line-based matchers never see the file', (p) => qpAll(p.bytes, { perLine: 1 }), 'Content-Transfer-Encoding: quoted-printable'),
  bodyCase('qp-lowercase-hex', 'quoted-printable with lower-case hex digits', 'RFC 2045 §6.7 requires upper-case hex but says decoders should accept lower case ("=5c"); strict decoders leave the text encoded', (p) => qpAll(p.bytes, { lower: true }), 'Content-Transfer-Encoding: quoted-printable'),
  bodyCase('qp-soft-break-trailing-whitespace', 'quoted-printable soft breaks followed by whitespace', 'RFC 2045 §6.7 rule 3: whitespace after "=" at line end was added in transport and must be deleted; decoders that do not see "= \\t" as a soft break keep the text garbled', (p) => qpAll(p.bytes, { perLine: 7, softBreak: '= \t' }), 'Content-Transfer-Encoding: quoted-printable'),
  bodyCase('qp-bare-lf-soft-breaks', 'quoted-printable soft breaks ending in bare LF', 'soft breaks "=\\n" (bare LF) inside a CRLF message; the gateway canonicalises line ends, decoders that only know "=\\r\\n" keep the "="', (p) => qpAll(p.bytes, { perLine: 5 }).replace(/=\r\n/g, '=\n'), 'Content-Transfer-Encoding: quoted-printable'),
];
