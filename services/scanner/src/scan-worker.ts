import { createHash } from 'node:crypto';
import type { JsMsg } from '@nats-io/jetstream';
import { Envelope, Subjects, type MessageVerdict, type PartVerdict } from '@mailwarden/contracts';
import { SCANNER_HEARTBEAT_MS, SCANNER_MAX_DELIVER, decodeOrDrop, keepWorking, type Bus } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import type { ClamdClient } from '@mailwarden/clamd';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import { AnalysisLimitError, MemorySource, analyzeMessage, type AnalysisLimits, type ByteSource, type CheckArchive, type ScanContent } from '@mailwarden/analysis';
import type { ScanCache } from './scan-cache.js';
import { RangeSource } from './range-source.js';

export interface ScanWorkerDeps {
  bus: Bus;
  store: ObjectStore;
  clamd: Pick<ClamdClient, 'scan'>;
  log: Logger;
  /** Identical content is scanned once per signature version (see scan-cache.ts). */
  cache?: Pick<ScanCache, 'scan'>;
  checkArchive?: CheckArchive;
  /** Messages up to this size are read into memory in one GET; larger ones are read by range. Default 16 MB. */
  inMemoryBytes?: number;
  /** Contents of one message scanned at once. Default 4. */
  concurrency?: number;
  limits?: Partial<AnalysisLimits>;
  /**
   * Contents smaller than this skip the scan cache (no KV lookup, no write): a text body is unique
   * to its message and cheaper to scan than to look up. Default 8192.
   */
  cacheMinBytes?: number;
  /** Policy antivirus.rawMessageScan, read per message (it changes live). */
  rawMessageScan?: () => boolean;
}

const DEFAULT_IN_MEMORY = 16 * 1024 * 1024;

/**
 * Handles one job (one message): read raw.eml once, derive and scan every content a client
 * could open (libs/analysis), publish one verdict with the part map, then ack.
 * A transient failure is retried on a later delivery (possibly another worker); after the last
 * attempt the verdict is `error`, which the reassembler turns into a temporary failure — never "clean".
 * A job redelivered past the last attempt (its worker died on it) gets that `error` at once.
 * A message over the analysis limits is `rejected` (a permanent, policy refusal).
 */
export async function handleJob(deps: ScanWorkerDeps, msg: JsMsg): Promise<void> {
  const envelope = decodeOrDrop(Envelope, msg, deps.log, { event: 'job.poison', name: 'scan job' });
  if (!envelope) return;
  const log = deps.log.child({ ref: envelope.ref });
  if (msg.info.deliveryCount > SCANNER_MAX_DELIVER) {
    // Every attempt ended without an answer (its worker died with it, or a crash loop): answer `error` now.
    return giveUp(deps, envelope, msg, log, new Error(`no scanner finished this job in ${SCANNER_MAX_DELIVER} attempts`));
  }
  // Whatever the analysis waits on (ranged reads of raw.eml, clamd), the job stays with this worker.
  const stopWorking = keepWorking(msg, SCANNER_HEARTBEAT_MS);
  const started = Date.now();
  const tally: ScanTally = { scanned: [], cached: 0 };
  try {
    // Queue mode with scanning off: passed on as it came (the reassembler delivers the original).
    const verdict = envelope.scan === false ? passedOn(envelope) : await analyse(deps, envelope, tally, log);
    await publishVerdict(deps.bus, verdict, msg);
    msg.ack();
    for (const p of verdict.parts) if (p.kind !== 'container') metrics.verdicts.inc({ kind: p.verdict.kind });
    metrics.parts.inc({ protocol: envelope.protocol }, verdict.parts.length);
    const found = verdict.parts.filter((p) => p.verdict.kind !== 'clean');
    log.info(
      { event: 'message.analysed', outcome: verdict.outcome, parts: verdict.parts.length, scans: verdict.scans, engineScans: tally.scanned.length, cacheHits: tally.cached, scanned: tally.scanned, findings: found.map((p) => ({ part: p.path, verdict: p.verdict.kind, detail: p.verdict.detail, source: p.verdict.source })), ms: Date.now() - started, size: envelope.rawSize },
      `message ${verdict.outcome}: ${verdict.parts.length} parts, ${verdict.scans} scans, ${found.length} findings`,
    );
  } catch (err) {
    const attempt = msg.info.deliveryCount;
    if (attempt < SCANNER_MAX_DELIVER) {
      log.warn({ event: 'message.retry', attempt, err: (err as Error).message }, 'analysis failed, will retry');
      msg.nak(500 * attempt);
      return;
    }
    await giveUp(deps, envelope, msg, log, err as Error);
  } finally {
    stopWorking();
  }
}

/** The last attempt: an `error` verdict (never "clean"); the job stays until that verdict is published. */
async function giveUp(deps: ScanWorkerDeps, envelope: Envelope, msg: JsMsg, log: Logger, err: Error): Promise<void> {
  log.error({ event: 'message.error', attempt: msg.info.deliveryCount, err: err.message }, 'analysis failed for good');
  metrics.errors.inc({ service: 'scanner', kind: err.name === 'ClamdError' ? 'clamd' : err.name === 'StorageError' ? 's3' : 'internal' });
  metrics.verdicts.inc({ kind: 'error' });
  try {
    await publishVerdict(deps.bus, { envelope, outcome: 'error', error: err.message, rootHeader: { start: 0, end: 0 }, parts: [], scans: 0, scannedAt: new Date().toISOString() }, msg);
    msg.ack();
  } catch {
    msg.nak(1000);
  }
}

/** One GET for a message that fits in memory (the common case), ranged reads for a large one. */
async function openSource(deps: ScanWorkerDeps, envelope: Envelope): Promise<ByteSource> {
  if (envelope.rawSize > (deps.inMemoryBytes ?? DEFAULT_IN_MEMORY)) return new RangeSource(deps.store, envelope.rawKey, envelope.rawSize);
  const chunks: Buffer[] = [];
  for await (const c of await deps.store.get(envelope.rawKey)) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  if (bytes.length !== envelope.rawSize) throw new Error(`raw.eml is ${bytes.length} bytes, the envelope says ${envelope.rawSize}`);
  // the part map must describe the bytes the gateway stored, not what a store or a path changed
  if (createHash('sha256').update(bytes).digest('hex') !== envelope.rawSha256) throw new Error('raw.eml does not have the sha256 the envelope names');
  return new MemorySource(bytes);
}

/** What one message cost the engine: contents (sha256) scanned by clamd, and verdicts the cache answered. */
interface ScanTally {
  scanned: string[];
  cached: number;
}

/** The engine port of the analysis: the scan cache in front of clamd; an engine failure throws (retry). */
function scanWith(deps: ScanWorkerDeps, tally: ScanTally): ScanContent {
  return async (content) => {
    const scan = async () => {
      // Only real engine scans are timed: cache hits would flatten the latency histogram.
      const end = metrics.scanDuration.startTimer();
      try {
        return await deps.clamd.scan(async () => content.open());
      } finally {
        end();
      }
    };
    const cached = deps.cache && content.size >= (deps.cacheMinBytes ?? 8192);
    const { outcome, source } = cached ? await deps.cache!.scan(content.sha256, scan) : { outcome: await scan(), source: 'scan' as const };
    if (source === 'scan') tally.scanned.push(content.sha256);
    else tally.cached++;
    const verdict: PartVerdict = {
      kind: outcome.kind,
      ...(outcome.kind !== 'clean' ? { detail: outcome.signature } : {}),
      ...(outcome.kind === 'unscannable' ? { reason: outcome.reason } : {}),
      engine: outcome.engine,
    };
    return verdict;
  };
}

/**
 * One verdict per job (msgID: a job redone after a crash publishes it once). A rescan job (queue
 * mode, mw.job.rescan.<ref>) is a new job for the same message: its verdict is named by the job.
 */
async function publishVerdict(bus: Bus, v: MessageVerdict, job: JsMsg): Promise<void> {
  const ref = v.envelope.ref;
  const msgID = job.subject === Subjects.rescan(ref) ? `verdict-${ref}-rescan-${job.seq}` : `verdict-${ref}`;
  await bus.js.publish(Subjects.verdict(ref), JSON.stringify(v), { msgID });
}

/** The whole analysis of one message; over the analysis limits it is `rejected` (never half-scanned). */
async function analyse(deps: ScanWorkerDeps, envelope: Envelope, tally: ScanTally, log: Logger): Promise<MessageVerdict> {
  try {
    const source = await openSource(deps, envelope);
    const analysis = await analyzeMessage(source, {
      scan: scanWith(deps, tally),
      ...(deps.checkArchive ? { checkArchive: deps.checkArchive } : {}),
      concurrency: deps.concurrency ?? 4,
      rawScan: deps.rawMessageScan?.() ?? false,
      ...(deps.limits ? { limits: deps.limits } : {}),
    });
    return { envelope, outcome: 'scanned', ...analysis, scannedAt: new Date().toISOString() };
  } catch (err) {
    if (!(err instanceof AnalysisLimitError)) throw err;
    log.warn({ event: 'message.rejected', err: err.message }, 'message over the analysis limits');
    return { envelope, outcome: 'rejected', error: err.message, rootHeader: { start: 0, end: 0 }, parts: [], scans: 0, scannedAt: new Date().toISOString() };
  }
}

/** A verdict with nothing found and nothing analysed (queue mode, scanning off by policy). */
function passedOn(envelope: Envelope): MessageVerdict {
  return { envelope, outcome: 'scanned', rootHeader: { start: 0, end: 0 }, parts: [], scans: 0, scannedAt: new Date().toISOString() };
}
