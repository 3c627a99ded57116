/** Content-Transfer-Encoding header tricks: the token, its syntax, its repetition, its absence. */
import { attHeaders, b64, crlf, marker, message, multipart, textAndPart, textPart, BOUNDARY, type EvasionCase } from '../build.js';

const CLAMAV_SIMIL = "ClamAV messageSetEncoding (libclamav/message.c) tokenises the CTE on blanks and fuzzy-matches each token with simil(); strict parsers take the whole value";

/** A clean text part plus an attachment part carrying base64 of the payload under `cte` header lines. */
const cteCase = (id: string, title: string, trick: string, cte: string[], opts: Partial<EvasionCase> = {}): EvasionCase => ({
  id,
  title,
  trick,
  clean: [marker(id)],
  build: (p) => textAndPart(id, attHeaders(p, ...cte), b64(p.bytes)),
  ...opts,
});

export const transferEncodingCases: EvasionCase[] = [
  cteCase('cte-parameters', 'CTE base64 with a parameter', `"base64; x-junk=\\"1\\"": the token is not exactly "base64" for an exact-match parser, lenient clients cut at ";" (${CLAMAV_SIMIL})`, ['Content-Transfer-Encoding: base64; x-junk="1"']),
  cteCase('cte-trailing-garbage', 'CTE base64 followed by garbage words', `"base64 garbage": first-token readers decode, whole-value readers fall back to 7bit (${CLAMAV_SIMIL})`, ['Content-Transfer-Encoding: base64 garbage-after-token']),
  cteCase('cte-uppercase', 'CTE written BASE64', 'RFC 2045 §6.1 makes the token case-insensitive; a case-sensitive comparison sees an unknown encoding and scans the base64 text', ['Content-Transfer-Encoding: BASE64']),
  cteCase('cte-mixed-case', 'CTE written bAsE64', 'mixed-case token (RFC 2045 §6.1 case-insensitive); naive lowercase tables miss it', ['Content-Transfer-Encoding: bAsE64']),
  cteCase('cte-space-inside-token', 'CTE written "base 64"', `split token: ClamAV special-cases "8 bit"; clients that strip whitespace before matching read base64 (${CLAMAV_SIMIL})`, ['Content-Transfer-Encoding: base 64']),
  cteCase('cte-space-semicolon', 'CTE written "Base64 ;"', 'trailing " ;" after the token: exact-match parsers see an unknown encoding, clients trim it', ['Content-Transfer-Encoding: Base64 ;']),
  cteCase('cte-surrounding-whitespace', 'CTE token surrounded by tabs and spaces', 'leading/trailing HTAB and SP around the token (RFC 5322 unstructured value): parsers that do not trim compare "\\tbase64 " and fail', ['Content-Transfer-Encoding:\t  base64 \t ']),
  cteCase('cte-quoted-token', 'CTE token in double quotes', '"\\"base64\\"": not legal RFC 2045 syntax, but unquoting parsers (and simil-style fuzzy matching) decode it', ['Content-Transfer-Encoding: "base64"']),
  cteCase('cte-comment', 'CTE token followed by an RFC 822 comment', '"base64 (encoded)": RFC 2045 allows comments in structured fields; parsers that do not strip comments see an unknown token', ['Content-Transfer-Encoding: base64 (encoded by mailer)']),
  cteCase('cte-x-prefixed', 'CTE written x-base64', `unknown "x-" token: ClamAV lets any token starting with "x" into its fuzzy match (comment in message.c: "X-quoted-printable"); some clients decode it as base64 (${CLAMAV_SIMIL})`, ['Content-Transfer-Encoding: x-base64']),
  cteCase('cte-folded-value', 'CTE value folded onto a continuation line', 'the header value sits on a folded continuation line (RFC 5322 §2.2.3); line-based header readers see an empty CTE', ['Content-Transfer-Encoding:', ' base64']),
  cteCase('cte-name-space-before-colon', 'header name "Content-Transfer-Encoding :"', 'obsolete syntax WSP before ":" (RFC 5322 §4.5.3 obs-optional): strict parsers drop the header, lenient ones (Python compat32, Outlook) honour it', ['Content-Transfer-Encoding : base64'], { expect: 'rejected-or-delivered' }),
  cteCase('cte-name-odd-case', 'header name in odd case', 'header names are case-insensitive (RFC 5322 §1.2.2); "cONTENT-tRANSFER-eNCODING" defeats case-sensitive header lookups', ['cONTENT-tRANSFER-eNCODING: base64']),
  cteCase('cte-duplicate-7bit-then-base64', 'two CTE headers: 7bit, then base64', 'duplicate CTE headers (F-Secure Internet Gatekeeper guide, "malformed messages"): first-wins parsers see 7bit text, last-wins clients decode base64', ['Content-Transfer-Encoding: 7bit', 'Content-Transfer-Encoding: base64'], { expect: 'rejected-or-delivered' }),
  cteCase('cte-duplicate-base64-then-7bit', 'two CTE headers: base64, then 7bit', 'duplicate CTE headers in the other order: last-wins parsers see 7bit text, first-wins clients decode base64', ['Content-Transfer-Encoding: base64', 'Content-Transfer-Encoding: 7bit'], { expect: 'rejected-or-delivered' }),
  cteCase('cte-duplicate-qp-and-base64', 'two CTE headers: quoted-printable and base64', 'the F-Secure Gatekeeper manual\'s own example of a malformed message: base64 and quoted-printable on the same part; QP-decoding base64 text leaves it unchanged', ['Content-Transfer-Encoding: quoted-printable', 'Content-Transfer-Encoding: base64'], { expect: 'rejected-or-delivered' }),
  cteCase('cte-missing-base64-body', 'base64 body without any CTE, named eicar.com', 'no CTE means 7bit (RFC 2045 §6.1), so a strict scanner sees base64 text; mail clients sniff base64 bodies of named attachments and decode them', []),
  cteCase('cte-declared-7bit-base64-body', 'CTE 7bit on a base64 body', 'wrong CTE (7bit) over a base64 body: the gateway scans text, the user saves the attachment and any base64 tool (or sniffing client) decodes it', ['Content-Transfer-Encoding: 7bit']),
  cteCase('cte-declared-binary-base64-body', 'CTE binary on a base64 body', 'wrong CTE (binary) over a base64 body: identity for a strict parser, base64 for a sniffing client', ['Content-Transfer-Encoding: binary']),
  {
    id: 'cte-qp-misspelt',
    title: 'quoted-printable misspelt, body fully QP-encoded',
    trick: `"quoted-printabel": an unknown token means identity to a strict parser; fuzzy-matching decoders (${CLAMAV_SIMIL}) and forgiving clients decode QP`,
    clean: [marker('cte-qp-misspelt')],
    build: (p) => {
      let qp = '';
      for (const b of p.bytes) qp += `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
      return textAndPart('cte-qp-misspelt', attHeaders(p, 'Content-Transfer-Encoding: quoted-printabel'), qp.replace(/(.{72})/g, '$1=\r\n'));
    },
  },
  {
    id: 'cte-on-multipart-container',
    title: 'CTE base64 on the multipart root, whole multipart body base64-encoded',
    trick: 'RFC 2045 §6.4 forbids an encoding other than 7bit/8bit/binary on multipart; the Sun Messaging Server MTA notes that software still decodes "bogus MIME" on containers — the parts only exist after base64-decoding the root body',
    clean: [],
    build: (p) => {
      const inner = multipart(BOUNDARY, [textPart('inner text'), crlf(attHeaders(p, 'Content-Transfer-Encoding: base64'), '', b64(p.bytes))]);
      return message('cte-on-multipart-container', [`Content-Type: multipart/mixed; boundary="${BOUNDARY}"`, 'Content-Transfer-Encoding: base64'], b64(Buffer.from(`${inner}\r\n`, 'latin1')));
    },
    expect: 'rejected-or-delivered',
  },
  {
    id: 'cte-8bit-garbage-in-base64',
    title: 'base64 body interleaved with 8bit garbage lines',
    trick: 'NUL-free 8bit bytes between base64 lines: RFC 2045 §6.8 says decoders must ignore characters outside the alphabet, scanners that reject or stop at them see no attachment',
    clean: [marker('cte-8bit-garbage-in-base64')],
    build: (p) => {
      const garbage = Buffer.from([0xe9, 0xff, 0x80, 0xa0, 0xfe, 0xc3, 0x28]).toString('latin1');
      const body = b64(p.bytes, 20).split('\r\n').join(`\r\n${garbage}\r\n`);
      return textAndPart('cte-8bit-garbage-in-base64', attHeaders(p, 'Content-Transfer-Encoding: base64'), `${garbage}\r\n${body}`);
    },
  },
  {
    id: 'cte-single-part-uppercase-root',
    title: 'single-part message, root CTE "BASE64" and no Content-Type',
    trick: 'no Content-Type (default text/plain, RFC 2045 §5.2) plus an upper-case CTE on the root: the whole body is the attachment only for a client that honours both',
    clean: [],
    build: (p) => message('cte-single-part-uppercase-root', ['Content-Transfer-Encoding: BASE64'], b64(p.bytes)),
  },
];

