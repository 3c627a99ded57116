import type { StoredMessage } from '@mailwarden/pipeline';

/**
 * The scanned copies of the messages a session retrieved, by message number (numbers are stable
 * for the whole session, RFC 1939 5), so a second RETR or a TOP does not scan again. A copy is
 * not served for a message the client marked deleted (upstream answers those). Everything is
 * discarded from storage when the session ends.
 */
export class RetrievedMessages {
  private readonly byNumber = new Map<number, StoredMessage>();
  /** Each retrieved message's size as upstream sent it. */
  private readonly upstreamSizes = new Map<number, number>();
  private readonly deleted = new Set<number>();

  get(n: number): StoredMessage | undefined {
    return this.deleted.has(n) ? undefined : this.byNumber.get(n);
  }

  set(n: number, message: StoredMessage, upstreamSize: number): void {
    const previous = this.byNumber.get(n);
    this.byNumber.set(n, message);
    this.upstreamSizes.set(n, upstreamSize);
    if (previous && previous !== message) void previous.discard().catch(() => undefined);
  }

  /** DELE n was accepted upstream. */
  markDeleted(n: number): void {
    this.deleted.add(n);
  }

  /** RSET was accepted upstream: deletion marks are gone. */
  unmarkAll(): void {
    this.deleted.clear();
  }

  get size(): number {
    return this.byNumber.size;
  }

  /** How much bigger (or smaller) the delivered copies of the retrieved, undeleted messages are than upstream's (for STAT). */
  sizeDifference(): number {
    let difference = 0;
    for (const [n, message] of this.byNumber) if (!this.deleted.has(n)) difference += message.size - (this.upstreamSizes.get(n) ?? message.size);
    return difference;
  }

  /** Removes every stored copy; never throws, resolves with the number of copies that could not be removed. */
  async discardAll(): Promise<number> {
    const all = [...this.byNumber.values()];
    this.byNumber.clear();
    this.upstreamSizes.clear();
    const results = await Promise.allSettled(all.map((m) => m.discard()));
    return results.filter((r) => r.status === 'rejected').length;
  }
}
