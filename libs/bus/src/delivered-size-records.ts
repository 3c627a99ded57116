import type { KV, Kvm } from '@nats-io/kv';
import { Buckets } from '@mailwarden/contracts';
import { POP3_SIZE_TTL_MS } from './topology.js';

export class DeliveredSizeRecordsError extends Error {
  override name = 'DeliveredSizeRecordsError';
}

/** A key the gateway makes: a sha256 in hex (it hashes the mailbox, UIDL and sizes; nothing readable is stored). */
const KEY = /^[0-9a-f]{64}$/;
const DEFAULT_TIMEOUT_MS = 1000;

/**
 * The POP3 gateway's memory of delivered sizes in the `mw-pop3-sizes` KV bucket (created by
 * mailwarden-init): the size of a message's scanned copy, under a key the gateway derives from
 * the mailbox, the message's UIDL and its upstream size. It lets LIST/STAT of a later session
 * report the exact size of a message left on the server without scanning it again.
 *
 * Every call has a deadline (the bucket is an optimisation: a slow or down NATS must cost a
 * command at most this long) and throws on any failure; the gateway's session ignores failures.
 */
export class DeliveredSizeRecords {
  private constructor(
    private readonly kv: KV,
    private readonly timeoutMs: number,
  ) {}

  /** `create` with the bucket's settings only reads its info (and learns it allows direct gets): the gateway's user may not create it. */
  static async open(kvm: Kvm, opts: { timeoutMs?: number } = {}): Promise<DeliveredSizeRecords> {
    return new DeliveredSizeRecords(await kvm.create(Buckets.pop3Sizes, { history: 1, ttl: POP3_SIZE_TTL_MS }), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  /** The remembered size, or undefined when there is none (or the entry is not a size). */
  async get(key: string): Promise<number | undefined> {
    checkKey(key);
    const entry = await within(this.kv.get(key), this.timeoutMs, 'read');
    if (!entry || entry.operation !== 'PUT') return undefined;
    const text = entry.string();
    return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
  }

  /** Stores (or refreshes, restarting its TTL) the size under `key`. */
  async put(key: string, size: number): Promise<void> {
    checkKey(key);
    if (!Number.isSafeInteger(size) || size < 0) throw new DeliveredSizeRecordsError(`not a size: ${size}`);
    await within(this.kv.put(key, String(size)), this.timeoutMs, 'write');
  }
}

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new DeliveredSizeRecordsError(`not a delivered-size key: ${JSON.stringify(key.slice(0, 80))}`);
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeliveredSizeRecordsError(`${Buckets.pop3Sizes} ${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
