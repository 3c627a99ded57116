import type { JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Streams, Subjects, Verdict, decode } from '@mailwarden/contracts';
import type { FinalizeDeps } from './finalize.js';
import { finalize } from './finalize.js';

type Joined = Record<string, Verdict>;

/**
 * Joins verdicts in a KV bucket (not in memory), so the join survives a restart and any number of
 * reassemblers can share the verdict queue: one entry per message holds the verdicts so far and
 * is updated with compare-and-set, so exactly one verdict completes the set and finalises. A
 * verdict is acked only after its part is in the entry and, if it completed the message, after
 * the result went out; a redelivered verdict that finds the set complete finalises again, which
 * is idempotent (the result is checked first and published with a msgID).
 */
export async function handleVerdict(deps: FinalizeDeps & { joins: KV }, msg: JsMsg): Promise<void> {
  let verdict: Verdict;
  try {
    verdict = decode(Verdict, msg.data);
  } catch (err) {
    deps.log.error({ event: 'verdict.poison', subject: msg.subject, err }, 'undecodable verdict dropped');
    msg.term();
    return;
  }
  const { ref } = verdict;
  try {
    // A one-part message needs no join at all.
    const joined = verdict.parts === 1 ? { [verdict.part]: verdict } : await join(deps.joins, verdict);
    if (Object.keys(joined).length < verdict.parts) {
      msg.ack();
      return;
    }
    const already = await deps.bus.jsm.direct.getMessage(Streams.results, { last_by_subj: Subjects.result(ref) }).catch(() => null);
    if (!already) {
      const verdicts = Array.from({ length: verdict.parts }, (_, i) => joined[i]);
      if (verdicts.some((v) => !v)) throw new Error(`verdicts of ${ref} do not cover parts 0..${verdict.parts - 1}`);
      await finalize(deps, ref, verdicts as Verdict[]);
    }
    msg.ack();
    if (verdict.parts > 1) await deps.joins.purge(ref).catch(() => undefined);
  } catch (err) {
    // A verdict that keeps failing (its envelope gone, say) must not cycle for ever: after this
    // many tries it is dropped; the gateway's deadline turns the message into a 451, so the
    // sender retries and nothing is lost.
    if (msg.info.deliveryCount >= MAX_VERDICT_ATTEMPTS) {
      deps.log.error({ event: 'verdict.dropped', ref, attempts: msg.info.deliveryCount, err: (err as Error).message }, 'verdict dropped after repeated failures');
      msg.term();
      return;
    }
    deps.log.warn({ event: 'verdict.retry', ref, err: (err as Error).message }, 'join failed, will retry');
    msg.nak(1000);
  }
}

const MAX_VERDICT_ATTEMPTS = 30;

/** Adds the verdict to its message's entry (compare-and-set, retried on a concurrent write); returns the set. */
async function join(joins: KV, verdict: Verdict): Promise<Joined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const entry = await joins.get(verdict.ref);
    const current: Joined = entry && entry.operation === 'PUT' ? (entry.json() as Joined) : {};
    if (current[verdict.part]) return current; // redelivered: already joined
    const next = { ...current, [verdict.part]: verdict };
    try {
      if (entry) await joins.update(verdict.ref, JSON.stringify(next), entry.revision);
      else await joins.create(verdict.ref, JSON.stringify(next));
      return next;
    } catch {
      // Another verdict of the same message got in first: read again.
    }
  }
  throw new Error(`could not join verdict ${verdict.ref}.${verdict.part}: too many concurrent writers`);
}
