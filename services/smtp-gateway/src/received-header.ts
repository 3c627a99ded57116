import { Transform, type TransformCallback } from 'node:stream';
import type { SMTPServerSession } from 'smtp-server';
import { clientIdentity } from './client-identity.js';

/** Header-safe words: no controls, no parentheses or brackets that would break the clause syntax. */
// eslint-disable-next-line no-control-regex -- stripping control characters is the point
const word = (s: string) => s.replace(/[\x00-\x20\x7f()[\]]+/g, '') || 'unknown';

/**
 * The trace header a server that accepts a message for relaying must add (RFC 5321 4.4). Queue
 * mode needs it: upstream then sees the deliverer as its client, and this line is where the real
 * client (HELO, reverse name, address, TLS) stays on record for upstream's filters and for people.
 * The `id` clause is the queue reference of the 250, so a delivered copy can be traced back to it.
 */
export function receivedHeader(session: SMTPServerSession, hostname: string, ref: string, date = new Date()): string {
  const id = clientIdentity(session);
  const proto = word(session.transmissionType || id.PROTO);
  const name = id.NAME === '[UNAVAILABLE]' ? '' : `${word(id.NAME)} `;
  return `Received: from ${word(id.HELO)} (${name}[${word(id.ADDR)}])\r\n\tby ${word(hostname)} (Mailwarden) with ${proto} id ${word(ref)};\r\n\t${date.toUTCString().replace('GMT', '+0000')}\r\n`;
}

/** Puts `head` before the first byte of the stream (or alone, for an empty one). */
export class Prepend extends Transform {
  private pending: Buffer | undefined;
  constructor(head: string) {
    super();
    this.pending = Buffer.from(head, 'latin1');
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.pending) {
      this.push(this.pending);
      this.pending = undefined;
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.pending) this.push(this.pending);
    cb();
  }
}
