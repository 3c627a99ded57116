/**
 * @mailwarden/analysis: what a mail client could open from a message.
 * analyzeMessage reads the raw message once (from memory or by range), parses it the careful way
 * for the part map, derives every content under every lenient reading (boundaries, transfer
 * encodings, encoded blocks in text, embedded messages, damaged archives' members), scans each
 * distinct content once through the injected engine port, and maps every finding to the part of
 * the main reading whose removal removes it.
 */
export { analyzeMessage, type Analysis, type AnalyzeOptions, type CheckArchive, type ScanContent } from './analyze.js';
export { MemorySource, type ByteSource } from './byte-source.js';
export { AnalysisLimitError, DEFAULT_LIMITS, type AnalysisLimits } from './limits.js';
export { readLines, type Line } from './line-reader.js';
