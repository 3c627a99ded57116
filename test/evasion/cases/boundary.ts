/** multipart boundaries that parsers read differently: parameter syntax, delimiter lines, nesting. */
import { attachmentPart, crlf, marker, message, multipart, textPart, type EvasionCase, type Payload } from '../build.js';

const HEYES = 'Gareth Heyes, "Splitting the Email Atom" (PortSwigger, 2024): parameter parsing (quotes, encoded words, RFC 2231) differs between parsers';

/**
 * The message declares `contentType` and delimits a clean part and the attachment with lines
 * built from `delimiter` (what the lenient reading of the parameter gives).
 */
const boundaryCase = (id: string, title: string, trick: string, contentType: string, delimiter: string, opts: Partial<EvasionCase> & { close?: string } = {}): EvasionCase => ({
  id,
  title,
  trick,
  clean: [marker(id)],
  build: (p) =>
    message(id, [contentType], crlf('This is a multi-part message in MIME format.', `--${delimiter}`, textPart(marker(id)), `--${delimiter}`, attachmentPart(p), opts.close ?? `--${delimiter}--`)),
  ...opts,
});

export const boundaryCases: EvasionCase[] = [
  boundaryCase('boundary-whitespace-in-quotes', 'boundary=" b1 " (spaces inside the quotes)', `quoted whitespace is part of the boundary for Python and RFC 2046, trimmed by others; the delimiter lines use the trimmed form (${HEYES})`, 'Content-Type: multipart/mixed; boundary=" mw-b1 "', 'mw-b1'),
  boundaryCase('boundary-single-quotes', "boundary='b1' (single quotes)", "single quotes are not quoting in RFC 2045 (the value is 'b1' with the quotes); clients that strip them read b1, as the delimiter lines do", "Content-Type: multipart/mixed; boundary='mw-b1'", 'mw-b1'),
  boundaryCase('boundary-space-around-equals', 'boundary = "b1" (whitespace around "=")', 'RFC 2045 has no whitespace around "=" in a parameter: strict tokenisers lose the parameter, lenient ones keep it', 'Content-Type: multipart/mixed; boundary = "mw-b1"', 'mw-b1'),
  boundaryCase('boundary-rfc2231-continuation', 'boundary split as boundary*0= and boundary*1=', 'RFC 2231 §3 parameter continuations: parsers without RFC 2231 see no boundary parameter at all', 'Content-Type: multipart/mixed; boundary*0="mw-evasion-"; boundary*1="bnd1"', 'mw-evasion-bnd1'),
  boundaryCase('boundary-rfc2231-encoded', "boundary*=us-ascii''mw%2Db1", `RFC 2231 §4 charset/percent encoding of the boundary parameter: only RFC 2231-aware parsers find "mw-b1" (${HEYES})`, "Content-Type: multipart/mixed; boundary*=us-ascii''mw%2Devasion%2Db1", 'mw-evasion-b1'),
  boundaryCase('boundary-encoded-word', 'boundary given as an RFC 2047 encoded word', `RFC 2047 §5 forbids encoded words in parameters, yet some parsers decode them (${HEYES}); the delimiter lines use the decoded value`, 'Content-Type: multipart/mixed; boundary="=?us-ascii?Q?mw-evasion-b1?="', 'mw-evasion-b1'),
  boundaryCase('boundary-with-spaces', 'boundary containing spaces and a tab', 'spaces are legal inside a quoted boundary (RFC 2046 bcharsnospace/space), but some parsers cut at the first whitespace; a tab is not legal and is kept by some, trimmed by others', 'Content-Type: multipart/mixed; boundary="mw b1\tx"', 'mw b1\tx'),
  boundaryCase('boundary-unquoted-equals', 'unquoted boundary containing "=" and "?"', 'tspecials ("=", "?") in an unquoted token: RFC 2045 tokenisers stop at "=", others take the rest of the value (Chen et al. "Composition Kills", USENIX Security 2020: ambiguous header syntax read differently by each component)', 'Content-Type: multipart/mixed; boundary=mw=b1?x', 'mw=b1?x'),
  boundaryCase('boundary-case-mismatch', 'delimiter lines differ in case from the boundary', 'boundaries are case-sensitive (RFC 2046), but ClamAV\'s boundaryStart/boundaryEnd (mbox.c) compare with strncasecmp: one parser sees parts, another one text', 'Content-Type: multipart/mixed; boundary="Mw-Evasion-B1"', 'MW-EVASION-B1'),
  boundaryCase('boundary-delimiter-trailing-whitespace', 'delimiter lines followed by spaces and tabs', 'RFC 2046 transport padding after a delimiter must be ignored; exact line matchers miss "--b1 \\t" and "--b1-- \\t"', 'Content-Type: multipart/mixed; boundary="mw-b1"', 'mw-b1 \t', { close: '--mw-b1-- \t' }),
  boundaryCase('boundary-missing-close', 'no closing delimiter', 'the closing "--b1--" is missing: strict parsers flag or drop the last part, clients show it (Gordano GMS lists "MIME no final boundary" as an evasion)', 'Content-Type: multipart/mixed; boundary="mw-b1"', 'mw-b1', { close: '' }),
  boundaryCase('boundary-folded-parameter', 'boundary parameter on a folded line with a comment', 'a folded Content-Type with an RFC 822 comment before the parameter: parsers that do not unfold or strip comments lose the boundary', 'Content-Type: multipart/mixed; (comment; boundary="decoy")\r\n\tboundary="mw-b1"', 'mw-b1'),
  {
    id: 'boundary-declared-twice',
    title: 'two boundary parameters with different values',
    trick: 'duplicate parameters: first-wins parsers use "a", last-wins ones (ClamAV messageFindArgumentLast) use "b"; under "a" the attachment is text inside a text part (Heyes 2024, duplicate parameters)',
    clean: [marker('boundary-declared-twice')],
    build: (p) =>
      message(
        'boundary-declared-twice',
        ['Content-Type: multipart/mixed; boundary="mw-a"; boundary="mw-b"'],
        crlf('preamble', '--mw-a', textPart(marker('boundary-declared-twice')), '--mw-b', attachmentPart(p), '--mw-b--', '--mw-a--'),
      ),
    expect: 'rejected-or-delivered',
  },
  {
    id: 'boundary-nested-reuse',
    title: 'nested multipart reusing the parent\'s boundary',
    trick: 'an inner multipart with the same boundary as its parent (RFC 2046 §5.1.2 forbids it): the parts nest differently for each parser',
    clean: [marker('boundary-nested-reuse')],
    build: (p) =>
      message(
        'boundary-nested-reuse',
        ['Content-Type: multipart/mixed; boundary="mw-same"'],
        crlf('preamble', '--mw-same', textPart(marker('boundary-nested-reuse')), '--mw-same', 'Content-Type: multipart/mixed; boundary="mw-same"', '', '--mw-same', attachmentPart(p), '--mw-same--', '--mw-same--'),
      ),
  },
  {
    id: 'boundary-part-after-close',
    title: 'a full MIME part after the closing delimiter',
    trick: 'after "--b1--" comes the epilogue (RFC 2046), but parsers that keep matching "--b1" lines open another part there',
    clean: [marker('boundary-part-after-close')],
    build: (p) => message('boundary-part-after-close', ['Content-Type: multipart/mixed; boundary="mw-b1"'], multipart('mw-b1', [textPart(marker('boundary-part-after-close'))], { epilogue: crlf('--mw-b1', attachmentPart(p), '--mw-b1--') })),
  },
  {
    id: 'boundary-epilogue-base64-blob',
    title: 'a bare base64 blob in the epilogue',
    trick: 'base64 data with no headers after the closing delimiter: not a part to any MIME parser, a file to a user with a base64 decoder or a client that sniffs',
    clean: [marker('boundary-epilogue-base64-blob')],
    build: (p) => message('boundary-epilogue-base64-blob', ['Content-Type: multipart/mixed; boundary="mw-b1"'], multipart('mw-b1', [textPart(marker('boundary-epilogue-base64-blob'))], { epilogue: crlf('', p.bytes.toString('base64').replace(/(.{76})/g, '$1\r\n')) })),
  },
  {
    id: 'boundary-attachment-in-preamble',
    title: 'a full MIME part (headers + base64) in the preamble',
    trick: 'the preamble (before the first delimiter) is ignored by MIME parsers; clients that parse headers there, or a user copying it out, get the file',
    clean: [marker('boundary-attachment-in-preamble')],
    build: (p) => message('boundary-attachment-in-preamble', ['Content-Type: multipart/mixed; boundary="mw-b1"'], multipart('mw-b1', [textPart(marker('boundary-attachment-in-preamble'))], { preamble: crlf(attachmentPart(p), '') })),
  },
  {
    id: 'multipart-without-boundary',
    title: 'multipart/mixed with no boundary parameter, parts delimited anyway',
    trick: 'no boundary parameter: Python records a defect and treats the body as text, clients (and ClamAV, "contains no boundary header") guess the boundary from the first "--" line',
    clean: [],
    build: (p) => message('multipart-without-boundary', ['Content-Type: multipart/mixed'], multipart('mw-guess', [textPart('text in a boundary-less multipart'), attachmentPart(p)])),
  },
  {
    id: 'multipart-type-missing',
    title: 'Content-Type "mixed; boundary=…" without "multipart/"',
    trick: 'a type without "/" is invalid (RFC 2045 §5.1) and means text/plain to strict parsers; clients that key on the boundary parameter split it',
    clean: [],
    build: (p) => message('multipart-type-missing', ['Content-Type: mixed; boundary="mw-b1"'], multipart('mw-b1', [textPart('text part'), attachmentPart(p)])),
  },
  {
    id: 'multipart-x-unknown',
    title: 'multipart/x-unknown subtype',
    trick: 'RFC 2046 §5.1.7: unrecognised multipart subtypes must be treated as multipart/mixed; gateways that only walk known subtypes skip the parts',
    clean: [marker('multipart-x-unknown')],
    build: (p) => message('multipart-x-unknown', ['Content-Type: multipart/x-unknown; boundary="mw-b1"'], multipart('mw-b1', [textPart(marker('multipart-x-unknown')), attachmentPart(p)])),
  },
  {
    id: 'boundary-prefix-of-other',
    title: 'outer boundary a prefix of the inner one',
    trick: 'outer "mw" and inner "mw-x": prefix matchers (RFC 2046 allows any line starting with the delimiter) end the outer part at the inner delimiter; the attachment lands in a different part per parser',
    clean: [marker('boundary-prefix-of-other')],
    build: (p: Payload) =>
      message(
        'boundary-prefix-of-other',
        ['Content-Type: multipart/mixed; boundary="mw"'],
        crlf('preamble', '--mw', textPart(marker('boundary-prefix-of-other')), '--mw', 'Content-Type: multipart/mixed; boundary="mw-x"', '', '--mw-x', attachmentPart(p), '--mw-x--', '--mw--'),
      ),
  },
];
