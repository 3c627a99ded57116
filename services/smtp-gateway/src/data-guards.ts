import { Transform, type TransformCallback } from 'node:stream';
import { SmtpReplyError } from './smtp-reply.js';

/** The size limit itself is enforced by smtp-server (552); this only stops storing a message that will be refused. */
export class SizeExceeded extends Transform {
  constructor(private readonly source: { sizeExceeded?: boolean }) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.source.sizeExceeded) return cb(new SmtpReplyError(552, '5.3.4', 'Message exceeds the maximum message size'));
    cb(null, chunk);
  }
}
