import { Readable } from 'node:stream';

/** The EICAR test string, assembled so that this file itself is not flagged by scanners. */
export const EICAR = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'].join('');

/** Turns LF (and CRLF) line endings into CRLF. */
export function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** A MIME entity: header lines, empty line, body (CRLF). */
export function entity(headers: string[], body: string | Buffer = ''): Buffer {
  return Buffer.concat([Buffer.from(headers.map((h) => `${h}\r\n`).join('') + '\r\n'), typeof body === 'string' ? Buffer.from(body) : body]);
}

/** A multipart body: each part between delimiters, then the close delimiter. */
export function multipartBody(boundary: string, parts: Buffer[], preamble = ''): Buffer {
  const chunks: Buffer[] = [Buffer.from(preamble)];
  for (const part of parts) chunks.push(Buffer.from(`--${boundary}\r\n`), part, Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** A base64 body wrapped at 76 columns. */
export function base64Body(data: string | Buffer): string {
  return crlf(
    Buffer.from(data)
      .toString('base64')
      .replace(/.{76}/g, '$&\n')
      .replace(/\n?$/, '\n'),
  );
}

/** multipart/mixed: a text body and a base64 EICAR attachment. */
export function eicarMessage(subject = 'Test message'): { message: Buffer; text: Buffer } {
  const text = entity(['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit'], crlf('Hello,\n\nsee attached.\n'));
  const attachment = entity(
    ['Content-Type: application/octet-stream; name="eicar.com"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="eicar.com"'],
    base64Body(EICAR),
  );
  const message = entity(
    ['From: Sender <sender@example.com>', 'To: rcpt@example.net', `Subject: ${subject}`, 'Date: Mon, 1 Jan 2024 00:00:00 +0000', 'Message-ID: <1@example.com>', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="outer"'],
    multipartBody('outer', [text, attachment], 'This is a multi-part message in MIME format.\r\n'),
  );
  return { message, text };
}

/** A stream giving `data` in chunks of `size` bytes (all at once if omitted). */
export function source(data: Buffer | string, size?: number): Readable {
  const buf = Buffer.from(data);
  if (!size) return Readable.from([buf]);
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return Readable.from(chunks);
}

/** Reads a stream to its end. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}
