/** uuencode, begin-base64 and yEnc: encodings mail clients decode from text, outside MIME. */
import { attHeaders, b64, crlf, marker, message, mixed, textPart, uuencode, yencode, type EvasionCase, type Payload } from '../build.js';

const EXCHANGE = 'Microsoft KB Q167393: Exchange before 5.0 turned uuencoded sections of text/plain parts into attachments, and mail clients (Outlook Express, Thunderbird MimeUntypedText, Eudora) still do';
const CLAMAV_UUE = 'ClamAV message.c encoding_map also maps "x-uue" and "uuencode" (marked "incorrect") to UUENCODE; Thunderbird accepts x-uuencode, x-uue, uuencode and uue (ENCODING_UUENCODE1-4)';

/** The `begin-base64` form of uuencode(1) -m (POSIX uuencode, "====" terminator). */
const beginBase64 = (p: Payload): string => crlf(`begin-base64 644 ${p.name}`, b64(p.bytes, 60), '====');

/** Text surrounding an inline block, as a human would write it. */
const around = (id: string, block: string): string => crlf(`${marker(id, 2)}: the file is below.`, '', block, '', 'Regards');

/** A part with a uuencoding CTE: clean text part, then the uuencoded attachment. */
const uuCte = (id: string, cte: string): EvasionCase => ({
  id,
  title: `uuencoded attachment with CTE ${cte}`,
  trick: `non-standard CTE "${cte}" (not in RFC 2045): ${CLAMAV_UUE}; a gateway that only knows base64/QP scans the uuencoded text`,
  clean: [marker(id)],
  build: (p) => mixed(id, [textPart(marker(id)), crlf(attHeaders(p, `Content-Transfer-Encoding: ${cte}`), '', uuencode(p.bytes, p.name))]),
});

export const inlineEncodingCases: EvasionCase[] = [
  {
    id: 'uu-in-text-plain',
    title: 'uuencoded block inside a text/plain body',
    trick: `a "begin 644 name" … "end" block in a text/plain part: MIME says text, ${EXCHANGE}`,
    clean: [marker('uu-in-text-plain')],
    build: (p) => mixed('uu-in-text-plain', [textPart(marker('uu-in-text-plain')), crlf('Content-Type: text/plain; charset=us-ascii', '', around('uu-in-text-plain', uuencode(p.bytes, p.name)))]),
  },
  uuCte('uu-cte-x-uuencode', 'x-uuencode'),
  uuCte('uu-cte-x-uue', 'x-uue'),
  uuCte('uu-cte-uue', 'uue'),
  uuCte('uu-cte-uuencode', 'uuencode'),
  {
    id: 'uu-in-preamble',
    title: 'uuencoded block in the multipart preamble',
    trick: 'the preamble is to be ignored (RFC 2046 §5.1.1), so MIME walkers skip it; ClamAV mbox.c checks it for uuencode ("check if the file contains a uuencoded file") and so do text-sniffing clients',
    clean: [marker('uu-in-preamble')],
    build: (p) => mixed('uu-in-preamble', [textPart(marker('uu-in-preamble'))], { preamble: crlf('This is a multi-part message in MIME format.', '', uuencode(p.bytes, p.name), '') }),
  },
  {
    id: 'uu-in-epilogue',
    title: 'uuencoded block in the multipart epilogue',
    trick: 'data after the closing delimiter is the epilogue (RFC 2046 §5.1.1), ignored by MIME parsers, shown and decoded by clients that render it as trailing text',
    clean: [marker('uu-in-epilogue')],
    build: (p) => mixed('uu-in-epilogue', [textPart(marker('uu-in-epilogue'))], { epilogue: crlf('', uuencode(p.bytes, p.name), '') }),
  },
  {
    id: 'uu-in-non-mime-body',
    title: 'uuencoded block in a message without MIME',
    trick: `no MIME-Version and no Content-Type: the body is plain text to a MIME parser; pre-MIME style uuencoded attachments are still decoded by clients (${EXCHANGE})`,
    clean: [],
    build: (p) => message('uu-in-non-mime-body', [], around('uu-in-non-mime-body', uuencode(p.bytes, p.name)), { mimeVersion: false }),
  },
  {
    id: 'uu-in-text-html',
    title: 'uuencoded block inside a text/html part',
    trick: 'uuencode in an HTML part: only text/plain gets the "look for uuencode" treatment in many scanners, while a user can save the source and run uudecode',
    clean: [marker('uu-in-text-html')],
    build: (p) => mixed('uu-in-text-html', [textPart(marker('uu-in-text-html')), crlf('Content-Type: text/html; charset=us-ascii', '', '<html><body><pre>', uuencode(p.bytes, p.name), '</pre></body></html>')]),
  },
  {
    id: 'uu-space-zero-char',
    title: 'uuencode with spaces for zero and trailing spaces stripped',
    trick: 'historic uuencode uses " " for 0 (not "`"); mail transport strips trailing spaces, shortening lines: strict decoders reject the lines, lenient ones (Python uu workaround "for broken uuencoders by Fredrik Lundh") pad them',
    clean: [marker('uu-space-zero-char')],
    build: (p) =>
      mixed('uu-space-zero-char', [textPart(marker('uu-space-zero-char')), crlf(attHeaders(p, 'Content-Transfer-Encoding: x-uuencode'), '', uuencode(p.bytes, p.name, { zeroChar: ' ' }).split('\r\n').map((l) => l.replace(/ +$/, '')).join('\r\n'))]),
  },
  {
    id: 'uu-in-base64-text',
    title: 'uuencoded block inside a base64-encoded text/plain part',
    trick: 'two layers: base64 text whose decoded content carries a uuencoded block; scanners that look for "begin 644" in the raw part never see it',
    clean: [marker('uu-in-base64-text')],
    build: (p) => mixed('uu-in-base64-text', [textPart(marker('uu-in-base64-text')), crlf('Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: base64', '', b64(Buffer.from(around('uu-in-base64-text', uuencode(p.bytes, p.name)), 'latin1')))]),
  },
  {
    id: 'begin-base64-in-text',
    title: 'begin-base64 block inside a text/plain body',
    trick: 'POSIX "uuencode -m" output ("begin-base64 644 name" … "====") in a text part: a file for uudecode and for clients that decode inline blocks, text for MIME',
    clean: [marker('begin-base64-in-text')],
    build: (p) => mixed('begin-base64-in-text', [textPart(marker('begin-base64-in-text')), crlf('Content-Type: text/plain; charset=us-ascii', '', around('begin-base64-in-text', beginBase64(p)))]),
  },
  {
    id: 'begin-base64-in-epilogue',
    title: 'begin-base64 block in the multipart epilogue',
    trick: 'a begin-base64 block after the closing delimiter: ignored by MIME parsers (RFC 2046 epilogue), decoded by uudecode from the saved message',
    clean: [marker('begin-base64-in-epilogue')],
    build: (p) => mixed('begin-base64-in-epilogue', [textPart(marker('begin-base64-in-epilogue'))], { epilogue: crlf('', beginBase64(p), '') }),
  },
  {
    id: 'begin-base64-in-qp-text',
    title: 'begin-base64 block inside a quoted-printable text part, "=" encoded',
    trick: 'the block\'s "=" padding and "====" terminator are QP-encoded as "=3D": it only appears after QP decoding',
    clean: [marker('begin-base64-in-qp-text')],
    build: (p) => mixed('begin-base64-in-qp-text', [textPart(marker('begin-base64-in-qp-text')), crlf('Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: quoted-printable', '', around('begin-base64-in-qp-text', beginBase64(p)).replace(/=/g, '=3D'))]),
  },
  {
    id: 'yenc-cte-x-yencode',
    title: 'yEnc attachment with CTE x-yencode',
    trick: 'CTE "x-yencode": Thunderbird (ENCODING_YENCODE, MimeYDecoderInit) and ClamAV\'s encoding_map know it; an 8bit-looking body to everything else',
    clean: [marker('yenc-cte-x-yencode')],
    build: (p) => mixed('yenc-cte-x-yencode', [textPart(marker('yenc-cte-x-yencode')), crlf(attHeaders(p, 'Content-Transfer-Encoding: x-yencode'), '', yencode(p.bytes, p.name))]),
  },
  {
    id: 'yenc-in-non-mime-body',
    title: 'yEnc block ("=ybegin") in a message without MIME',
    trick: 'Thunderbird\'s MimeUntypedText opens a yEnc subpart at "=ybegin" in untyped text (as for "begin 644"); MIME parsers see text',
    clean: [],
    build: (p) => message('yenc-in-non-mime-body', [], around('yenc-in-non-mime-body', yencode(p.bytes, p.name)), { mimeVersion: false }),
  },
  {
    id: 'uu-in-text-single-part',
    title: 'single-part text/plain message whose body holds a uuencoded block',
    trick: `MIME single part text/plain (not multipart): a gateway that only splits attachments out of multiparts never looks inside (${EXCHANGE})`,
    clean: [],
    build: (p) => message('uu-in-text-single-part', ['Content-Type: text/plain; charset=us-ascii'], around('uu-in-text-single-part', uuencode(p.bytes, p.name))),
  },
];

