/**
 * S/MIME: an opaque-signed message carries the whole inner MIME entity inside a CMS structure
 * (binary DER/BER in a base64 part). Clients unwrap it and show the inner attachments, also when
 * the signature does not verify (they show a warning, and the attachment).
 */
import { buildSignedData } from '@mailwarden/testkit';
import { attachmentPart, b64, crlf, marker, message, textPart, type EvasionCase, type Payload } from '../build.js';

const RFC8551 = 'RFC 8551 §3.5.3 opaque signing (application/pkcs7-mime; smime-type=signed-data, smime.p7m): the inner entity is in the CMS eContent, invisible to a MIME walker';

/** The inner entity: a multipart with a clean text and the payload as an ordinary attachment. */
const inner = (id: string, p: Payload): Buffer =>
  Buffer.from(crlf('Content-Type: multipart/mixed; boundary="inner"', '', '--inner', textPart(marker(id, 2)), '--inner', attachmentPart(p), '--inner--', ''), 'latin1');

const opaque = (id: string, form: 'der' | 'ber'): EvasionCase => ({
  id,
  title: `opaque-signed S/MIME (${form.toUpperCase()}) with the payload attached inside`,
  trick: `${RFC8551}${form === 'ber' ? '; indefinite lengths and a chunked OCTET STRING, as Outlook writes it' : ''}`,
  clean: [],
  build: (p) =>
    message(id, ['Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="smime.p7m"'], b64(buildSignedData(inner(id, p), form))),
});

export const smimeCases: EvasionCase[] = [opaque('smime-opaque-signed-der', 'der'), opaque('smime-opaque-signed-ber', 'ber')];
