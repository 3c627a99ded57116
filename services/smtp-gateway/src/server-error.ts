import type { Logger } from '@mailwarden/log';

/** Errors a client causes by going away mid-conversation: part of normal traffic, not a fault of ours. */
const CLIENT_NETWORK_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * smtp-server reports every connection's socket error on the server. A client resetting its
 * connection is logged at info (it would otherwise page an administrator for ordinary Internet
 * noise); anything else stays an error.
 */
export function logServerError(log: Logger, err: Error & { code?: string }): void {
  if (err.code !== undefined && CLIENT_NETWORK_CODES.has(err.code)) {
    log.info({ event: 'smtp.client_connection_error', code: err.code, remote: (err as { remoteAddress?: string }).remoteAddress }, 'client connection error');
    return;
  }
  log.error({ event: 'smtp.server_error', err }, 'smtp server error');
}
