import { hostname } from 'node:os';
import { DELIVERER_ACK_WAIT_MS, type DeliveryRecords, type VersionedState } from '@mailwarden/bus';
import type { DeliveryState } from '@mailwarden/contracts';

/**
 * A deliverer's hold on one queued message: its `q.<ref>` state and the revision last written.
 * Every write is compare-and-set on that revision and they run one after another, so the lease
 * renewal, the "sending" mark and the outcome never conflict with each other; a write that does
 * conflict means someone else changed the message (a delete), and fails.
 */
export class Lease {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly records: DeliveryRecords,
    private current: DeliveryState,
    private revision: number,
  ) {}

  /** Takes the lease (compare-and-set on what was read); fails when another deliverer got there first. */
  static async take(records: DeliveryRecords, read: VersionedState): Promise<Lease> {
    const state = { ...read.state, leaseUntil: Date.now() + DELIVERER_ACK_WAIT_MS, leaseBy: `${hostname()}/${process.pid}` };
    return new Lease(records, state, await records.update(state, read.revision));
  }

  get state(): DeliveryState {
    return this.current;
  }

  write(change: (s: DeliveryState) => DeliveryState): Promise<void> {
    const next = this.chain.then(async () => {
      const state = change(this.current);
      this.revision = await this.records.update(state, this.revision);
      this.current = state;
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Keeps the lease as long as the ack wait from now (with the JetStream heartbeat). */
  renew(): Promise<void> {
    return this.write((s) => ({ ...s, leaseUntil: Date.now() + DELIVERER_ACK_WAIT_MS })).catch(() => undefined);
  }

  /** Waits for the writes in flight (before the outcome is written). */
  settled(): Promise<unknown> {
    return this.chain;
  }
}
