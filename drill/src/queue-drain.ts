/**
 * Queue mode: the 250 comes before scanning and delivery, so the drill may tally only when the
 * queue has finished. Finished means every reference a 250 quoted has its `done.<ref>` record and
 * no work is left anywhere in the pipeline (no job, verdict or delivery job pending or unacked:
 * a copy whose 250 was lost is known to nobody but JetStream).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryRecords, connectBus, type Bus } from '@mailwarden/bus';
import { Streams } from '@mailwarden/contracts';

type NatsClient = { url: string; user?: string; password?: string };

async function withRecords<T>(nats: NatsClient, fn: (bus: Bus, records: DeliveryRecords) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let bus: Bus | undefined;
    let records: DeliveryRecords;
    try {
      bus = await connectBus({ ...nats, name: 'drill' });
      records = await DeliveryRecords.open(bus.kvm);
    } catch (err) {
      // NATS may be restarting (the drill's last fault): try again for a while.
      await bus?.nc.close().catch(() => undefined);
      if (attempt >= 10) throw err;
      await sleep(1000);
      continue;
    }
    try {
      return await fn(bus, records);
    } finally {
      await bus.nc.close().catch(() => undefined);
    }
  }
}

export interface QueueDrainResult {
  /** Seconds from the end of the load until the queue was empty. */
  waitedS: number;
  /** References quoted by a 250 that never got their record (lost, unless still under way at the deadline). */
  unfinished: string[];
}

/** Jobs not yet delivered to or not yet acknowledged by any consumer, over the pipeline's streams. */
async function pipelineBacklog(bus: Bus): Promise<number> {
  let backlog = 0;
  for (const stream of [Streams.jobs, Streams.verdicts, Streams.delivery]) {
    for await (const c of bus.jsm.consumers.list(stream)) backlog += c.num_pending + c.num_ack_pending;
  }
  return backlog;
}

export function drainQueue(nats: NatsClient, acceptedRefs: string[], deadlineMs: number, log: (line: string) => void): Promise<QueueDrainResult> {
  const t0 = Date.now();
  return withRecords(nats, async (bus, records) => {
    let open = [...acceptedRefs];
    let quietPolls = 0;
    while (Date.now() - t0 < deadlineMs) {
      try {
        const still: string[] = [];
        for (const ref of open) if (!(await records.done(ref))) still.push(ref);
        open = still;
        const backlog = await pipelineBacklog(bus);
        const queued = (await records.queued()).length;
        quietPolls = open.length === 0 && backlog === 0 && queued === 0 ? quietPolls + 1 : 0;
        if (quietPolls >= 2) break;
        if (quietPolls === 0) log(`queue: ${open.length} accepted message(s) not finished, ${queued} in the delivery queue, ${backlog} job(s) in the pipeline`);
      } catch (err) {
        // NATS may be restarting (a fault still under way): ask again.
        quietPolls = 0;
        log(`queue: poll failed (${(err as Error).message}), trying again`);
      }
      await sleep(2000);
    }
    return { waitedS: (Date.now() - t0) / 1000, unfinished: open };
  });
}

/** `interrupted` of each reference: its attempts cut off between DATA and recording upstream's reply (RFC 5321 6.1). */
export function interruptedCounts(nats: NatsClient, refs: Iterable<string>): Promise<Map<string, number>> {
  return withRecords(nats, async (_bus, records) => {
    const out = new Map<string, number>();
    for (const ref of refs) {
      for (let attempt = 1; ; attempt++) {
        try {
          const record = (await records.done(ref)) ?? (await records.load(ref))?.state;
          out.set(ref, record?.interrupted ?? 0);
          break;
        } catch (err) {
          if (attempt >= 10) throw err;
          await sleep(1000);
        }
      }
    }
    return out;
  });
}
