import type { JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Streams, Subjects, Verdict, decode } from '@mailwarden/contracts';
import type { FinalizeDeps } from './finalize.js';
import { finalize } from './finalize.js';
import { claimFinalize } from './claim.js';

/**
 * Joins verdicts in a KV bucket (not in memory), so the join survives a restart and any number of
 * reassemblers can share the verdict queue. The verdict is acked only after its join entry is durable
 * and, if it completed the message, after the result went out.
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
    await deps.joins.put(`${ref}.${verdict.part}`, JSON.stringify(verdict));
    // Reading every part's entry (rather than listing keys) is one direct get each and works on any server.
    const entries = await Promise.all(Array.from({ length: verdict.parts }, (_, i) => deps.joins.get(`${ref}.${i}`)));
    if (entries.some((e) => !e || e.operation !== 'PUT')) {
      msg.ack();
      return;
    }
    const already = await deps.bus.jsm.direct.getMessage(Streams.results, { last_by_subj: Subjects.result(ref) }).catch(() => null);
    if (!already) {
      if (!(await claimFinalize(deps.joins, ref))) {
        // Another reassembler is finishing this message; look again shortly (it may die).
        msg.nak(2000);
        return;
      }
      await finalize(deps, ref, entries.map((e) => decode(Verdict, e!.value)));
    }
    msg.ack();
    const keys = [...entries.map((_, i) => `${ref}.${i}`), `${ref}.claim`];
    await Promise.all(keys.map((k) => deps.joins.purge(k))).catch(() => undefined);
  } catch (err) {
    deps.log.warn({ event: 'verdict.retry', ref, err: (err as Error).message }, 'join failed, will retry');
    msg.nak(1000);
  }
}
