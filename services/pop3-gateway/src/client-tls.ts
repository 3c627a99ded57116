import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { MIN_TLS_VERSION, type TlsPair } from '@mailwarden/tls';

/** The gateway's server-side TLS context: its certificate, TLS 1.2 and later only. */
export function gatewayContext(pair: TlsPair): SecureContext {
  return createSecureContext({ key: pair.key, cert: pair.cert, minVersion: MIN_TLS_VERSION });
}

/**
 * STLS in terminate mode: the server side of a TLS handshake on the client's socket, with a
 * deadline. Rejects (and destroys the socket) when the handshake fails, e.g. a client that only
 * offers TLS 1.1.
 */
export function acceptTls(socket: Socket, context: SecureContext, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: context, requestCert: false });
    const done = (err?: Error): void => {
      clearTimeout(timer);
      secure.off('secure', onSecure);
      secure.off('error', done);
      secure.off('close', onClose);
      if (!err) return resolve(secure);
      secure.on('error', () => undefined);
      secure.destroy();
      socket.destroy();
      reject(err);
    };
    const onSecure = (): void => done();
    const onClose = (): void => done(new Error('client closed the connection during the TLS handshake'));
    const timer = setTimeout(() => done(new Error(`TLS handshake not finished within ${timeoutMs} ms`)), timeoutMs);
    secure.once('secure', onSecure);
    secure.once('error', done);
    secure.once('close', onClose);
  });
}
