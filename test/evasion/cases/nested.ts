/** Attached messages: message/rfc822 at depth, encoded, disguised, and multipart/digest defaults. */
import { attachmentPart, b64, crlf, marker, message, mixed, multipart, stdHeaders, textPart, type EvasionCase, type Payload } from '../build.js';

/** An inner message (headers + body) as a string, to be embedded in a message/rfc822 part. */
function innerMessage(tag: string, headers: string[], body: string): string {
  return crlf(stdHeaders(`inner-${tag}`, `forwarded ${tag}`), 'MIME-Version: 1.0', headers, '', body);
}

/** multipart/mixed inner message: a clean text part and `last` (a part: headers + body). */
const innerMixed = (tag: string, text: string, last: string): string =>
  innerMessage(tag, [`Content-Type: multipart/mixed; boundary="mw-${tag}"`], multipart(`mw-${tag}`, [textPart(text), last]));

const rfc822Part = (body: string, extra: string[] = []): string => crlf('Content-Type: message/rfc822', 'Content-Disposition: attachment; filename="forwarded.eml"', ...extra, '', body);

/** `depth` levels of message/rfc822, each level with a clean text part; the attachment at the bottom. */
function nest(id: string, depth: number, p: Payload): Buffer {
  let part = attachmentPart(p);
  for (let level = depth; level >= 1; level--) part = rfc822Part(innerMixed(`${id}-l${level}`, marker(id, level + 1), part));
  return mixed(id, [textPart(marker(id, 1)), part]);
}

const markers = (id: string, n: number): string[] => Array.from({ length: n }, (_, i) => marker(id, i + 1));

export const nestedCases: EvasionCase[] = [
  {
    id: 'rfc822-three-deep',
    title: 'payload three message/rfc822 levels deep, clean text at every level',
    trick: 'forwarded-as-attachment three times: depth limits and recursion bugs in MIME walkers (ClamAV MaxRecursion, gateways that stop at one level); only the leaf may go, every level\'s text must stay',
    clean: markers('rfc822-three-deep', 4),
    build: (p) => nest('rfc822-three-deep', 3, p),
  },
  {
    id: 'rfc822-six-deep',
    title: 'payload six message/rfc822 levels deep',
    trick: 'deeper than the usual recursion limits of MIME walkers; each level is an ordinary forward, so a client opens them one by one',
    clean: markers('rfc822-six-deep', 7),
    build: (p) => nest('rfc822-six-deep', 6, p),
  },
  {
    id: 'rfc822-base64-encoded',
    title: 'message/rfc822 part encoded in base64',
    trick: 'RFC 2046 §5.2.1 forbids base64 on message/rfc822; Python parses the base64 text as the inner message, clients decode it first and find the attachment inside',
    clean: [marker('rfc822-base64-encoded')],
    build: (p) => {
      const inner = innerMixed('rfc822-base64-encoded-l1', 'inner text', attachmentPart(p));
      return mixed('rfc822-base64-encoded', [textPart(marker('rfc822-base64-encoded')), rfc822Part(b64(Buffer.from(inner, 'latin1')), ['Content-Transfer-Encoding: base64'])]);
    },
  },
  {
    id: 'rfc822-quoted-printable',
    title: 'message/rfc822 part encoded in quoted-printable',
    trick: 'QP on message/rfc822 (forbidden, RFC 2046 §5.2.1): the inner boundary and headers are "=3D"-escaped, so the inner structure only exists after QP decoding',
    clean: [marker('rfc822-quoted-printable')],
    build: (p) => {
      const inner = innerMixed('rfc822-quoted-printable-l1', 'inner text', attachmentPart(p)).replace(/=/g, '=3D').replace(/Content-/g, 'Content=2D');
      return mixed('rfc822-quoted-printable', [textPart(marker('rfc822-quoted-printable')), rfc822Part(inner, ['Content-Transfer-Encoding: quoted-printable'])]);
    },
  },
  {
    id: 'rfc822-inner-single-part',
    title: 'attached message that is itself a single-part base64 file',
    trick: 'the inner message has no multipart: its root body is the attachment (application/octet-stream, base64), found only by a walker that treats an inner root as a leaf',
    clean: [marker('rfc822-inner-single-part')],
    build: (p) => {
      const inner = innerMessage('rfc822-inner-single-part', [`Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${p.name}"`], b64(p.bytes));
      return mixed('rfc822-inner-single-part', [textPart(marker('rfc822-inner-single-part')), rfc822Part(inner)]);
    },
  },
  {
    id: 'rfc822-as-octet-stream-eml',
    title: 'a whole message attached as application/octet-stream "forward.eml"',
    trick: 'the attached message is opaque base64 (not message/rfc822): the scanner sees an .eml file whose attachment is base64 inside base64; the client opens the .eml and the attachment',
    clean: [marker('rfc822-as-octet-stream-eml')],
    build: (p) => {
      const inner = innerMixed('rfc822-as-octet-stream-eml-l1', 'inner text', attachmentPart(p));
      return mixed('rfc822-as-octet-stream-eml', [textPart(marker('rfc822-as-octet-stream-eml')), crlf('Content-Type: application/octet-stream; name="forward.eml"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="forward.eml"', '', b64(Buffer.from(inner, 'latin1')))]);
    },
  },
  {
    id: 'rfc822-in-digest-default-type',
    title: 'multipart/digest part without Content-Type (defaults to message/rfc822)',
    trick: 'RFC 2046 §5.1.5: in multipart/digest a part without Content-Type is message/rfc822, not text/plain; parsers that apply the text/plain default never look inside',
    clean: [],
    build: (p) => {
      const inner = innerMixed('rfc822-in-digest-l1', 'inner text', attachmentPart(p));
      return message('rfc822-in-digest-default-type', ['Content-Type: multipart/digest; boundary="mw-digest"'], multipart('mw-digest', [crlf('', inner)]));
    },
  },
  {
    id: 'rfc822-headers-only-text-plain',
    title: 'attached message declared text/plain',
    trick: 'a forwarded message labelled text/plain (not message/rfc822): to MIME a text part, to the user an .eml that opens with its attachment',
    clean: [marker('rfc822-headers-only-text-plain')],
    build: (p) => {
      const inner = innerMixed('rfc822-headers-only-text-plain-l1', 'inner text', attachmentPart(p));
      return mixed('rfc822-headers-only-text-plain', [textPart(marker('rfc822-headers-only-text-plain')), crlf('Content-Type: text/plain; name="forward.eml"', 'Content-Disposition: attachment; filename="forward.eml"', '', inner)]);
    },
  },
];
