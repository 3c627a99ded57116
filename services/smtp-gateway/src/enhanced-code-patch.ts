import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/**
 * smtp-server adds its own enhanced status code to every reply by reply code alone, so an
 * upstream's `550 5.7.1 …` would go out as `550 5.1.1 5.7.1 …`. We relay upstream's codes, so
 * when a reply text already starts with an enhanced code, send it without adding another.
 */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3}\s/;
type Send = (code: number, data?: string | string[], context?: string | false) => void;
const proto = SMTPConnection.prototype as unknown as { send: Send; __mwPatched?: boolean };
if (!proto.__mwPatched) {
  const original = proto.send;
  proto.send = function (this: unknown, code, data, context) {
    if (typeof data === 'string' && ENHANCED.test(data)) return original.call(this, code, data, false);
    return original.call(this, code, data, context);
  };
  proto.__mwPatched = true;
}
