/** Header-level structure tricks: duplicate Content-Type, missing MIME, single-part attachments, names. */
import { attachmentPart, b64, crlf, marker, message, mixed, multipart, textPart, type EvasionCase } from '../build.js';

export const structureCases: EvasionCase[] = [
  {
    id: 'ct-duplicate-text-first',
    title: 'two Content-Type headers: text/plain first, multipart second',
    trick: 'duplicate Content-Type (F-Secure Gatekeeper "malformed messages"; Heyes 2024): first-wins parsers see one text body, last-wins clients see the parts',
    clean: [marker('ct-duplicate-text-first')],
    build: (p) =>
      message('ct-duplicate-text-first', ['Content-Type: text/plain; charset=us-ascii', 'Content-Type: multipart/mixed; boundary="mw-b1"'], multipart('mw-b1', [textPart(marker('ct-duplicate-text-first')), attachmentPart(p)])),
    expect: 'rejected-or-delivered',
  },
  {
    id: 'ct-duplicate-multipart-first',
    title: 'two Content-Type headers: multipart first, text/plain second',
    trick: 'duplicate Content-Type in the other order: last-wins parsers see text, first-wins clients (Python compat32 get() returns the first) see the parts',
    clean: [marker('ct-duplicate-multipart-first')],
    build: (p) =>
      message('ct-duplicate-multipart-first', ['Content-Type: multipart/mixed; boundary="mw-b1"', 'Content-Type: text/plain; charset=us-ascii'], multipart('mw-b1', [textPart(marker('ct-duplicate-multipart-first')), attachmentPart(p)])),
    expect: 'rejected-or-delivered',
  },
  {
    id: 'ct-duplicate-on-part',
    title: 'a part with two Content-Type headers: text/plain, then application/octet-stream',
    trick: 'duplicate Content-Type on a leaf: one parser treats the base64 body as a text part (and may not decode or scan it as a file), another as the attachment',
    clean: [marker('ct-duplicate-on-part')],
    build: (p) =>
      mixed('ct-duplicate-on-part', [textPart(marker('ct-duplicate-on-part')), crlf('Content-Type: text/plain', `Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64', '', b64(p.bytes))]),
    expect: 'rejected-or-delivered',
  },
  {
    id: 'ct-name-space-before-colon',
    title: 'root header "Content-Type :" (space before the colon)',
    trick: 'obsolete field syntax (RFC 5322 §4.5.3) on the root Content-Type: strict parsers drop it (text/plain), lenient ones keep multipart',
    clean: [marker('ct-name-space-before-colon')],
    build: (p) => message('ct-name-space-before-colon', ['Content-Type : multipart/mixed; boundary="mw-b1"'], multipart('mw-b1', [textPart(marker('ct-name-space-before-colon')), attachmentPart(p)])),
    expect: 'rejected-or-delivered',
  },
  {
    id: 'mime-version-missing',
    title: 'multipart message without MIME-Version',
    trick: 'RFC 2045 §4: without MIME-Version a strict parser may treat the body as plain RFC 822 text; every client still parses the multipart',
    clean: [marker('mime-version-missing')],
    build: (p) => message('mime-version-missing', ['Content-Type: multipart/mixed; boundary="mw-b1"'], multipart('mw-b1', [textPart(marker('mime-version-missing')), attachmentPart(p)]), { mimeVersion: false }),
  },
  {
    id: 'part-header-whitespace-separator',
    title: 'part headers ended by a whitespace-only line',
    trick: 'a line of spaces between the part headers and the body: a continuation line for RFC 5322 parsers (so the base64 looks like broken headers), an empty line for lenient ones',
    clean: [marker('part-header-whitespace-separator')],
    build: (p) =>
      mixed('part-header-whitespace-separator', [textPart(marker('part-header-whitespace-separator')), crlf(`Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64', '   ', b64(p.bytes))]),
    expect: 'rejected-or-delivered',
  },
  {
    id: 'part-without-headers-base64',
    title: 'a part with no headers at all whose body is base64',
    trick: 'a headerless part is text/plain 7bit (RFC 2046 §5.1.1); the body is base64 that any "save and decode" or sniffing client turns into the file',
    clean: [marker('part-without-headers-base64')],
    build: (p) => mixed('part-without-headers-base64', [textPart(marker('part-without-headers-base64')), crlf('', b64(p.bytes))]),
  },
  {
    id: 'single-part-whole-body',
    title: 'single-part message whose whole body is the base64 attachment',
    trick: 'no multipart at all: the root is application/octet-stream with a name; gateways that only scan parts inside multiparts let it through',
    clean: [],
    build: (p) =>
      message('single-part-whole-body', [`Content-Type: application/octet-stream; name="${p.name}"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${p.name}"`], b64(p.bytes)),
  },
  {
    id: 'root-disposition-attachment-text',
    title: 'root Content-Disposition: attachment on a text/plain base64 body',
    trick: 'the root "text/plain" is displayed as an attachment because of its disposition; text bodies are often not treated as files by scanners',
    clean: [],
    build: (p) => message('root-disposition-attachment-text', ['Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${p.name}"`], b64(p.bytes)),
  },
  {
    id: 'attachment-as-inline-text',
    title: 'the file as an inline text/plain part, raw 8bit',
    trick: 'the payload is the text of an inline text/plain part (no encoding at all): scanners that only look at attachments (disposition or name) skip body text',
    clean: [marker('attachment-as-inline-text')],
    textOnly: true,
    build: (p) => mixed('attachment-as-inline-text', [textPart(marker('attachment-as-inline-text')), crlf('Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', 'Content-Disposition: inline', '', p.bytes.toString('latin1'))]),
  },
  {
    id: 'filename-rfc2231-percent',
    title: "file name as RFC 2231 filename*=utf-8''%65icar.com",
    trick: 'RFC 2231 extended parameter with percent-encoding: name-based rules ("*.com") see "%65icar.com" or nothing, the client shows eicar.com (Heyes 2024, RFC 2231 in parameters)',
    clean: [marker('filename-rfc2231-percent')],
    build: (p) =>
      mixed('filename-rfc2231-percent', [
        textPart(marker('filename-rfc2231-percent')),
        crlf(`Content-Type: application/octet-stream; name*=utf-8''${encodeURIComponent(p.name).replace(/^./, (c) => `%${c.charCodeAt(0).toString(16)}`)}`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename*=utf-8''${encodeURIComponent(p.name).replace(/^./, (c) => `%${c.charCodeAt(0).toString(16)}`)}`, '', b64(p.bytes)),
      ]),
  },
  {
    id: 'filename-rfc2231-continuation',
    title: 'file name split with RFC 2231 continuations',
    trick: 'filename*0= / filename*1*= continuations (RFC 2231 §3): parsers without continuation support see no name and may treat the part as inline body text',
    clean: [marker('filename-rfc2231-continuation')],
    build: (p) =>
      mixed('filename-rfc2231-continuation', [
        textPart(marker('filename-rfc2231-continuation')),
        crlf('Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename*0="${p.name.slice(0, 3)}"; filename*1*=us-ascii''${p.name.slice(3)}`, '', b64(p.bytes)),
      ]),
  },
  {
    id: 'filename-rfc2047',
    title: 'file name as an RFC 2047 encoded word',
    trick: 'an encoded word inside a quoted parameter (forbidden by RFC 2047 §5, decoded by Outlook, Thunderbird and Python\'s default policy, see bugs.python.org msg180108): names differ between parsers',
    clean: [marker('filename-rfc2047')],
    build: (p) => {
      const ew = `=?utf-8?B?${Buffer.from(p.name).toString('base64')}?=`;
      return mixed('filename-rfc2047', [textPart(marker('filename-rfc2047')), crlf(`Content-Type: application/octet-stream; name="${ew}"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${ew}"`, '', b64(p.bytes))]);
    },
  },
];
