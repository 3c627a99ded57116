export { extractParts, type ExtractOptions, type ExtractResult, type OnPart } from './extract-parts.js';
export { rebuildMessage, RebuildPlanError, type RebuildPlan, type Replacement } from './rebuild-message.js';
export { renderNotice, type NoticeVars } from './render-notice.js';
export { decodeSubject } from './header-text.js';
export { isLeaf, MimeStructureError, type LeafInfo, type MimeNodeLike } from './leaf.js';
export { createDecoder } from './decoder.js';
export { DotStuffer } from './dot-stuffer.js';
export { DotUnstuffer, UnterminatedMultilineError } from './dot-unstuffer.js';
export { BareLineEndingGuard, BareLineEndingError, type BareLineEndingKind } from './bare-line-ending-guard.js';
