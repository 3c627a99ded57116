import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Buckets, Consumers, Streams, kvStream } from '@mailwarden/contracts';
import type { Kvm } from '@nats-io/kv';
import type { Logger } from '@mailwarden/log';

const ns = (s: number) => s * 1_000_000_000;
const DAY = 24 * 3600;

const STREAMS: (Partial<StreamConfig> & { name: string })[] = [
  // Work queues: a job (one per message, the envelope) or a verdict (one per message, the part map) is removed once a worker acked it.
  { name: Streams.jobs, subjects: ['mw.job.>'], retention: RetentionPolicy.Workqueue, max_age: ns(DAY), duplicate_window: ns(120) },
  { name: Streams.verdicts, subjects: ['mw.verdict.>'], retention: RetentionPolicy.Workqueue, max_age: ns(DAY), duplicate_window: ns(120) },
  { name: Streams.results, subjects: ['mw.result.>'], retention: RetentionPolicy.Limits, max_age: ns(3600), allow_direct: true, duplicate_window: ns(120) },
  { name: Streams.events, subjects: ['mw.event.>'], retention: RetentionPolicy.Limits, max_age: ns(30 * DAY), max_msgs: 100_000 },
  // Queue mode: a delivery job stays until it is acked (every recipient delivered or bounced); no
  // age limit, the deliverer enforces QUEUE_LIFETIME_MS itself and bounces (a silent expiry would lose mail).
  { name: Streams.delivery, subjects: ['mw.delivery.>'], retention: RetentionPolicy.Workqueue, duplicate_window: ns(120) },
];

/**
 * Deadlines the workers rely on: an unacked job is handed to another worker after ack_wait, unless
 * its worker says it is still working on it (`msg.working()`, every *_HEARTBEAT_MS: several
 * heartbeats fit in one ack wait, so one late timer never loses a job).
 */
export const SCANNER_ACK_WAIT_MS = 30_000;
export const SCANNER_HEARTBEAT_MS = 5_000;
export const REASSEMBLER_ACK_WAIT_MS = 10_000;
export const REASSEMBLER_HEARTBEAT_MS = 2_500;
/**
 * Attempts at one scan job; the last one publishes an `error` verdict (a 451 in proxy mode, a
 * rescan in queue mode). JetStream itself never drops a job (the consumer's max_deliver is -1): a
 * cap there would silently lose a job whose last attempt died with its worker, and in queue mode
 * that message already had its 250.
 */
export const SCANNER_MAX_DELIVER = 4;
/**
 * Queue mode: a delivery whose deliverer went silent is handed to another after this; the
 * deliverer says `working()` every DELIVERER_HEARTBEAT_MS and holds the message's lease in
 * `mw-delivery` as long (a retry-now copy of the job waits for it), so a killed deliverer's
 * message is taken up again within about 20 s.
 */
export const DELIVERER_ACK_WAIT_MS = 20_000;
export const DELIVERER_HEARTBEAT_MS = 4_000;
/** How long the records of `mw-delivery` live after their last write (done records: no repeat within it). */
export const DELIVERY_RECORD_TTL_MS = 30 * 24 * 3600 * 1000;

/**
 * How long the POP3 gateway remembers a message's delivered size (`mw-pop3-sizes`): a message left
 * on the server is not rescanned by a poll within this time (each entry lives from its last write).
 */
export const POP3_SIZE_TTL_MS = 30 * 24 * 3600 * 1000;

/** Default lifetime of a scan cache entry (SCAN_CACHE_TTL_MS). */
export const SCAN_CACHE_TTL_MS = 24 * 3600 * 1000;

export interface TopologyOptions {
  /** Also create the scan cache bucket with this TTL (mailwarden-init does; tests may leave it to the scanner). */
  scanCacheTtlMs?: number;
}

/**
 * Creates (or brings up to date) the streams, the work-queue consumers and the KV buckets.
 * Idempotent. Needs the JetStream API rights only the `mailwarden-init` NATS user has
 * (deploy/nats/auth.conf): the init step (init-cli.ts) runs it, the services wait for it
 * (waitForStreams).
 */
export async function ensureTopology(jsm: JetStreamManager, kvm: Kvm, opts: TopologyOptions = {}): Promise<void> {
  for (const cfg of STREAMS) {
    const info = await jsm.streams.info(cfg.name).catch(() => undefined);
    if (!info) {
      try {
        await jsm.streams.add({ storage: StorageType.File, ...cfg });
      } catch (err) {
        // Lost the race against another service creating it.
        await jsm.streams.info(cfg.name).catch(() => {
          throw err;
        });
      }
      continue;
    }
    // A stream made by an older version: bring the settings that may change up to date.
    const { max_age, allow_direct, duplicate_window, max_msgs } = cfg;
    const want = Object.fromEntries(Object.entries({ max_age, allow_direct, duplicate_window, max_msgs }).filter(([, v]) => v !== undefined));
    if (Object.entries(want).some(([k, v]) => info.config[k as keyof typeof info.config] !== v)) await jsm.streams.update(cfg.name, want);
  }
  await ensureConsumer(jsm, Streams.jobs, {
    durable_name: Consumers.scanners,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: SCANNER_ACK_WAIT_MS * 1_000_000,
    max_deliver: -1,
    max_ack_pending: 10_000,
  });
  await ensureConsumer(jsm, Streams.verdicts, {
    durable_name: Consumers.reassemblers,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: REASSEMBLER_ACK_WAIT_MS * 1_000_000,
    max_deliver: -1,
    max_ack_pending: 10_000,
  });
  await ensureConsumer(jsm, Streams.delivery, {
    durable_name: Consumers.deliverers,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: DELIVERER_ACK_WAIT_MS * 1_000_000,
    // Retries are naks with a delay (exponential backoff) until the lifetime is over: no cap here.
    max_deliver: -1,
    // Messages waiting for their next attempt count as pending acks: room for a deep queue.
    max_ack_pending: 1_000_000,
  });
  await kvm.create(Buckets.policy, { history: 64 });
  await kvm.create(Buckets.delivery, { history: 1, ttl: DELIVERY_RECORD_TTL_MS });
  await kvm.create(Buckets.pop3Sizes, { history: 1, ttl: POP3_SIZE_TTL_MS });
  if (opts.scanCacheTtlMs !== undefined) await kvm.create(Buckets.scanCache, { history: 1, ttl: opts.scanCacheTtlMs });
}

/** The streams each service needs before it can start (KV buckets by their stream, `KV_<bucket>`). */
export const STREAMS_NEEDED = {
  gateway: [Streams.jobs, Streams.results, Streams.events, Streams.delivery, kvStream(Buckets.policy)],
  /** The gateway's, plus the memory of delivered sizes (look-ahead for LIST/STAT). */
  pop3Gateway: [Streams.jobs, Streams.results, Streams.events, Streams.delivery, kvStream(Buckets.policy), kvStream(Buckets.pop3Sizes)],
  scanner: [Streams.jobs, Streams.verdicts, kvStream(Buckets.scanCache), kvStream(Buckets.policy)],
  reassembler: [Streams.verdicts, Streams.results, Streams.events, Streams.delivery, kvStream(Buckets.delivery), kvStream(Buckets.policy)],
  config: [Streams.events, Streams.delivery, kvStream(Buckets.delivery), kvStream(Buckets.policy)],
} as const;

/**
 * Waits until every stream in `names` exists (STREAM.INFO only: the services may not create them).
 * A service started before the init step (or before NATS has its streams back) waits here,
 * logging once, instead of failing.
 */
export async function waitForStreams(jsm: JetStreamManager, names: readonly string[], opts: { log?: Logger; signal?: AbortSignal; intervalMs?: number } = {}): Promise<void> {
  let logged = false;
  for (;;) {
    const missing: string[] = [];
    for (const name of names) if (!(await jsm.streams.info(name).catch(() => undefined))) missing.push(name);
    if (!missing.length) {
      if (logged) opts.log?.info({ event: 'bus.topology_ready' }, 'streams are there');
      return;
    }
    if (!logged) {
      opts.log?.warn({ event: 'bus.topology_missing', missing }, `waiting for ${missing.join(', ')} (created by mailwarden-init)`);
      logged = true;
    }
    if (opts.signal?.aborted) throw new Error(`streams missing: ${missing.join(', ')}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1000));
  }
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, cfg: Parameters<JetStreamManager['consumers']['add']>[1]): Promise<void> {
  const info = await jsm.consumers.info(stream, cfg.durable_name!).catch(() => undefined);
  if (info) {
    // A consumer made by an older version: bring the settings that may change up to date.
    const { max_deliver, ack_wait, max_ack_pending } = cfg;
    const want = Object.fromEntries(Object.entries({ max_deliver, ack_wait, max_ack_pending }).filter(([, v]) => v !== undefined));
    if (Object.entries(want).some(([k, v]) => info.config[k as keyof typeof info.config] !== v)) await jsm.consumers.update(stream, cfg.durable_name!, want);
    return;
  }
  try {
    await jsm.consumers.add(stream, cfg);
  } catch (err) {
    // Lost the race against another service creating it.
    await jsm.consumers.info(stream, cfg.durable_name!).catch(() => {
      throw err;
    });
  }
}
