/** Any internal failure or timeout while scanning: the client gets a temporary failure with the ref. */
export class TempFailError extends Error {
  override name = 'TempFailError';
  constructor(
    message: string,
    readonly ref: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The message is refused for good (a policy limit, e.g. too many parts): the client gets a 5xx with the ref. */
export class PermFailError extends Error {
  override name = 'PermFailError';
  constructor(
    message: string,
    readonly ref: string,
  ) {
    super(message);
  }
}
