/**
 * Gathers recovered members under the limits: at most maxMembers, each at most maxMemberBytes,
 * maxTotalBytes in all; identical contents (by sha256) are kept once, since several recovery
 * paths often find the same member.
 */
import { createHash } from 'node:crypto';
import type { ArchiveLimits, RecoveredMember } from './types.js';

export class MemberCollector {
  readonly members: RecoveredMember[] = [];
  private readonly seen = new Set<string>();
  private total = 0;

  constructor(private readonly limits: ArchiveLimits) {}

  /** Bytes the next member may have: callers size their decoding to this. */
  get room(): number {
    return Math.max(0, Math.min(this.limits.maxMemberBytes, this.limits.maxTotalBytes - this.total));
  }

  get full(): boolean {
    return this.members.length >= this.limits.maxMembers || this.room === 0;
  }

  /** Adds a member (cut to `room`); false when it was empty, a duplicate, or there is no room. */
  add(name: string, content: Buffer, via: string): boolean {
    if (this.full || content.length === 0) return false;
    const room = this.room;
    const cut = content.length > room;
    const body = cut ? content.subarray(0, room) : content;
    const digest = createHash('sha256').update(body).digest('hex');
    if (this.seen.has(digest)) return false;
    this.seen.add(digest);
    this.total += body.length;
    this.members.push({ name, content: body, via: cut ? `${via}, cut at ${room} bytes` : via });
    return true;
  }
}
