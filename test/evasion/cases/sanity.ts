/** Ordinary infected mail, no trick: the gateway must already handle these (controls for the harness). */
import { buildZip } from '@mailwarden/testkit';
import { attachmentPart, b64, crlf, marker, mixed, multipart, qpAll, stdHeaders, textPart, type EvasionCase } from '../build.js';

const CONTROL = 'control: no evasion, an ordinary infected message as a mail client writes it';

export const sanityCases: EvasionCase[] = [
  {
    id: 'sanity-base64-attachment',
    title: 'ordinary multipart/mixed with a base64 attachment',
    trick: CONTROL,
    clean: [marker('sanity-base64-attachment')],
    build: (p) => mixed('sanity-base64-attachment', [textPart(marker('sanity-base64-attachment')), attachmentPart(p)]),
  },
  {
    id: 'sanity-zip-attachment',
    title: 'ordinary zip attachment holding the payload',
    trick: `${CONTROL} (zip; clamd unpacks it)`,
    clean: [marker('sanity-zip-attachment')],
    build: (p) => mixed('sanity-zip-attachment', [textPart(marker('sanity-zip-attachment')), attachmentPart({ name: 'invoice.zip', bytes: buildZipOf(p.name, p.bytes) })]),
  },
  {
    id: 'sanity-quoted-printable-attachment',
    title: 'attachment encoded in quoted-printable',
    trick: `${CONTROL} (quoted-printable, well formed)`,
    clean: [marker('sanity-quoted-printable-attachment')],
    build: (p) => mixed('sanity-quoted-printable-attachment', [textPart(marker('sanity-quoted-printable-attachment')), attachmentPart(p, 'Content-Transfer-Encoding: quoted-printable', qpAll(p.bytes))]),
  },
  {
    id: 'sanity-alternative-plus-attachment',
    title: 'multipart/mixed with multipart/alternative text and an attachment',
    trick: `${CONTROL} (the usual HTML mail shape)`,
    clean: [marker('sanity-alternative-plus-attachment', 1), marker('sanity-alternative-plus-attachment', 2)],
    build: (p) =>
      mixed('sanity-alternative-plus-attachment', [
        crlf('Content-Type: multipart/alternative; boundary="mw-alt"', '', multipart('mw-alt', [textPart(marker('sanity-alternative-plus-attachment', 1)), crlf('Content-Type: text/html; charset=us-ascii', '', `<p>${marker('sanity-alternative-plus-attachment', 2)}</p>`)])),
        attachmentPart(p),
      ]),
  },
  {
    id: 'sanity-forwarded-message',
    title: 'a forwarded message (message/rfc822, one level) with the attachment',
    trick: `${CONTROL} (forward as attachment)`,
    clean: [marker('sanity-forwarded-message', 1), marker('sanity-forwarded-message', 2)],
    build: (p) => {
      const inner = crlf(stdHeaders('sanity-inner'), 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="mw-inner"', '', multipart('mw-inner', [textPart(marker('sanity-forwarded-message', 2)), attachmentPart(p)]));
      return mixed('sanity-forwarded-message', [textPart(marker('sanity-forwarded-message', 1)), crlf('Content-Type: message/rfc822', '', inner)]);
    },
  },
  {
    id: 'sanity-two-attachments',
    title: 'one clean and one infected attachment',
    trick: `${CONTROL} (only the infected attachment may go)`,
    clean: [marker('sanity-two-attachments', 1), marker('sanity-two-attachments', 2)],
    build: (p) =>
      mixed('sanity-two-attachments', [
        textPart(marker('sanity-two-attachments', 1)),
        crlf('Content-Type: text/plain; name="notes.txt"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="notes.txt"', '', b64(Buffer.from(`${marker('sanity-two-attachments', 2)}\r\n`))),
        attachmentPart(p),
      ]),
  },
];

function buildZipOf(name: string, data: Buffer): Buffer {
  return buildZip([{ name, data }]);
}
