/**
 * @mailwarden/mime: the byte-level MIME work of the gateways and the reassembler. It parses no
 * message: content analysis (every part, exact byte offsets) is libs/analysis's, in the scanner.
 * - spliceMessage: message + part map plan (byte ranges) → the message with those ranges replaced
 *   by notices in place and the Subject prefixed, every other byte kept; one streaming pass.
 * - renderNotice: the notice text from its template.
 * - decodeSubject / fromBinaryString: header text ('binary' strings, RFC 2047) to text.
 * - DotStuffer / DotUnstuffer / LineEndingCanonicalizer: the SMTP/POP3 wire transforms.
 * Memory stays bounded whatever the message size. Header blocks are edited with mailsplit's
 * Headers class (see mailsplit.d.ts), nothing else of mailsplit is used.
 */
export { spliceMessage } from './splice-message.js';
export { SplicePlanError, SPLICE_HEADER_LIMIT, type ByteRange, type SplicePlan, type SpliceReplacement } from './splice-plan.js';
export { recoveryText, renderNotice, type NoticeVars } from './render-notice.js';
export { decodeSubject, fromBinaryString } from './header-text.js';
export { DotStuffer } from './dot-stuffer.js';
export { DotUnstuffer, UnterminatedMultilineError } from './dot-unstuffer.js';
export { LineEndingCanonicalizer, NulByteError } from './line-ending-canonicalizer.js';
