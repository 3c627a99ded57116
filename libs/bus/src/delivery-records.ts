import type { KV, Kvm } from '@nats-io/kv';
import { DELIVERY_RECORD_TTL_MS } from './topology.js';
import { Buckets, DeliveryKeys, DeliveryRecord, DeliveryState, decode, type DeliveryJob } from '@mailwarden/contracts';

/** A state as read, with the revision a compare-and-set update needs. */
export interface VersionedState {
  state: DeliveryState;
  revision: number;
}

export class DeliveryConflictError extends Error {
  override name = 'DeliveryConflictError';
}

/** At most this many attempts are kept in a state (the count goes on). */
const KEPT_ATTEMPTS = 20;

/**
 * The queue's durable records in the `mw-delivery` KV bucket (created by mailwarden-init):
 * `q.<ref>` the state of a queued message (recipients done and failed, attempts, the lease of the
 * deliverer working on it), `done.<ref>` the record of a finished one. The record is written
 * before the delivery job is acked, and a job whose record exists is dropped: a delivery that got
 * its 250 is never repeated, whatever crashed and whatever copy of the job (retry-now) comes.
 */
export class DeliveryRecords {
  private constructor(private readonly kv: KV) {}

  /** The bucket made by mailwarden-init; `create` with the same settings only reads its info (and learns it allows direct gets). */
  static async open(kvm: Kvm): Promise<DeliveryRecords> {
    return new DeliveryRecords(await kvm.create(Buckets.delivery, { history: 1, ttl: DELIVERY_RECORD_TTL_MS }));
  }

  static initialState(job: DeliveryJob): DeliveryState {
    return { job, delivered: [], failed: [], attempts: [], attemptCount: 0, ...(job.copy ? { copy: job.copy } : {}) };
  }

  async load(ref: string): Promise<VersionedState | undefined> {
    const e = await this.kv.get(DeliveryKeys.queued(ref));
    if (!e || e.operation !== 'PUT') return undefined;
    return { state: decode(DeliveryState, e.value), revision: e.revision };
  }

  /** Creates the state unless it exists (a job published twice). */
  async create(state: DeliveryState): Promise<void> {
    try {
      await this.kv.create(DeliveryKeys.queued(state.job.ref), JSON.stringify(state));
    } catch (err) {
      if (!(await this.load(state.job.ref))) throw err;
    }
  }

  /** Compare-and-set: fails with DeliveryConflictError when someone wrote since `revision`. */
  async update(state: DeliveryState, revision: number): Promise<number> {
    const trimmed = { ...state, attempts: state.attempts.slice(-KEPT_ATTEMPTS) };
    try {
      return await this.kv.update(DeliveryKeys.queued(state.job.ref), JSON.stringify(trimmed), revision);
    } catch (err) {
      throw new DeliveryConflictError(`delivery state of ${state.job.ref} changed since revision ${revision}`, { cause: err });
    }
  }

  async done(ref: string): Promise<DeliveryRecord | undefined> {
    const e = await this.kv.get(DeliveryKeys.done(ref));
    return e && e.operation === 'PUT' ? decode(DeliveryRecord, e.value) : undefined;
  }

  /** The message is finished: the record first (durable), then the queue entry goes. */
  async finish(record: DeliveryRecord): Promise<void> {
    await this.kv.put(DeliveryKeys.done(record.ref), JSON.stringify(record));
    await this.kv.delete(DeliveryKeys.queued(record.ref));
  }

  /** Removes a queue entry left behind by a crash between the record and its removal. */
  async forget(ref: string): Promise<void> {
    if (await this.load(ref)) await this.kv.delete(DeliveryKeys.queued(ref));
  }

  /** Every queued message (the `q.*` keys). */
  async queued(): Promise<DeliveryState[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${DeliveryKeys.queuedPrefix}*`)) keys.push(k);
    const states = await Promise.all(keys.map((k) => this.load(k.slice(DeliveryKeys.queuedPrefix.length)).catch(() => undefined)));
    return states.filter((s): s is VersionedState => !!s).map((s) => s.state);
  }
}
