import type { JsMsg } from '@nats-io/jetstream';
import { REASSEMBLER_HEARTBEAT_MS, decodeOrDrop, keepWorking } from '@mailwarden/bus';
import { MessageVerdict, Streams, Subjects } from '@mailwarden/contracts';
import type { FinalizeDeps } from './finalize.js';
import { finalize } from './finalize.js';
import { RescanLater } from './delivery/rescan-delay.js';

/** A verdict that keeps failing (raw.eml gone, say) is dropped after this many tries. */
const MAX_VERDICT_ATTEMPTS = 30;

/**
 * One verdict per message (the scanner did the whole analysis): finalise it and ack only after
 * the result is published. Finalising twice is harmless (the result and events are published with
 * msgIDs), so only a redelivered verdict (deliveryCount > 1) looks for an existing result first:
 * that spares a rebuild, and every first delivery a round trip.
 */
export async function handleVerdict(deps: FinalizeDeps, msg: JsMsg): Promise<void> {
  const verdict = decodeOrDrop(MessageVerdict, msg, deps.log, { event: 'verdict.poison', name: 'verdict' });
  if (!verdict) return;
  const ref = verdict.envelope.ref;
  const attempt = msg.info.deliveryCount;
  if (attempt > 1) deps.log.info({ event: 'verdict.redelivered', ref, attempt }, 'verdict delivered again');
  // The rebuild streams raw.eml from S3 and rebuilt.eml back: it may outlast the ack wait.
  const stopWorking = keepWorking(msg, REASSEMBLER_HEARTBEAT_MS);
  try {
    const redelivered = msg.info.deliveryCount > 1;
    const already = redelivered ? await finishedBefore(deps, verdict) : null;
    if (!already) await finalize(deps, verdict);
    msg.ack();
  } catch (err) {
    // The gateway's deadline turns the message into a 451, so the sender retries and nothing is lost.
    // Queue mode: the sender has its 250, so the verdict is never dropped; it waits longer and longer instead.
    if (err instanceof RescanLater) {
      deps.log.info({ event: 'queue.rescan_wait', ref, delayMs: err.delayMs }, 'scan failed: rescan after a backoff');
      msg.nak(err.delayMs);
      return;
    }
    if (verdict.envelope.delivery === 'queue') {
      deps.log.warn({ event: 'verdict.retry', ref, attempt, err: (err as Error).message }, 'finalising a queued message failed, will retry');
      msg.nak(Math.min(60_000, attempt * 1000));
      return;
    }
    if (msg.info.deliveryCount >= MAX_VERDICT_ATTEMPTS) {
      deps.log.error({ event: 'verdict.dropped', ref, attempts: msg.info.deliveryCount, err: (err as Error).message }, 'verdict dropped after repeated failures');
      msg.term();
      return;
    }
    deps.log.warn({ event: 'verdict.retry', ref, err: (err as Error).message }, 'finalising failed, will retry');
    msg.nak(1000);
  } finally {
    stopWorking();
  }
}

/**
 * A result already published (proxy mode), or the message already finished (queue mode). A queued
 * state alone does not count: the crash may have come between it and the delivery job, so the
 * hand-off is done again (the job's msgID, and the deliverer's lease and records, make a second
 * copy harmless).
 */
async function finishedBefore(deps: FinalizeDeps, verdict: MessageVerdict): Promise<unknown> {
  const ref = verdict.envelope.ref;
  if (verdict.envelope.delivery === 'queue' && deps.queue) return deps.queue.records.done(ref);
  return deps.bus.jsm.direct.getMessage(Streams.results, { last_by_subj: Subjects.result(ref) }).catch(() => null);
}
