/**
 * Small builders for hand-made evasion messages: every case writes its own bytes (the point is
 * the malformation), these only take the tedium out of headers and encodings.
 */
import { createHash } from 'node:crypto';
import { EICAR, buildZip } from '@mailwarden/testkit';

/** What a case hides: a file name and its bytes. */
export interface Payload {
  name: string;
  bytes: Buffer;
}

export type Expect = 'delivered' | 'rejected-or-delivered';

export interface EvasionCase {
  /** kebab-case, unique; also the corpus file name. */
  id: string;
  title: string;
  /** One line: which parser disagreement the case exploits, with a reference where there is one. */
  trick: string;
  /** The complete message (CRLF line endings) hiding `payload` behind the trick. */
  build(payload: Payload): Buffer;
  /** Markers of clean text parts that must still be readable after delivery. */
  clean: string[];
  /** Default 'delivered'; 'rejected-or-delivered' only for genuinely malformed messages. */
  expect?: Expect;
  /** The trick only works for a printable payload (raw 8bit in a text part): skip binary payloads. */
  textOnly?: boolean;
}

export const EICAR_PAYLOAD: Payload = { name: 'eicar.com', bytes: EICAR };
/** EICAR inside an ordinary deflated zip: a binary payload (clamd detects it inside the zip). */
export const EICAR_ZIP_PAYLOAD: Payload = { name: 'invoice.zip', bytes: buildZip([{ name: 'eicar.com', data: EICAR }]) };
export const DEFAULT_PAYLOADS: readonly Payload[] = [EICAR_PAYLOAD, EICAR_ZIP_PAYLOAD];

/** A marker for a clean text part: `CLEAN-MARKER-<id>-<n>`. */
export const marker = (id: string, n = 1): string => `CLEAN-MARKER-${id}-${n}`;

/** Joins lines with CRLF (no trailing CRLF). */
export const crlf = (...lines: (string | string[])[]): string => lines.flat().join('\r\n');

/** Standard RFC 5322 headers every case starts with (deterministic per id). */
export function stdHeaders(id: string, subject = `evasion ${id}`): string[] {
  const hash = createHash('sha1').update(id).digest('hex').slice(0, 16);
  return [
    'From: Sender <sender@example.org>',
    'To: Recipient <recipient@example.test>',
    `Subject: ${subject}`,
    'Date: Fri, 27 Nov 2026 10:00:00 +0000',
    `Message-ID: <${hash}.${id}@example.org>`,
  ];
}

/**
 * A whole message: the standard headers, then `headers`, a blank line and `body`. Strings are
 * latin1 (so 8bit bytes survive) and `body` lines are expected to use CRLF already.
 */
export function message(id: string, headers: string[], body: string | Buffer, opts: { mimeVersion?: boolean } = {}): Buffer {
  const head = [...stdHeaders(id), ...(opts.mimeVersion === false ? [] : ['MIME-Version: 1.0']), ...headers].join('\r\n');
  const tail = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const end = tail.subarray(-2).toString('latin1') === '\r\n' ? Buffer.alloc(0) : Buffer.from('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), tail, end]);
}

/** base64 lines of `width` characters (CRLF-joined, no trailing CRLF). */
export function b64(bytes: Buffer, width = 76): string {
  const s = bytes.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < s.length; i += width) out.push(s.slice(i, i + width));
  return out.join('\r\n');
}

/** A clean text/plain part (headers + body) carrying `text`. */
export const textPart = (text: string, extra: string[] = []): string =>
  crlf('Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', ...extra, '', `${text} - nothing to see here.`);

/** An ordinary base64 attachment part for `payload` (headers + body). */
export const attachmentPart = (p: Payload, cte = 'Content-Transfer-Encoding: base64', body = b64(p.bytes)): string =>
  crlf(`Content-Type: application/octet-stream; name="${p.name}"`, cte, `Content-Disposition: attachment; filename="${p.name}"`, '', body);

/** A multipart body: preamble, `--boundary` + each part, the closing delimiter, an epilogue. */
export function multipart(boundary: string, parts: string[], opts: { preamble?: string; epilogue?: string; close?: boolean } = {}): string {
  const out: string[] = [opts.preamble ?? 'This is a multi-part message in MIME format.'];
  for (const p of parts) out.push(`--${boundary}`, p);
  if (opts.close !== false) out.push(`--${boundary}--`);
  if (opts.epilogue !== undefined) out.push(opts.epilogue);
  return crlf(out);
}

/** uuencode(1) body: `begin <mode> <name>` … backtick line, `end` (CRLF-joined). */
export function uuencode(bytes: Buffer, name: string, opts: { mode?: string; zeroChar?: string } = {}): string {
  const enc = (n: number) => (n === 0 ? (opts.zeroChar ?? '`') : String.fromCharCode(n + 32));
  const lines = [`begin ${opts.mode ?? '644'} ${name}`];
  for (let i = 0; i < bytes.length; i += 45) {
    const chunk = bytes.subarray(i, i + 45);
    let line = enc(chunk.length);
    for (let j = 0; j < chunk.length; j += 3) {
      const a = chunk[j] ?? 0;
      const b = chunk[j + 1] ?? 0;
      const c = chunk[j + 2] ?? 0;
      line += enc(a >> 2) + enc(((a & 3) << 4) | (b >> 4)) + enc(((b & 15) << 2) | (c >> 6)) + enc(c & 63);
    }
    lines.push(line);
  }
  lines.push(enc(0), 'end');
  return crlf(lines);
}

/** Quoted-printable with every byte encoded (`=XX`), soft line breaks after `perLine` bytes. */
export function qpAll(bytes: Buffer, opts: { perLine?: number; lower?: boolean; softBreak?: string } = {}): string {
  const perLine = opts.perLine ?? 20;
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += perLine) {
    let s = '';
    for (const b of bytes.subarray(i, i + perLine)) s += `=${b.toString(16).padStart(2, '0')}`;
    lines.push(opts.lower ? s : s.toUpperCase());
  }
  return lines.join(`${opts.softBreak ?? '='}\r\n`);
}

/** yEnc (yEnc 1.3 single part): `=ybegin` … `=yend` (CRLF-joined; 8bit, latin1 string). */
export function yencode(bytes: Buffer, name: string): string {
  const lines: string[] = [`=ybegin line=128 size=${bytes.length} name=${name}`];
  let line = '';
  for (const b of bytes) {
    const v = (b + 42) & 0xff;
    if (v === 0 || v === 0x0a || v === 0x0d || v === 0x3d || v === 0x09 || v === 0x20 || (v === 0x2e && line.length === 0)) {
      line += `=${String.fromCharCode((v + 64) & 0xff)}`;
    } else line += String.fromCharCode(v);
    if (line.length >= 128) {
      lines.push(line);
      line = '';
    }
  }
  if (line) lines.push(line);
  lines.push(`=yend size=${bytes.length}`);
  return crlf(lines);
}

export const BOUNDARY = 'mw-evasion-boundary-1';

/** A multipart/mixed message with `parts` (clean parts first, as mail clients write them). */
export function mixed(id: string, parts: string[], opts: { boundary?: string; contentType?: string; preamble?: string; epilogue?: string; close?: boolean } = {}): Buffer {
  const boundary = opts.boundary ?? BOUNDARY;
  return message(id, [opts.contentType ?? `Content-Type: multipart/mixed; boundary="${boundary}"`], multipart(boundary, parts, opts));
}

/** A clean text part followed by one part with `headers` and `body`: the usual shape of a case. */
export const textAndPart = (id: string, headers: string[], body: string, opts: Parameters<typeof mixed>[2] = {}): Buffer =>
  mixed(id, [textPart(marker(id)), crlf(...headers, '', body)], opts);

/** The usual attachment headers for `p` with `cte` as the transfer encoding header line(s). */
export const attHeaders = (p: Payload, ...cte: string[]): string[] => [
  `Content-Type: application/octet-stream; name="${p.name}"`,
  ...cte,
  `Content-Disposition: attachment; filename="${p.name}"`,
];
