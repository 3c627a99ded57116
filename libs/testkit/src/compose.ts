import { randomBytes } from 'node:crypto';

export interface Attachment {
  filename: string;
  contentType?: string;
  data: Buffer;
  /** base64 (default) or a raw 7bit body (for message/rfc822). */
  encoding?: 'base64' | '7bit';
  disposition?: 'attachment' | 'inline';
}

export interface ComposeOptions {
  from?: string;
  to?: string;
  /** Raw header value (may be RFC 2047 encoded); null leaves the Subject header out. */
  subject?: string | null;
  text?: string;
  attachments?: Attachment[];
}

const wrap76 = (b64: string) => b64.replace(/.{1,76}/g, '$&\r\n');

/** A multipart/mixed message with CRLF line endings, the way a real mail client writes one. */
export function composeMessage(opts: ComposeOptions = {}): Buffer {
  const boundary = `----=_mw_${randomBytes(8).toString('hex')}`;
  const headers = [
    `From: ${opts.from ?? 'sender@example.org'}`,
    `To: ${opts.to ?? 'user@example.test'}`,
    ...(opts.subject === null ? [] : [`Subject: ${opts.subject ?? 'Test message'}`]),
    `Date: Fri, 27 Nov 2026 10:00:00 +0000`,
    `Message-ID: <${randomBytes(8).toString('hex')}@example.org>`,
    'MIME-Version: 1.0',
  ];
  const text = (opts.text ?? 'Hello,\r\nplease find the file attached.\r\n').replace(/\r?\n/g, '\r\n');
  if (!opts.attachments?.length) {
    return Buffer.from([...headers, 'Content-Type: text/plain; charset=utf-8', '', text].join('\r\n'), 'utf8');
  }
  const out: Buffer[] = [
    Buffer.from([...headers, `Content-Type: multipart/mixed; boundary="${boundary}"`, '', 'This is a multi-part message in MIME format.', ''].join('\r\n')),
    Buffer.from([`--${boundary}`, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit', '', text].join('\r\n')),
  ];
  for (const a of opts.attachments) {
    const encoding = a.encoding ?? 'base64';
    const body = encoding === 'base64' ? wrap76(a.data.toString('base64')) : a.data.toString('latin1').replace(/\r?\n/g, '\r\n');
    out.push(
      Buffer.from(
        [
          `\r\n--${boundary}`,
          `Content-Type: ${a.contentType ?? 'application/octet-stream'}; name="${a.filename}"`,
          `Content-Transfer-Encoding: ${encoding}`,
          `Content-Disposition: ${a.disposition ?? 'attachment'}; filename="${a.filename}"`,
          '',
          body,
        ].join('\r\n'),
        'latin1',
      ),
    );
  }
  out.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return Buffer.concat(out);
}
