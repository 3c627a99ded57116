import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { LineEndingCanonicalizer } from '@mailwarden/mime';
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

/**
 * The DATA stream as it may be stored: bare CR/LF become CRLF (never forwarded raw: SMTP
 * smuggling), a NUL refuses the message, and storing stops once the size limit is passed.
 * `refusals` rejects with the reason when one of those stops it (it never resolves).
 */
export function guardedBody(stream: Readable & { sizeExceeded?: boolean }): { body: Readable; guard: LineEndingCanonicalizer; limited: SizeExceeded; refusals: Promise<never> } {
  const guard = new LineEndingCanonicalizer();
  const limited = new SizeExceeded(stream);
  guard.once('error', (err) => limited.destroy(err));
  const body = stream.pipe(guard).pipe(limited);
  const refusals = new Promise<never>((_, reject) => limited.once('error', reject));
  return { body, guard, limited, refusals };
}

/** A refusal must still let the client finish sending DATA, or its next command would be read as body. */
export async function readToEnd(stream: Readable): Promise<void> {
  stream.unpipe();
  if (!stream.readableEnded && !stream.destroyed) {
    stream.resume();
    await new Promise((r) => {
      stream.once('end', r);
      stream.once('close', r);
    });
  }
}
