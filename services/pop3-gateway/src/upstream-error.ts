/** The upstream leg failed (connect, timeout, closed, garbage): the session cannot go on. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
}
