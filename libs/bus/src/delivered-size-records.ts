import type { KV, Kvm } from '@nats-io/kv';
import { Buckets } from '@mailwarden/contracts';
import { POP3_SIZE_TTL_MS } from './topology.js';

export class DeliveredSizeRecordsError extends Error {
  override name = 'DeliveredSizeRecordsError';
}

/** A key the gateway makes: a sha256 in hex (it hashes the mailbox, UIDL and sizes; nothing readable is stored). */
const KEY = /^[0-9a-f]{64}$/;

/**
 * The POP3 gateway's memory of delivered sizes in the `mw-pop3-sizes` KV bucket (created by
 * mailwarden-init): the size of a message's scanned copy, under a key the gateway derives from
 * the mailbox, the message's UIDL and its upstream size. It lets LIST/STAT of a later session
 * report the exact size of a message left on the server without scanning it again.
 *
 * Throws on any failure. The deadline is the caller's: the session bounds every call of its
 * DeliveredSizeMemory port (size-lookahead.ts) and ignores failures.
 */
export class DeliveredSizeRecords {
  private constructor(private readonly kv: KV) {}

  /** `create` with the bucket's settings only reads its info (and learns it allows direct gets): the gateway's user may not create it. */
  static async open(kvm: Kvm): Promise<DeliveredSizeRecords> {
    return new DeliveredSizeRecords(await kvm.create(Buckets.pop3Sizes, { history: 1, ttl: POP3_SIZE_TTL_MS }));
  }

  /** The remembered size, or undefined when there is none (or the entry is not a size). */
  async get(key: string): Promise<number | undefined> {
    checkKey(key);
    const entry = await this.kv.get(key);
    if (!entry || entry.operation !== 'PUT') return undefined;
    const text = entry.string();
    return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
  }

  /** Stores (or refreshes, restarting its TTL) the size under `key`. */
  async put(key: string, size: number): Promise<void> {
    checkKey(key);
    if (!Number.isSafeInteger(size) || size < 0) throw new DeliveredSizeRecordsError(`not a size: ${size}`);
    await this.kv.put(key, String(size));
  }
}

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new DeliveredSizeRecordsError(`not a delivered-size key: ${JSON.stringify(key.slice(0, 80))}`);
}
