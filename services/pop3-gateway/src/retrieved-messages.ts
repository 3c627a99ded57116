import type { StoredMessage } from '@mailwarden/pipeline';

/**
 * The scanned copies of the messages a session retrieved, by message number (numbers are stable
 * for the whole session, RFC 1939 5), so a second RETR or a TOP does not scan again; and the
 * delivered sizes recalled from earlier sessions (no copy here: RETR scans those). A copy or size
 * is not used for a message the client marked deleted (upstream answers those). Every copy is
 * discarded from storage when the session ends.
 */
export class RetrievedMessages {
  private readonly byNumber = new Map<number, StoredMessage>();
  /** Each retrieved message's size as upstream counts it (its LIST, else the octets it sent). */
  private readonly upstreamSizes = new Map<number, number>();
  /** Delivered sizes known without a copy (remembered from an earlier session), with upstream's size. */
  private readonly recalled = new Map<number, { upstream: number; delivered: number }>();
  /** Copies fetched with TOP by the size look-ahead: upstream has not seen a RETR for them yet. */
  private readonly peeked = new Set<number>();
  private readonly deleted = new Set<number>();

  get(n: number): StoredMessage | undefined {
    return this.deleted.has(n) ? undefined : this.byNumber.get(n);
  }

  set(n: number, message: StoredMessage, upstreamSize: number, opts: { peeked?: boolean } = {}): void {
    const previous = this.byNumber.get(n);
    this.byNumber.set(n, message);
    this.upstreamSizes.set(n, upstreamSize);
    this.recalled.delete(n);
    if (opts.peeked) this.peeked.add(n);
    else this.peeked.delete(n);
    if (previous && previous !== message) void previous.discard().catch(() => undefined);
  }

  /** A delivered size remembered from an earlier session; a copy, when there is one, says more. */
  recall(n: number, upstreamSize: number, deliveredSize: number): void {
    if (!this.byNumber.has(n)) this.recalled.set(n, { upstream: upstreamSize, delivered: deliveredSize });
  }

  /** The size message n is (or will be) delivered with, when known; undefined for a deleted one. */
  deliveredSize(n: number): number | undefined {
    if (this.deleted.has(n)) return undefined;
    return this.byNumber.get(n)?.size ?? this.recalled.get(n)?.delivered;
  }

  /** The copy of n was fetched with TOP (upstream would not mark it seen). */
  isPeeked(n: number): boolean {
    return this.peeked.has(n);
  }

  /** Upstream has now had its RETR for n. */
  retrievedUpstream(n: number): void {
    this.peeked.delete(n);
  }

  /** DELE n was accepted upstream. */
  markDeleted(n: number): void {
    this.deleted.add(n);
  }

  isDeleted(n: number): boolean {
    return this.deleted.has(n);
  }

  /** RSET was accepted upstream: deletion marks are gone. */
  unmarkAll(): void {
    this.deleted.clear();
  }

  get size(): number {
    return this.byNumber.size;
  }

  /** How much bigger (or smaller) the delivered copies of the known, undeleted messages are than upstream's (for STAT). */
  sizeDifference(): number {
    let difference = 0;
    for (const [n, message] of this.byNumber) if (!this.deleted.has(n)) difference += message.size - (this.upstreamSizes.get(n) ?? message.size);
    for (const [n, { upstream, delivered }] of this.recalled) if (!this.deleted.has(n)) difference += delivered - upstream;
    return difference;
  }

  /** Removes every stored copy; never throws, resolves with the number of copies that could not be removed. */
  async discardAll(): Promise<number> {
    const all = [...this.byNumber.values()];
    this.byNumber.clear();
    this.upstreamSizes.clear();
    this.peeked.clear();
    const results = await Promise.allSettled(all.map((m) => m.discard()));
    return results.filter((r) => r.status === 'rejected').length;
  }
}
