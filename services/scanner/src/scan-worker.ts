import type { JsMsg } from '@nats-io/jetstream';
import { ScanJob, Subjects, decode, type Verdict } from '@mailwarden/contracts';
import { SCANNER_MAX_DELIVER, type Bus } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import type { ClamdClient } from '@mailwarden/clamd';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import type { ScanCache } from './scan-cache.js';

export interface ScanWorkerDeps {
  bus: Bus;
  store: ObjectStore;
  clamd: Pick<ClamdClient, 'scan'>;
  log: Logger;
  /** Identical content is scanned once per signature version (see scan-cache.ts). */
  cache?: Pick<ScanCache, 'scan'>;
}

/**
 * Handles one job: stream the part from S3 into clamd, publish the verdict, then ack.
 * A transient failure is retried on a later delivery (possibly another worker); after the last
 * delivery the verdict is `error`, which the reassembler turns into a temporary failure — never "clean".
 */
export async function handleJob(deps: ScanWorkerDeps, msg: JsMsg): Promise<void> {
  let job: ScanJob;
  try {
    job = decode(ScanJob, msg.data);
  } catch (err) {
    deps.log.error({ event: 'job.poison', subject: msg.subject, err }, 'undecodable scan job dropped');
    msg.term();
    return;
  }
  const log = deps.log.child({ ref: job.ref, part: job.part });
  const keepAlive = setInterval(() => msg.working(), 5000);
  try {
    const started = Date.now();
    const scan = async () => {
      // Only real engine scans are timed: cache hits would flatten the latency histogram.
      const end = metrics.scanDuration.startTimer();
      try {
        return await deps.clamd.scan(() => deps.store.get(job.key));
      } finally {
        end();
      }
    };
    const { outcome, source } = deps.cache ? await deps.cache.scan(job.sha256, scan) : { outcome: await scan(), source: 'scan' };
    const verdict: Verdict = {
      ref: job.ref,
      part: job.part,
      parts: job.parts,
      kind: outcome.kind,
      ...(outcome.kind !== 'clean' ? { detail: outcome.signature } : {}),
      ...(outcome.kind === 'unscannable' ? { reason: outcome.reason } : {}),
      engine: outcome.engine,
      scannedAt: new Date().toISOString(),
    };
    await publishVerdict(deps.bus, verdict);
    msg.ack();
    metrics.verdicts.inc({ kind: verdict.kind });
    const event = source === 'scan' ? 'part.scanned' : 'part.cache_hit';
    log.info({ event, verdict: verdict.kind, detail: verdict.detail, ms: Date.now() - started, size: job.size, sha256: job.sha256, ...(source !== 'scan' ? { source } : {}) }, `part ${job.part} ${verdict.kind}`);
  } catch (err) {
    const attempt = msg.info.deliveryCount;
    if (attempt < SCANNER_MAX_DELIVER) {
      log.warn({ event: 'part.retry', attempt, err: (err as Error).message }, 'scan failed, will retry');
      msg.nak(500 * attempt);
      return;
    }
    log.error({ event: 'part.error', attempt, err: (err as Error).message }, 'scan failed for good');
    metrics.errors.inc({ service: 'scanner', kind: (err as Error).name === 'ClamdError' ? 'clamd' : (err as Error).name === 'StorageError' ? 's3' : 'internal' });
    metrics.verdicts.inc({ kind: 'error' });
    try {
      await publishVerdict(deps.bus, { ref: job.ref, part: job.part, parts: job.parts, kind: 'error', detail: (err as Error).message, scannedAt: new Date().toISOString() });
      msg.ack();
    } catch {
      msg.nak(1000);
    }
  } finally {
    clearInterval(keepAlive);
  }
}

async function publishVerdict(bus: Bus, v: Verdict): Promise<void> {
  await bus.js.publish(Subjects.verdict(v.ref, v.part), JSON.stringify(v), { msgID: `verdict-${v.ref}-${v.part}` });
}
