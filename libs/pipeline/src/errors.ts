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
