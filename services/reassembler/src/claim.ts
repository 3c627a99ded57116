import type { KV } from '@nats-io/kv';

/** A finaliser that died holding the claim loses it after this long; its work is then redone. */
export const CLAIM_TTL_MS = 30_000;

/**
 * Only one reassembler finalises a message (the rebuild costs a full read and write of it).
 * Claims expire, so a crash mid-finalise never strands a message: a redelivered verdict takes over.
 */
export async function claimFinalize(joins: KV, ref: string, now = Date.now()): Promise<boolean> {
  const key = `${ref}.claim`;
  try {
    await joins.create(key, String(now));
    return true;
  } catch {
    const e = await joins.get(key);
    if (!e || e.operation !== 'PUT') return false;
    if (now - Number(e.string()) < CLAIM_TTL_MS) return false;
    try {
      await joins.update(key, String(now), e.revision);
      return true;
    } catch {
      return false;
    }
  }
}
