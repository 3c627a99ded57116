import { createHash } from 'node:crypto';

/**
 * The port through which a session remembers, across sessions, the size a scanned message was
 * delivered with (the gateway wires the `mw-pop3-sizes` KV bucket, tests an in-memory map). It
 * spares a leave-on-server client's next poll from scanning its old messages again for LIST/STAT.
 *
 * An optimisation only: the session bounds every call with a deadline and treats any failure as
 * "not remembered", so an implementation may throw or be slow.
 */
export interface DeliveredSizeMemory {
  get(key: string): Promise<number | undefined>;
  put(key: string, size: number): Promise<void>;
}

export interface DeliveredSizeKey {
  /** Upstream's `host:port`: the same user name on another server is another mailbox. */
  upstream: string;
  user: string;
  /** RFC 1939 7: unique and never reused for another message in this maildrop. */
  uid: string;
  /** What upstream's LIST says: a UIDL reused for changed content would not match. */
  upstreamSize: number;
  /** The policy in force (its digest): notices, subject marks and actions shape the delivered copy. */
  policyDigest: string;
}

/** The key of one message: a sha256 (hex), so the bucket holds no user names or UIDs. */
export function deliveredSizeKey(k: DeliveredSizeKey): string {
  return createHash('sha256').update(JSON.stringify([k.upstream, k.user, k.uid, k.upstreamSize, k.policyDigest])).digest('hex');
}

/** A digest of a policy document, for deliveredSizeKey. */
export function policyDigest(policy: unknown): string {
  return createHash('sha256').update(JSON.stringify(policy)).digest('hex').slice(0, 32);
}
