import { Readable } from 'node:stream';
import { ObjectKeys, quarantineRef, type MessagePart, type MessageVerdict, type QuarantineEntry, type RemovedPart } from '@mailwarden/contracts';
import type { ObjectStore } from '@mailwarden/storage';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';

/**
 * Keeps the original of a message the policy took something from: `raw.eml` is copied server-side
 * to `quarantine/<qref>/raw.eml`, then its metadata is written to `quarantine/<qref>/meta.json`
 * (last, so a listed entry always has its original). Runs before the result is published, so a
 * message is only delivered without its attachment once the attachment is kept.
 * An entry that already exists is left alone: a redelivered verdict, or (POP3, keyed on the
 * message's sha256) the same upstream message retrieved again.
 * Returns the quarantine reference, for the notice.
 */
export async function keepOriginal(
  store: ObjectStore,
  verdict: MessageVerdict,
  removed: (RemovedPart & { node: MessagePart })[],
  log: Logger,
): Promise<string> {
  const { envelope } = verdict;
  const qref = quarantineRef(envelope);
  const metaKey = ObjectKeys.quarantineMeta(qref);
  const exists = await store.stat(metaKey).then(
    () => true,
    () => false,
  );
  if (exists) {
    log.info({ event: 'quarantine.exists', ref: envelope.ref, quarantineRef: qref }, 'original already in quarantine');
    return qref;
  }
  await store.copy(envelope.rawKey, ObjectKeys.quarantineRaw(qref));
  const entry: QuarantineEntry = {
    ref: qref,
    messageRef: envelope.ref,
    time: new Date().toISOString(),
    protocol: envelope.protocol,
    direction: envelope.direction,
    sender: envelope.mailFrom,
    recipients: envelope.rcptTo,
    ...(verdict.subject !== undefined ? { subject: verdict.subject } : {}),
    size: envelope.rawSize,
    sha256: envelope.rawSha256,
    parts: removed.map((r) => ({
      path: r.part,
      ...(r.filename ? { filename: r.filename } : {}),
      contentType: r.node.contentType,
      size: r.node.size,
      sha256: r.node.sha256,
      verdict: r.kind === 'infected' ? 'infected' : 'unscannable',
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.detail ? { signature: r.detail } : {}),
    })),
    releases: [],
  };
  const body = Buffer.from(JSON.stringify(entry, null, 2));
  await store.put(metaKey, Readable.from([body]));
  metrics.quarantined.inc({ protocol: envelope.protocol });
  log.info({ event: 'quarantine.kept', ref: envelope.ref, quarantineRef: qref, parts: entry.parts.length }, `original kept in quarantine as ${qref}`);
  return qref;
}
