/**
 * @mailwarden/mime: streaming MIME for the gateways and the reassembler, on mailsplit.
 * - extractParts: message → decoded leaf parts (to store and scan), with backpressure.
 * - rebuildMessage: message + plan → message with some leaves replaced by notices, Subject prefixed.
 * - spliceMessage: message + part map plan (byte ranges) → the same, without parsing: ranges of the
 *   original replaced in place, every other byte kept.
 * - isLeaf: the one definition of a leaf, so both number leaves alike.
 * - DotStuffer / DotUnstuffer / LineEndingCanonicalizer: the SMTP/POP3 wire transforms.
 * Memory stays bounded whatever the message size (see splitter.ts for what is fixed in mailsplit).
 */
export { extractParts, type ExtractOptions, type ExtractResult, type OnPart } from './extract-parts.js';
export { rebuildMessage, RebuildPlanError, type RebuildPlan, type Replacement } from './rebuild-message.js';
export { spliceMessage } from './splice-message.js';
export { SplicePlanError, SPLICE_HEADER_LIMIT, type ByteRange, type SplicePlan, type SpliceReplacement } from './splice-plan.js';
export { renderNotice, type NoticeVars } from './render-notice.js';
export { decodeSubject, fromBinaryString } from './header-text.js';
export { isLeaf, MimeStructureError, type LeafInfo, type MimeNodeLike } from './leaf.js';
export { createDecoder } from './decoder.js';
export { DotStuffer } from './dot-stuffer.js';
export { DotUnstuffer, UnterminatedMultilineError } from './dot-unstuffer.js';
export { LineEndingCanonicalizer, NulByteError } from './line-ending-canonicalizer.js';
