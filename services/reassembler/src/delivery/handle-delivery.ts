import { setTimeout as sleep } from 'node:timers/promises';
import type { JsMsg } from '@nats-io/jetstream';
import { DELIVERER_ACK_WAIT_MS, DELIVERER_HEARTBEAT_MS, DeliveryConflictError, DeliveryRecords, decodeOrDrop, keepWorking, type Bus } from '@mailwarden/bus';
import { DeliveryJob, type DeliveryState, type RecipientOutcome } from '@mailwarden/contracts';
import type { ObjectStore } from '@mailwarden/storage';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import { attemptDelivery } from './attempt.js';
import { retryDelay } from './backoff.js';
import { bounce } from './bounce.js';
import { Lease } from './lease.js';
import type { Routes } from './routes.js';

export interface DeliveryDeps {
  bus: Bus;
  store: ObjectStore;
  records: DeliveryRecords;
  routes: Routes;
  log: Logger;
  lifetimeMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Test hook: how long to keep trying to record upstream's answer (default RECORD_RETRY_MS). */
  recordRetryMs?: number;
}

/**
 * One delivery job (queue mode). The order is what makes it exactly once towards upstream:
 * 1. a job whose `done.<ref>` record exists is dropped (a redelivery, a retry-now copy), and so
 *    is a copy the state no longer names as live;
 * 2. the deliverer takes the message's lease in `q.<ref>` (compare-and-set), so two copies of the
 *    job never deliver at once; the lease is renewed with the JetStream heartbeat;
 * 3. only recipients neither delivered nor failed are sent to; just before DATA the state says
 *    `sending` (a deliverer that finds it knows the last attempt may have reached upstream);
 * 4. what upstream answered is written to `q.<ref>` (or, when finished, to `done.<ref>`) BEFORE
 *    the job is nak'ed for a retry or acked; a write that fails (NATS restarting) is tried again
 *    while this worker still knows the answer. A crash before DATA repeats the attempt harmlessly;
 *    after the write, nothing is repeated; in between (upstream has the message, the record does
 *    not yet say so) the attempt is repeated and counted as `interrupted` (RFC 5321 6.1).
 */
export async function handleDelivery(deps: DeliveryDeps, msg: JsMsg): Promise<void> {
  const job = decodeOrDrop(DeliveryJob, msg, deps.log, { event: 'delivery.poison', name: 'delivery job' });
  if (!job) return;
  const { records, log } = deps;
  const ref = job.ref;
  const stopWorking = keepWorking(msg, DELIVERER_HEARTBEAT_MS);
  try {
    if (await records.done(ref)) {
      log.info({ event: 'delivery.already_done', ref }, 'delivery job for a finished message dropped');
      await records.forget(ref);
      await msg.ackAck();
      return;
    }
    let current = await records.load(ref);
    if (!current) {
      await records.create(DeliveryRecords.initialState(job));
      current = await records.load(ref);
      if (!current) throw new Error('delivery state missing after create');
    }
    if ((current.state.copy ?? '') !== (job.copy ?? '')) {
      // Retry-now published a newer copy (it waited out its own backoff): this one is stale.
      log.info({ event: 'delivery.stale_copy', ref }, 'superseded copy of a delivery job dropped');
      await msg.ackAck();
      return;
    }
    const now = Date.now();
    if (current.state.leaseUntil && current.state.leaseUntil > now) {
      // Another deliverer is on it (or was, and crashed: its lease runs out with the ack wait).
      msg.nak(current.state.leaseUntil - now + 1000);
      return;
    }
    const lease = await Lease.take(records, current);
    if (lease.state.sending) {
      log.warn({ event: 'delivery.interrupted', ref, attempt: lease.state.sending.attempt }, 'the last attempt was cut off after DATA began: upstream may have the message, it is sent again (possible duplicate)');
      await lease.write(({ sending: _gone, ...s }) => ({ ...s, interrupted: (s.interrupted ?? 0) + 1 }));
    }
    const renew = setInterval(() => void lease.renew(), DELIVERER_HEARTBEAT_MS);
    let outcomes: RecipientOutcome[];
    try {
      outcomes = await attempt(deps, job, lease);
    } finally {
      clearInterval(renew);
      // The outcome is written on top of the last write: one still in flight would make it conflict.
      await lease.settled();
    }
    await recordOutcome(deps, ref, () => settle(deps, msg, job, lease, outcomes));
  } catch (err) {
    // Our own state could not be read or written (NATS, S3): nothing was recorded, try again soon.
    log.warn({ event: 'delivery.retry', ref, err: (err as Error).message }, 'delivery bookkeeping failed, will retry');
    msg.nak(err instanceof DeliveryConflictError ? 1000 : 5000);
  } finally {
    stopWorking();
  }
}

/** How long a worker keeps trying to record upstream's answer (within the job's ack wait, kept alive by the heartbeat). */
export const RECORD_RETRY_MS = DELIVERER_ACK_WAIT_MS;

/**
 * Upstream has answered: forgetting that now would make the next attempt send the message again
 * (a duplicate when upstream said 250). A failure to record it is tried again here, while this
 * worker still knows the answer, rather than left to a redelivery that only knows DATA began.
 * A conflict (someone else changed the message) is not retried: the state is no longer ours.
 */
async function recordOutcome(deps: DeliveryDeps, ref: string, record: () => Promise<void>): Promise<void> {
  const giveUpAt = Date.now() + (deps.recordRetryMs ?? RECORD_RETRY_MS);
  for (let attempt = 1; ; attempt++) {
    try {
      return await record();
    } catch (err) {
      if (err instanceof DeliveryConflictError || Date.now() >= giveUpAt) throw err;
      deps.log.warn({ event: 'delivery.record_retry', ref, attempt, err: (err as Error).message }, "recording upstream's answer failed, trying again");
      await sleep(Math.min(2000, 250 * attempt));
    }
  }
}

/** One attempt for the recipients still open: each one's outcome. */
async function attempt(deps: DeliveryDeps, job: DeliveryJob, lease: Lease): Promise<RecipientOutcome[]> {
  const state = lease.state;
  const closed = new Set([...state.delivered, ...state.failed.map((f) => f.recipient)]);
  const open = job.rcptTo.filter((r) => !closed.has(r));
  const pool = deps.routes.pool(job.route);
  const markSending = () => lease.write((s) => ({ ...s, sending: { attempt: s.attemptCount + 1, at: new Date().toISOString() } }));
  const outcomes: RecipientOutcome[] = pool
    ? await attemptDelivery(pool, deps.store, job, open, markSending)
    : open.map((recipient) => ({ recipient, code: 0, reply: `no upstream configured for ${job.route} mail` }));
  for (const o of outcomes) metrics.queueDeliveries.inc({ result: o.code >= 200 && o.code < 300 ? 'delivered' : o.code >= 500 ? 'failed' : 'deferred' });
  deps.log.info(
    { event: 'delivery.attempt', ref: job.ref, upstream: pool?.address, attempt: state.attemptCount + 1, outcomes: outcomes.map((o) => ({ rcpt: o.recipient, code: o.code })) },
    `delivery attempt ${state.attemptCount + 1} of ${job.ref}`,
  );
  return outcomes;
}

/** Records the attempt, then retries later (nak with backoff) or finishes (DSN, record, ack). */
async function settle(deps: DeliveryDeps, msg: JsMsg, job: DeliveryJob, lease: Lease, outcomes: RecipientOutcome[]): Promise<void> {
  const { records, log } = deps;
  const prior = lease.state;
  const upstream = deps.routes.pool(job.route)?.address ?? '(none)';
  const ok = (o: RecipientOutcome) => o.code >= 200 && o.code < 300;
  const delivered = [...prior.delivered, ...outcomes.filter(ok).map((o) => o.recipient)];
  const failedNow = outcomes.filter((o) => o.code >= 500);
  const deferred = outcomes.filter((o) => !ok(o) && o.code < 500);
  if (deferred.length && Date.now() - Date.parse(job.receivedAt) >= deps.lifetimeMs) {
    // Given up: the DSN quotes the last reply (or failure) under 4.4.7 (RFC 3463: delivery time expired).
    for (const o of deferred.splice(0)) failedNow.push({ recipient: o.recipient, code: 0, reply: `4.4.7 delivery time expired; last: ${o.reply}` });
    log.warn({ event: 'delivery.expired', ref: job.ref, recipients: failedNow.map((f) => f.recipient) }, 'delivery lifetime exceeded');
  }
  const { sending: _done, leaseUntil: _lease, leaseBy: _by, nextAttemptAt: _next, ...rest } = prior;
  const state: DeliveryState = {
    ...rest,
    delivered,
    failed: [...prior.failed, ...failedNow],
    attempts: [...prior.attempts, { at: new Date().toISOString(), upstream, outcomes }],
    attemptCount: prior.attemptCount + 1,
  };
  // Recipients failed in earlier attempts had their DSN then.
  const dsnRef = await bounce({ ...deps, hostname: deps.routes.helloName }, job, failedNow, { attempt: state.attemptCount, upstream });
  if (dsnRef) {
    metrics.queueBounces.inc();
    log.info({ event: 'delivery.bounced', ref: job.ref, dsn: dsnRef, recipients: failedNow.map((f) => f.recipient) }, 'DSN queued for the sender');
  }
  if (deferred.length) {
    const delay = retryDelay(state.attemptCount, deps.retryMinMs, deps.retryMaxMs);
    await lease.write(() => ({ ...state, nextAttemptAt: new Date(Date.now() + delay).toISOString() }));
    log.info({ event: 'delivery.deferred', ref: job.ref, recipients: deferred.map((d) => d.recipient), delayMs: delay }, 'delivery deferred');
    msg.nak(delay);
    return;
  }
  await records.finish({
    ref: job.ref,
    finishedAt: new Date().toISOString(),
    outcome: !state.failed.length ? 'delivered' : !state.delivered.length ? 'bounced' : 'partial',
    delivered: state.delivered,
    failed: state.failed,
    attemptCount: state.attemptCount,
    ...(dsnRef ? { dsnRef } : {}),
    ...(state.interrupted ? { interrupted: state.interrupted } : {}),
  });
  await msg.ackAck();
  await deps.store.remove(job.keys).catch((err: unknown) => log.warn({ event: 'delivery.cleanup_failed', ref: job.ref, err: (err as Error).message }, 'objects of a finished message not removed (lifecycle rule)'));
  log.info({ event: 'delivery.finished', ref: job.ref, delivered: state.delivered.length, failed: state.failed.length }, `message ${job.ref} finished`);
}
