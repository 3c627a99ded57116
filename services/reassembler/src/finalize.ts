import {
  Envelope,
  ObjectKeys,
  ScanResult,
  Streams,
  Subjects,
  decode,
  type InfectedEvent,
  type ScanErrorEvent,
  type ScannedEvent,
  type UnscannableEvent,
  type Verdict,
} from '@mailwarden/contracts';
import type { Bus } from '@mailwarden/bus';
import type { PolicyWatcher } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import { rebuildMessage, renderNotice } from '@mailwarden/mime';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import { decide, describeRemoval } from './decide.js';

export interface FinalizeDeps {
  bus: Bus;
  store: ObjectStore;
  policy: PolicyWatcher;
  log: Logger;
}

/**
 * All verdicts of `ref` are in: apply the policy, rebuild when something goes, and tell the gateway.
 * Idempotent, so a verdict redelivered after a crash, or two reassemblers finishing together, is harmless.
 */
export async function finalize(deps: FinalizeDeps, ref: string, verdicts: Verdict[]): Promise<ScanResult> {
  const { bus, store, log } = deps;
  const envMsg = await bus.jsm.direct.getMessage(Streams.envelopes, { last_by_subj: Subjects.envelope(ref) });
  if (!envMsg) throw new Error(`envelope of ${ref} not found`);
  const envelope = decode(Envelope, envMsg.data);
  const policy = deps.policy.policy;
  const decision = decide(envelope, verdicts, policy);

  let result: ScanResult;
  if (decision.kind === 'tempfail') {
    result = { ref, outcome: 'tempfail', removed: [], subjectPrefixed: false, error: decision.error };
  } else if (!decision.removed.length) {
    // Nothing removed: the original bytes are delivered as they came.
    result = { ref, outcome: 'deliver', key: envelope.rawKey, size: envelope.rawSize, removed: [], subjectPrefixed: false };
  } else {
    const date = new Date().toUTCString();
    const replace = new Map(
      decision.removed.map((r) => {
        const filename = r.filename ?? `part-${r.part}`;
        return [r.part, { noticeText: renderNotice(policy.notice.template, { filename, reason: describeRemoval(r), date, ref }), noticeFilename: `${filename}.removed.txt` }];
      }),
    );
    const prefix = policy.subjectPrefix.enabled ? policy.subjectPrefix.text : undefined;
    const source = await store.get(envelope.rawKey);
    const { size } = await store.put(ObjectKeys.rebuilt(ref), rebuildMessage(source, { replace, ...(prefix ? { subjectPrefix: prefix } : {}) }));
    result = { ref, outcome: 'deliver', key: ObjectKeys.rebuilt(ref), size, removed: decision.removed, subjectPrefixed: !!prefix };
  }
  await bus.js.publish(Subjects.result(ref), JSON.stringify(result), { msgID: `result-${ref}` });
  for (const r of result.removed) metrics.removedAttachments.inc({ reason: r.kind === 'infected' ? 'infected' : (r.reason ?? 'corrupt') });
  log.info(
    { event: 'message.finalized', ref, outcome: result.outcome, removed: result.removed.length, policyVersion: deps.policy.version, error: result.error },
    `message ${result.outcome}${result.removed.length ? `, ${result.removed.length} part(s) removed` : ''}`,
  );
  await publishEvents(bus, envelope, verdicts, result).catch(() => undefined);
  return result;
}

/** Activity for the config service; msgIDs make a message finalised twice count once. */
async function publishEvents(bus: Bus, envelope: Envelope, verdicts: Verdict[], result: ScanResult): Promise<void> {
  const base = {
    ref: envelope.ref,
    time: new Date().toISOString(),
    protocol: envelope.protocol,
    direction: envelope.direction,
    sender: envelope.mailFrom,
    recipients: envelope.rcptTo,
    ...(envelope.subject !== undefined ? { subject: envelope.subject } : {}),
  };
  const scanned: ScannedEvent = { kind: 'scanned', ...base, parts: verdicts.length, outcome: result.outcome };
  const publishing = [bus.js.publish(Subjects.event('scanned'), JSON.stringify(scanned), { msgID: `event-${envelope.ref}-scanned` })];
  for (const v of verdicts) {
    if (v.kind === 'clean') continue;
    const removed = result.removed.some((r) => r.part === v.part);
    const file = envelope.parts[v.part]?.filename;
    const event = {
      kind: v.kind,
      verdict: v.kind,
      ...base,
      part: v.part,
      ...(file ? { file } : {}),
      ...(v.detail ? { detail: v.detail } : {}),
      ...(v.reason ? { reason: v.reason } : {}),
      action: removed ? 'removed' : v.kind === 'error' ? 'tempfail' : 'delivered',
    } as InfectedEvent | UnscannableEvent | ScanErrorEvent;
    publishing.push(bus.js.publish(Subjects.event(v.kind), JSON.stringify(event), { msgID: `event-${envelope.ref}-${v.part}` }));
  }
  await Promise.all(publishing);
}
