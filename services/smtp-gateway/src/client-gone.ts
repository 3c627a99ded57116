import type { Readable } from 'node:stream';

/** The client's connection ended before its transaction did: nothing may be delivered for it. */
export class ClientGoneError extends Error {
  override name = 'ClientGoneError';
}

/**
 * Rejects when the DATA stream is cut before its end (smtp-server destroys it when the client
 * disconnects mid-message; such a stream never emits `end`). Never settles for a complete message.
 */
export function clientAborted(stream: Readable): Promise<never> {
  return new Promise((_, reject) => {
    const cut = () => {
      if (!stream.readableEnded) reject(new ClientGoneError('connection closed before the message was received in full'));
    };
    stream.once('close', cut);
    stream.once('error', cut);
  });
}
