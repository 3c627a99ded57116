/**
 * The content of an opaque-signed S/MIME message (RFC 8551 `application/pkcs7-mime;
 * smime-type=signed-data`, "smime.p7m"): the whole inner MIME entity sits inside a DER/BER
 * structure. Mail clients unwrap it and show the inner message and its attachments whether or not
 * the signature verifies, so the scanner unwraps it too. Only the path to the encapsulated content
 * is walked (RFC 5652 §5.1); nothing is verified.
 */

interface Tlv {
  tag: number;
  /** Content bytes: [start, end). */
  start: number;
  end: number;
  /** Just after the element (after the end-of-contents octets of an indefinite length). */
  next: number;
}

/** Nesting a BER walk follows before giving up (constructed strings inside constructed strings). */
const MAX_DEPTH = 16;

const OID_SIGNED_DATA = Buffer.from('06092a864886f70d010702', 'hex');

/** The encapsulated content of a CMS signed-data, or undefined when `der` is not one (or holds none). */
export function signedDataContent(der: Buffer): Buffer | undefined {
  if (der.length < 16 || der[0] !== 0x30 || !der.subarray(0, 64).includes(OID_SIGNED_DATA)) return undefined;
  try {
    const info = children(der, tlv(der, 0, 0), 0);
    if (info[0]?.tag !== 0x06 || !der.subarray(info[0].start - 2, info[0].end).equals(OID_SIGNED_DATA) || info[1]?.tag !== 0xa0) return undefined;
    const signedData = children(der, info[1], 0)[0];
    if (signedData?.tag !== 0x30) return undefined;
    // version, digestAlgorithms, encapContentInfo, …
    const encap = children(der, signedData, 0)[2];
    if (encap?.tag !== 0x30) return undefined;
    const [, explicit] = children(der, encap, 0);
    if (explicit?.tag !== 0xa0) return undefined;
    const octets = children(der, explicit, 0)[0];
    return octets ? octetString(der, octets, 0) : undefined;
  } catch {
    return undefined;
  }
}

/** One element at `pos`. Throws on anything malformed. */
function tlv(buf: Buffer, pos: number, depth: number): Tlv {
  if (depth > MAX_DEPTH) throw new Error('too deep');
  const tag = byte(buf, pos);
  if ((tag & 0x1f) === 0x1f) throw new Error('high tag numbers are not used on this path');
  const first = byte(buf, pos + 1);
  if (first === 0x80) {
    if (!(tag & 0x20)) throw new Error('indefinite length on a primitive');
    const start = pos + 2;
    let at = start;
    while (!(byte(buf, at) === 0 && byte(buf, at + 1) === 0)) at = tlv(buf, at, depth + 1).next;
    return { tag, start, end: at, next: at + 2 };
  }
  let length = first;
  let start = pos + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n > 4) throw new Error('length too long');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + byte(buf, pos + 2 + i);
    start += n;
  }
  if (start + length > buf.length) throw new Error('element past the end');
  return { tag, start, end: start + length, next: start + length };
}

function children(buf: Buffer, parent: Tlv, depth: number): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = tlv(buf, at, depth + 1);
    out.push(child);
    at = child.next;
  }
  return out;
}

/** An OCTET STRING's bytes: primitive, or constructed from pieces (BER, as Outlook writes it). */
function octetString(buf: Buffer, t: Tlv, depth: number): Buffer {
  if (t.tag === 0x04) return buf.subarray(t.start, t.end);
  if (t.tag !== 0x24) throw new Error('not an OCTET STRING');
  return Buffer.concat(children(buf, t, depth).map((c) => octetString(buf, c, depth + 1)));
}

function byte(buf: Buffer, pos: number): number {
  const b = buf[pos];
  if (b === undefined) throw new Error('truncated');
  return b;
}
