import type { JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Streams, Subjects, Verdict, decode } from '@mailwarden/contracts';
import type { FinalizeDeps } from './finalize.js';
import { finalize } from './finalize.js';

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
    const keys: string[] = [];
    for await (const k of await deps.joins.keys(`${ref}.*`)) keys.push(k);
    if (keys.length < verdict.parts) {
      msg.ack();
      return;
    }
    const already = await deps.bus.jsm.direct.getMessage(Streams.results, { last_by_subj: Subjects.result(ref) }).catch(() => null);
    if (!already) {
      const verdicts: Verdict[] = [];
      for (let i = 0; i < verdict.parts; i++) {
        const e = await deps.joins.get(`${ref}.${i}`);
        if (!e || e.operation !== 'PUT') throw new Error(`verdict ${ref}.${i} missing from join`);
        verdicts.push(decode(Verdict, e.value));
      }
      await finalize(deps, ref, verdicts);
    }
    msg.ack();
    await Promise.all(keys.map((k) => deps.joins.purge(k))).catch(() => undefined);
  } catch (err) {
    deps.log.warn({ event: 'verdict.retry', ref, err: (err as Error).message }, 'join failed, will retry');
    msg.nak(1000);
  }
}
