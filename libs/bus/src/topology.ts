import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Buckets, Consumers, Streams } from '@mailwarden/contracts';
import type { Kvm } from '@nats-io/kv';

const ns = (s: number) => s * 1_000_000_000;
const DAY = 24 * 3600;

const STREAMS: (Partial<StreamConfig> & { name: string })[] = [
  // Work queues: a job (one per message, the envelope) or a verdict (one per message, the part map) is removed once a worker acked it.
  { name: Streams.jobs, subjects: ['mw.job.>'], retention: RetentionPolicy.Workqueue, max_age: ns(DAY), duplicate_window: ns(120) },
  { name: Streams.verdicts, subjects: ['mw.verdict.>'], retention: RetentionPolicy.Workqueue, max_age: ns(DAY), duplicate_window: ns(120) },
  { name: Streams.results, subjects: ['mw.result.>'], retention: RetentionPolicy.Limits, max_age: ns(3600), allow_direct: true, duplicate_window: ns(120) },
  { name: Streams.events, subjects: ['mw.event.>'], retention: RetentionPolicy.Limits, max_age: ns(30 * DAY), max_msgs: 100_000 },
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
export const SCANNER_MAX_DELIVER = 4;

/** Idempotent: every service calls it at start, so any of them can come up first. */
export async function ensureTopology(jsm: JetStreamManager, kvm: Kvm): Promise<void> {
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
    max_deliver: SCANNER_MAX_DELIVER,
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
  await kvm.create(Buckets.policy, { history: 64 });
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, cfg: Parameters<JetStreamManager['consumers']['add']>[1]): Promise<void> {
  try {
    await jsm.consumers.info(stream, cfg.durable_name!);
  } catch {
    try {
      await jsm.consumers.add(stream, cfg);
    } catch (err) {
      await jsm.consumers.info(stream, cfg.durable_name!).catch(() => {
        throw err;
      });
    }
  }
}
