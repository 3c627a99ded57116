/**
 * HTML smuggling: the file is inside the markup, and a browser (an .html attachment opened, a
 * webmail rendering the part) turns it back into a download. No MIME parser sees a part.
 */
import { b64, crlf, marker, mixed, textPart, type EvasionCase, type Payload } from '../build.js';

const MITRE = 'MITRE ATT&CK T1027.006 (HTML Smuggling): the payload is embedded in HTML as a data: URI or a base64 string a script turns into a Blob download';
const RFC2397 = 'RFC 2397 data: URLs; browsers strip tabs and newlines from URLs (WHATWG URL) and whitespace from base64 (forgiving-base64 decode), and take ";base64" in any case';

const dataUri = (p: Payload, marker = 'base64'): string => `data:application/octet-stream;${marker},${p.bytes.toString('base64')}`;
const percentEncoded = (bytes: Buffer): string => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
const link = (p: Payload, href: string): string => `<p><a href="${href}" download="${p.name}">Your invoice</a></p>`;

/** An HTML document around `inner`, with a clean marker line of its own. */
const page = (id: string, inner: string): string => crlf('<html><body>', `<p>${marker(id, 2)}</p>`, inner, '</body></html>');

/** A clean text part and an HTML part (7bit, or another CTE applied to `html` by `encode`). */
const htmlCase = (id: string, title: string, trick: string, html: (p: Payload) => string, headers: string[] = ['Content-Type: text/html; charset=us-ascii', 'Content-Transfer-Encoding: 7bit']): EvasionCase => ({
  id,
  title,
  trick,
  clean: [marker(id)],
  build: (p) => mixed(id, [textPart(marker(id)), crlf(...headers, '', html(p))]),
});

/** An .html (or .svg) file attached in base64: opened in the browser from the mail client. */
const attachedPage = (id: string, title: string, trick: string, name: string, type: string, html: (p: Payload) => string): EvasionCase => ({
  id,
  title,
  trick,
  clean: [marker(id)],
  build: (p) => mixed(id, [textPart(marker(id)), crlf(`Content-Type: ${type}; name="${name}"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${name}"`, '', b64(Buffer.from(html(p), 'latin1')))]),
});

export const htmlSmugglingCases: EvasionCase[] = [
  htmlCase('data-uri-in-html-part', 'base64 data: URI in a link of a text/html part', `${MITRE}; the line is markup, not a line of base64`, (p) => page('data-uri-in-html-part', link(p, dataUri(p)))),
  htmlCase('data-uri-marker-uppercase', 'data: URI with ";BASE64," in capitals', `${RFC2397}`, (p) => page('data-uri-marker-uppercase', link(p, dataUri(p, 'BASE64')))),
  htmlCase('data-uri-wrapped-over-lines', 'data: URI wrapped over several lines inside the attribute', `${RFC2397}: the URI still decodes after the browser drops the line breaks`, (p) =>
    page('data-uri-wrapped-over-lines', `<p><a download="${p.name}" href="data:application/octet-stream;base64,${b64(p.bytes, 60).replace(/\r\n/g, '\r\n    ')}">Your invoice</a></p>`)),
  htmlCase('data-uri-percent-encoded', 'data: URI with every byte percent-encoded (no base64)', `${RFC2397}: without ";base64" the data is percent-encoded octets`, (p) => page('data-uri-percent-encoded', link(p, `data:application/octet-stream,${percentEncoded(p.bytes)}`))),
  htmlCase('atob-string-in-script', 'base64 string literal handed to atob() by a script', `${MITRE}: new Blob([Uint8Array.from(atob(s), …)]) then a.click()`, (p) =>
    page('atob-string-in-script', crlf('<script>', `const s = "${p.bytes.toString('base64')}";`, 'const b = new Blob([Uint8Array.from(atob(s), (c) => c.charCodeAt(0))]);', '</script>'))),
  htmlCase('data-uri-in-qp-html', 'data: URI in a quoted-printable HTML part, soft breaks inside it', `${MITRE}; quoted-printable soft line breaks cut the URI where a line-based look sees no base64`, (p) => {
    const html = page('data-uri-in-qp-html', link(p, dataUri(p))).replace(/=/g, '=3D');
    return html.replace(/([^\r\n]{70})/g, '$1=\r\n');
  }, ['Content-Type: text/html; charset=us-ascii', 'Content-Transfer-Encoding: quoted-printable']),
  attachedPage('html-attachment-data-uri', '.html attachment (base64) with a data: URI download link', `${MITRE}: the attachment is a harmless-looking page, the file is inside it`, 'invoice.html', 'text/html', (p) => page('html-attachment-data-uri', link(p, dataUri(p)))),
  attachedPage('html-attachment-atob', '.html attachment (base64) whose script rebuilds the file with atob()', MITRE, 'invoice.htm', 'text/html', (p) =>
    page('html-attachment-atob', crlf('<script>', `var d = '${p.bytes.toString('base64')}';`, 'var u = URL.createObjectURL(new Blob([Uint8Array.from(atob(d), function (c) { return c.charCodeAt(0); })]));', '</script>'))),
  attachedPage('svg-attachment-data-uri', 'SVG image attachment with a data: URI link', `${MITRE}; SVG opens in the browser and may hold links and scripts`, 'scan.svg', 'image/svg+xml', (p) =>
    crlf('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">', `<a xlink:href="${dataUri(p)}"><text y="20">open</text></a>`, '</svg>')),
];
