/**
 * The client connection is gone, or had to be cut (a body failed after its `+OK` was sent, where
 * no status line can follow): the session ends without a reply. Upstream gets no QUIT, so it
 * does not enter UPDATE and deletes nothing (RFC 1939 6).
 */
export class SessionEndedError extends Error {
  override name = 'SessionEndedError';
}
