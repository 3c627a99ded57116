import { Subjects, type DeliveryJob, type MessageVerdict, type ScanResult } from '@mailwarden/contracts';
import type { Bus, DeliveryRecords } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import type { Logger } from '@mailwarden/log';
import { bounce } from './bounce.js';
import { enqueueDelivery } from './enqueue.js';
import { RescanLater, rescanDelayMs } from './rescan-delay.js';

export interface HandOffDeps {
  bus: Bus;
  store: ObjectStore;
  records: DeliveryRecords;
  log: Logger;
  hostname: string;
  lifetimeMs: number;
}

/**
 * Queue mode: the sender has its 250 already, so the finished message goes to the delivery queue
 * instead of a waiting gateway. A message refused by the analysis limits is bounced (its sender
 * gets a DSN, as a 554 at DATA would have told it). A scan that failed is tried again with a new
 * job (never delivered unscanned) once its backoff is over (rescan-delay.ts: till then the verdict
 * is held), until the queue lifetime is over; then it is bounced too.
 */
export async function handOff(deps: HandOffDeps, verdict: MessageVerdict, result: ScanResult): Promise<void> {
  const env = verdict.envelope;
  const route = env.direction;
  const base: DeliveryJob = { ref: env.ref, route, mailFrom: env.mailFrom, rcptTo: env.rcptTo, key: env.rawKey, size: env.rawSize, keys: [env.rawKey], receivedAt: env.receivedAt };
  if (result.outcome === 'deliver' && result.key) {
    const keys = result.key === env.rawKey ? [env.rawKey] : [env.rawKey, result.key];
    await enqueueDelivery(deps.bus, deps.records, { ...base, key: result.key, size: result.size ?? env.rawSize, keys });
    deps.log.info({ event: 'queue.enqueued', ref: env.ref, route, recipients: env.rcptTo.length }, 'message queued for delivery');
    return;
  }
  const expired = Date.now() - Date.parse(env.receivedAt) >= deps.lifetimeMs;
  if (result.outcome === 'tempfail' && !expired) {
    const due = Date.parse(verdict.scannedAt) + rescanDelayMs(env.receivedAt, verdict.scannedAt);
    if (Date.now() < due) throw new RescanLater(due - Date.now());
    // A new job under a new msgID (the first one's is within the duplicate window): the scanners try again.
    await deps.bus.js.publish(Subjects.rescan(env.ref), JSON.stringify(env), { msgID: `job-${env.ref}-rescan-${verdict.scannedAt}` });
    deps.log.warn({ event: 'queue.rescan', ref: env.ref, err: result.error }, 'scan failed, message scanned again');
    return;
  }
  const reply = result.outcome === 'reject' ? `554 5.6.0 message refused: ${result.error ?? 'over the analysis limits'}` : `4.4.7 message could not be scanned in time: ${result.error ?? 'scan error'}`;
  const failed = env.rcptTo.map((recipient) => ({ recipient, code: result.outcome === 'reject' ? 554 : 0, reply }));
  const dsnRef = await bounce({ ...deps }, base, failed, { attempt: 0, upstream: deps.hostname });
  await deps.records.finish({ ref: env.ref, finishedAt: new Date().toISOString(), outcome: 'bounced', delivered: [], failed, attemptCount: 0, ...(dsnRef ? { dsnRef } : {}) });
  await deps.store.remove(base.keys).catch(() => undefined);
  deps.log.warn({ event: 'queue.refused', ref: env.ref, dsn: dsnRef, err: result.error }, 'queued message refused; sender notified');
}
