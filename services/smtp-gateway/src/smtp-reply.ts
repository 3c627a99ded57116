import { replyText, type SmtpReply } from '@mailwarden/smtp-client';

export { replyText, type SmtpReply };

/** An error that knows its wire reply; smtp-server sends `responseCode` and `message`. */
export class SmtpReplyError extends Error {
  override name = 'SmtpReplyError';
  readonly responseCode: number;
  constructor(code: number, enhanced: string, text: string, options?: { cause?: unknown }) {
    super(`${enhanced} ${text}`, options);
    this.responseCode = code;
  }

  /** Relays an upstream refusal as it came, adding an enhanced code only if upstream gave none. */
  static fromUpstream(reply: SmtpReply): SmtpReplyError {
    const text = replyText(reply);
    if (/^[245]\.\d{1,3}\.\d{1,3}\s/.test(text)) {
      const [enhanced, ...rest] = text.split(' ');
      return new SmtpReplyError(reply.code, enhanced!, rest.join(' '));
    }
    const klass = Math.floor(reply.code / 100);
    return new SmtpReplyError(reply.code, `${klass}.0.0`, text);
  }
}

export const tempFail = (ref: string, what = 'Temporary failure while scanning the message'): SmtpReplyError =>
  new SmtpReplyError(451, '4.3.0', `${what}, please try again later (ref ${ref})`);
