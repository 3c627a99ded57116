/** An error that knows its HTTP reply: status, a stable machine-readable code and extra body fields. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
  }
}

/** One invalid field of a request: `field` is the dotted path (`subjectPrefix.text`), empty for the whole body. */
export interface FieldError {
  field: string;
  message: string;
}

/** A request body, query or header that does not match its schema; the reply names the fields. */
export class RequestValidationError extends HttpError {
  override name = 'RequestValidationError';
  constructor(
    readonly part: string,
    readonly errors: FieldError[],
  ) {
    const first = errors[0] ?? { field: '', message: 'invalid' };
    const where = first.field ? `${first.field}: ` : part === 'body' ? 'body: ' : `${part}: `;
    super(400, 'invalid_request', `${where}${first.message}`, { field: first.field, errors });
  }
}
