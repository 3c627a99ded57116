import type { JsMsg } from '@nats-io/jetstream';
import { DELIVERER_ACK_WAIT_MS, DELIVERER_HEARTBEAT_MS, DeliveryConflictError, DeliveryRecords, keepWorking, type Bus } from '@mailwarden/bus';
import { DeliveryJob, decode, type DeliveryState, type RecipientOutcome } from '@mailwarden/contracts';
import type { ObjectStore } from '@mailwarden/storage';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import { attemptDelivery } from './attempt.js';
import { retryDelay } from './backoff.js';
import { bounce } from './bounce.js';
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
}

/**
 * One delivery job (queue mode). The order is what makes it exactly once towards upstream:
 * 1. a job whose `done.<ref>` record exists is dropped (a redelivery, a retry-now copy);
 * 2. the deliverer takes the message's lease in `q.<ref>` (compare-and-set), so two copies of the
 *    job never deliver at once; the lease is renewed with the JetStream heartbeat;
 * 3. only recipients neither delivered nor failed are sent to;
 * 4. what upstream answered is written to `q.<ref>` (or, when finished, to `done.<ref>`) BEFORE
 *    the job is nak'ed for a retry or acked. A crash before that write repeats the attempt; a
 *    crash after it repeats nothing.
 */
export async function handleDelivery(deps: DeliveryDeps, msg: JsMsg): Promise<void> {
  let job: DeliveryJob;
  try {
    job = decode(DeliveryJob, msg.data);
  } catch (err) {
    deps.log.error({ event: 'delivery.poison', subject: msg.subject, err }, 'undecodable delivery job dropped');
    msg.term();
    return;
  }
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
    const prior = current.state;
    let revision = await records.update({ ...prior, leaseUntil: now + DELIVERER_ACK_WAIT_MS }, current.revision);
    let renewing: Promise<unknown> = Promise.resolve();
    const renew = setInterval(() => {
      renewing = records.update({ ...prior, leaseUntil: Date.now() + DELIVERER_ACK_WAIT_MS }, revision).then(
        (r) => (revision = r),
        () => undefined,
      );
    }, DELIVERER_HEARTBEAT_MS);
    let state: DeliveryState;
    try {
      state = await deliver(deps, job, prior);
    } finally {
      clearInterval(renew);
      // The outcome is written on top of the last renewal: a renewal still in flight would make that write conflict.
      await renewing;
    }
    await settle(deps, msg, job, prior, state, revision);
  } catch (err) {
    // Our own state could not be read or written (NATS, S3): nothing was recorded, try again soon.
    log.warn({ event: 'delivery.retry', ref, err: (err as Error).message }, 'delivery bookkeeping failed, will retry');
    msg.nak(err instanceof DeliveryConflictError ? 1000 : 5000);
  } finally {
    stopWorking();
  }
}

/** One attempt for the recipients still open; returns the new state (not yet written). */
async function deliver(deps: DeliveryDeps, job: DeliveryJob, state: DeliveryState): Promise<DeliveryState> {
  const closed = new Set([...state.delivered, ...state.failed.map((f) => f.recipient)]);
  const open = job.rcptTo.filter((r) => !closed.has(r));
  const pool = deps.routes.pool(job.route);
  const upstream = pool?.address ?? '(none)';
  const outcomes: RecipientOutcome[] = pool
    ? await attemptDelivery(pool, deps.store, job, open)
    : open.map((recipient) => ({ recipient, code: 0, reply: `no upstream configured for ${job.route} mail` }));
  const at = new Date().toISOString();
  const delivered = [...state.delivered, ...outcomes.filter((o) => o.code >= 200 && o.code < 300).map((o) => o.recipient)];
  const failed = [...state.failed, ...outcomes.filter((o) => o.code >= 500)];
  for (const o of outcomes) metrics.queueDeliveries.inc({ result: o.code >= 200 && o.code < 300 ? 'delivered' : o.code >= 500 ? 'failed' : 'deferred' });
  deps.log.info(
    { event: 'delivery.attempt', ref: job.ref, upstream, attempt: state.attemptCount + 1, outcomes: outcomes.map((o) => ({ rcpt: o.recipient, code: o.code })) },
    `delivery attempt ${state.attemptCount + 1} of ${job.ref}`,
  );
  return { ...state, delivered, failed, attempts: [...state.attempts, { at, upstream, outcomes }], attemptCount: state.attemptCount + 1 };
}

/** Records the attempt, then retries later (nak with backoff) or finishes (DSN, record, ack). */
async function settle(deps: DeliveryDeps, msg: JsMsg, job: DeliveryJob, prior: DeliveryState, before: DeliveryState, revision: number): Promise<void> {
  const { records, log } = deps;
  const closed = new Set([...before.delivered, ...before.failed.map((f) => f.recipient)]);
  const deferred = job.rcptTo.filter((r) => !closed.has(r));
  const last = before.attempts[before.attempts.length - 1]!;
  let state = before;
  const expired = Date.now() - Date.parse(job.receivedAt) >= deps.lifetimeMs;
  if (deferred.length && expired) {
    // Given up: the last reply (or failure) is what the DSN quotes, under 4.4.7 (RFC 3463: delivery time expired).
    const lastReply = (r: string) => last.outcomes.find((o) => o.recipient === r)?.reply ?? 'no answer';
    const timedOut = deferred.map((recipient) => ({ recipient, code: 0, reply: `4.4.7 delivery time expired; last: ${lastReply(recipient)}` }));
    state = { ...state, failed: [...state.failed, ...timedOut] };
    log.warn({ event: 'delivery.expired', ref: job.ref, recipients: deferred }, 'delivery lifetime exceeded');
  }
  // Recipients failed in earlier attempts had their DSN then.
  const failedNow = state.failed.slice(prior.failed.length);
  const still = job.rcptTo.filter((r) => !state.delivered.includes(r) && !state.failed.some((f) => f.recipient === r));
  const dsnRef = await bounce({ ...deps, hostname: deps.routes.helloName }, job, failedNow, { attempt: state.attemptCount, upstream: last.upstream });
  if (dsnRef) {
    metrics.queueBounces.inc();
    log.info({ event: 'delivery.bounced', ref: job.ref, dsn: dsnRef, recipients: failedNow.map((f) => f.recipient) }, 'DSN queued for the sender');
  }
  if (still.length) {
    const delay = retryDelay(state.attemptCount, deps.retryMinMs, deps.retryMaxMs);
    const next = { ...state, nextAttemptAt: new Date(Date.now() + delay).toISOString() };
    delete next.leaseUntil;
    await records.update(next, revision);
    log.info({ event: 'delivery.deferred', ref: job.ref, recipients: still, delayMs: delay }, 'delivery deferred');
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
  });
  await msg.ackAck();
  await deps.store.remove(job.keys).catch((err: unknown) => log.warn({ event: 'delivery.cleanup_failed', ref: job.ref, err: (err as Error).message }, 'objects of a finished message not removed (lifecycle rule)'));
  log.info({ event: 'delivery.finished', ref: job.ref, delivered: state.delivered.length, failed: state.failed.length }, `message ${job.ref} finished`);
}

