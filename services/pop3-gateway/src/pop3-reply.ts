/**
 * A POP3 status line as read from a server (RFC 1939 3, RFC 5034 4 for SASL continuations):
 * `+OK text`, `-ERR text`, or `+ base64` during AUTH.
 */
export interface Pop3Reply {
  ok: boolean;
  /** A SASL continuation (`+ …`), only meaningful during AUTH. */
  continuation: boolean;
  /** The whole line without CRLF, exactly as received (relayed as-is to the client). */
  line: string;
  /** What follows the status indicator. */
  text: string;
}

/** Parses a status line; undefined when it is none of `+OK`, `-ERR`, `+`. */
export function parseReply(line: string): Pop3Reply | undefined {
  const m = /^(\+OK|-ERR|\+)(?: (.*)|)$/i.exec(line);
  if (!m) return undefined;
  const indicator = m[1]!.toUpperCase();
  return { ok: indicator === '+OK', continuation: indicator === '+', line, text: m[2] ?? '' };
}

/**
 * An error that knows its wire reply: the session sends `line` to the client. `fatal` closes the
 * session afterwards (the upstream leg is gone, or the client broke the protocol).
 */
export class Pop3ReplyError extends Error {
  override name = 'Pop3ReplyError';
  constructor(
    readonly line: string,
    readonly fatal = false,
    options?: { cause?: unknown },
  ) {
    super(line, options);
  }
}

/** RFC 3206 `[SYS/TEMP]`: a temporary failure, the client should try again later. */
export const tempFail = (what: string, ref: string, fatal = false, cause?: unknown): Pop3ReplyError =>
  new Pop3ReplyError(`-ERR [SYS/TEMP] ${what}, please try again later (ref ${ref})`, fatal, { cause });
