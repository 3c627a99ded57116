import { Subjects, type DeliveryJob } from '@mailwarden/contracts';
import { DeliveryRecords, type Bus } from '@mailwarden/bus';

/**
 * Puts a finished message in the delivery queue: its state first (so the API lists it), then the
 * job on `mw.delivery.<ref>` (msgID: a verdict finalised twice queues it once). Both are durable
 * when this resolves; only then may the caller ack what it came from.
 */
export async function enqueueDelivery(bus: Bus, records: DeliveryRecords, job: DeliveryJob): Promise<void> {
  // Finished already (a verdict redelivered long after): queueing it again would list a ghost.
  if (await records.done(job.ref)) return;
  await records.create(DeliveryRecords.initialState(job));
  await bus.js.publish(Subjects.delivery(job.ref), JSON.stringify(job), { msgID: `delivery-${job.ref}` });
}
