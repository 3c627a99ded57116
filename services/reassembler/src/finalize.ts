import { LEGACY_DEFAULT_NOTICE_TEMPLATE, DEFAULT_NOTICE_TEMPLATE, ObjectKeys, Subjects, quarantineRetentionDays, type InfectedEvent, type MessageVerdict, type RemovedPart, type ScanErrorEvent, type ScannedEvent, type ScanResult, type UnscannableEvent } from '@mailwarden/contracts';
import type { Bus, PolicyWatcher } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import { renderNotice, spliceMessage } from '@mailwarden/mime';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import { decide, describeRemoval, removedName } from './decide.js';
import { keepOriginal } from './quarantine.js';
import { handOff, type HandOffDeps } from './delivery/hand-off.js';

export interface FinalizeDeps {
  bus: Bus;
  store: ObjectStore;
  policy: PolicyWatcher;
  log: Logger;
  /** Queue mode (envelopes with `delivery: 'queue'`): where finished messages go instead of a result. */
  queue?: Omit<HandOffDeps, 'bus' | 'store' | 'log'>;
}

/**
 * A message's verdict is in: apply the policy, rebuild when something goes (each removed part
 * replaced in place by its byte range, every other byte kept), and tell the gateway.
 * Idempotent, so a verdict redelivered after a crash, or two reassemblers finishing together, is harmless.
 * The rebuild checks that raw.eml is the message the part map was made from (size and sha256):
 * a mismatch fails it, and the message is never delivered as if clean.
 */
export async function finalize(deps: FinalizeDeps, verdict: MessageVerdict): Promise<ScanResult> {
  const { bus, store, log } = deps;
  const { envelope } = verdict;
  const ref = envelope.ref;
  const policy = deps.policy.policy;
  const decision = decide(verdict, policy);

  let result: ScanResult;
  if (decision.kind === 'tempfail' || decision.kind === 'reject') {
    result = { ref, outcome: decision.kind, removed: [], subjectPrefixed: false, error: decision.error };
  } else if (!decision.removed.length) {
    // Nothing removed: the original bytes are delivered as they came.
    result = { ref, outcome: 'deliver', key: envelope.rawKey, size: envelope.rawSize, removed: [], subjectPrefixed: false };
  } else {
    const date = new Date().toUTCString();
    // Kept before anything is published: the notice may only promise what is durable.
    const retentionDays = quarantineRetentionDays(policy);
    const noticeRef = retentionDays > 0 ? await keepOriginal(store, verdict, decision.removed, log) : ref;
    // The pre-quarantine default promised recovery whatever the retention: it means today's default.
    const template = policy.notice.template === LEGACY_DEFAULT_NOTICE_TEMPLATE ? DEFAULT_NOTICE_TEMPLATE : policy.notice.template;
    const replace = decision.removed.map((r) => {
      const filename = removedName(r);
      return {
        kind: r.node.kind,
        range: r.node.range,
        headerEnd: r.node.headerEnd,
        noticeText: renderNotice(template, { filename, reason: describeRemoval(r), date, ref: noticeRef, retentionDays }),
        noticeFilename: `${(r.filename ?? `part-${r.part}`).replace(/[\\/]/g, '_')}.removed.txt`,
      };
    });
    const prefix = policy.subjectPrefix.enabled ? policy.subjectPrefix.text : undefined;
    const source = await store.get(envelope.rawKey);
    const rebuilt = spliceMessage(source, { size: envelope.rawSize, sha256: envelope.rawSha256, rootHeader: verdict.rootHeader, replace, ...(prefix ? { subjectPrefix: prefix } : {}) });
    const { size } = await store.put(ObjectKeys.rebuilt(ref), rebuilt);
    const removed: RemovedPart[] = decision.removed.map(({ node: _node, ...r }) => r);
    result = { ref, outcome: 'deliver', key: ObjectKeys.rebuilt(ref), size, removed, subjectPrefixed: !!prefix };
  }
  if (envelope.delivery === 'queue') {
    if (!deps.queue) throw new Error('queue-mode message, but this reassembler has no delivery queue');
    await handOff({ ...deps.queue, bus, store, log }, verdict, result);
  } else {
    await bus.js.publish(Subjects.result(ref), JSON.stringify(result), { msgID: `result-${ref}` });
  }
  for (const r of result.removed) metrics.removedAttachments.inc({ reason: r.kind === 'infected' ? 'infected' : (r.reason ?? 'corrupt') });
  log.info(
    { event: 'message.finalized', ref, outcome: result.outcome, removed: result.removed.length, policyVersion: deps.policy.version, error: result.error },
    `message ${result.outcome}${result.removed.length ? `, ${result.removed.length} part(s) removed` : ''}`,
  );
  await publishEvents(bus, verdict, result).catch(() => undefined);
  return result;
}

/** Activity for the config service; msgIDs make a message finalised twice count once. */
async function publishEvents(bus: Bus, verdict: MessageVerdict, result: ScanResult): Promise<void> {
  const { envelope } = verdict;
  const base = {
    ref: envelope.ref,
    time: new Date().toISOString(),
    protocol: envelope.protocol,
    direction: envelope.direction,
    sender: envelope.mailFrom,
    recipients: envelope.rcptTo,
    ...(verdict.subject !== undefined ? { subject: verdict.subject } : {}),
  };
  const scanned: ScannedEvent = { kind: 'scanned', ...base, parts: verdict.parts.length, outcome: result.outcome };
  const publishing = [bus.js.publish(Subjects.event('scanned'), JSON.stringify(scanned), { msgID: `event-${envelope.ref}-scanned` })];
  const findings = verdict.outcome === 'error' ? [{ path: 'message', filename: undefined, verdict: { kind: 'error' as const, detail: verdict.error } }] : verdict.parts;
  for (const p of findings) {
    const v = p.verdict;
    if (v.kind === 'clean') continue;
    const removed = result.removed.some((r) => r.part === p.path || p.path.startsWith(`${r.part}.`));
    const event = {
      kind: v.kind,
      verdict: v.kind,
      ...base,
      part: p.path,
      ...(p.filename ? { file: p.filename } : {}),
      ...(v.detail ? { detail: v.detail } : {}),
      ...('reason' in v && v.reason ? { reason: v.reason } : {}),
      action: removed ? 'removed' : v.kind === 'error' ? 'tempfail' : 'delivered',
    } as InfectedEvent | UnscannableEvent | ScanErrorEvent;
    publishing.push(bus.js.publish(Subjects.event(v.kind), JSON.stringify(event), { msgID: `event-${envelope.ref}-${p.path}` }));
  }
  await Promise.all(publishing);
}
