/** What checkArchive reports; shared by every format's checker. */
export type ArchiveFormat = 'zip' | 'gzip' | 'tar' | '7z';

export interface RecoveredMember {
  name: string;
  content: Buffer;
  /** How it was recovered, e.g. 'central directory', 'local header carve'. */
  via: string;
}

export interface ArchiveCheck {
  format: ArchiveFormat;
  /**
   * intact: every byte is accounted for and consistent;
   * corrupt: anything a strict reader would refuse or a lenient one would read differently;
   * encrypted: members are encrypted (left to clamd's heuristics, but reported).
   */
  status: 'intact' | 'corrupt' | 'encrypted';
  /** Why corrupt, human-readable, e.g. "local header of member 1 (eicar.com) does not match the central directory". */
  detail?: string;
  /** Only for corrupt archives: members a lenient extractor would still recover (bounded by limits). */
  members: RecoveredMember[];
}

export interface ArchiveLimits {
  /** Most members handed back from one archive. */
  maxMembers: number;
  /** Most bytes of one member, inflated or verified; a bigger member is cut (recovery) or not verified. */
  maxMemberBytes: number;
  /** Most bytes inflated or handed back for one archive, verification and recovery each. */
  maxTotalBytes: number;
}

export const DEFAULT_ARCHIVE_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxMembers: 1000,
  maxMemberBytes: 25 * 1024 * 1024,
  maxTotalBytes: 100 * 1024 * 1024,
});

export function resolveLimits(limits: Partial<ArchiveLimits> = {}): ArchiveLimits {
  const pick = (v: number | undefined, d: number): number => (v !== undefined && Number.isFinite(v) && v >= 0 ? Math.floor(v) : d);
  return {
    maxMembers: pick(limits.maxMembers, DEFAULT_ARCHIVE_LIMITS.maxMembers),
    maxMemberBytes: pick(limits.maxMemberBytes, DEFAULT_ARCHIVE_LIMITS.maxMemberBytes),
    maxTotalBytes: pick(limits.maxTotalBytes, DEFAULT_ARCHIVE_LIMITS.maxTotalBytes),
  };
}
