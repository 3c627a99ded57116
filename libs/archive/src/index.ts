/**
 * @mailwarden/archive: archive integrity checks for what clamd silently passes.
 * - checkArchive: zip / gzip / tar / 7z → intact, encrypted or corrupt (+ why), and for corrupt
 *   archives the members a lenient extractor would still recover, so they can be scanned too.
 * Pure Node (zlib, crypto); bounded memory and time for any input (see ArchiveLimits).
 */
export { checkArchive, detectFormat, type CheckOptions } from './detect.js';
export {
  DEFAULT_ARCHIVE_LIMITS,
  type ArchiveCheck,
  type ArchiveFormat,
  type ArchiveLimits,
  type RecoveredMember,
} from './types.js';
