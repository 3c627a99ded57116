/**
 * A CMS signed-data ContentInfo (RFC 5652) around some content, as in an opaque-signed S/MIME
 * message (smime.p7m). No certificate and no signer: the signature cannot verify, which clients
 * show as a warning next to the content. Test input only.
 */

/** A DER length. */
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const der = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};

/** The same element with an indefinite length (BER, as Outlook writes S/MIME). */
const ber = (tag: number, ...content: Buffer[]): Buffer => Buffer.concat([Buffer.from([tag | 0x20, 0x80]), ...content, Buffer.from([0, 0])]);

const OID_SIGNED_DATA = Buffer.from('06092a864886f70d010702', 'hex');
const OID_DATA = Buffer.from('06092a864886f70d010701', 'hex');
const SHA256 = der(0x30, Buffer.from('0609608648016503040201', 'hex'), Buffer.from([0x05, 0x00]));

/** `form` 'ber': indefinite lengths and the content in a constructed OCTET STRING of two pieces. */
export function buildSignedData(content: Buffer, form: 'der' | 'ber' = 'der'): Buffer {
  const wrap = form === 'der' ? der : ber;
  const octets = form === 'der' ? der(0x04, content) : ber(0x24, der(0x04, content.subarray(0, 100)), der(0x04, content.subarray(100)));
  const encap = wrap(0x30, OID_DATA, wrap(0xa0, octets));
  const signedData = wrap(0x30, der(0x02, Buffer.from([1])), der(0x31, SHA256), encap, der(0x31));
  return wrap(0x30, OID_SIGNED_DATA, wrap(0xa0, signedData));
}
