/**
 * The Mailwarden metrics, defined once. Every name starts with `mailwarden_`; counters end in
 * `_total`. Services import `metrics` and bump them where the event happens; the ops server
 * (`startOpsServer`) serves them at /metrics with prom-client's default process metrics.
 *
 * Label values are small closed sets (the types below), never message data: a label value per
 * message reference or sender would make every series unique and exhaust Prometheus.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Protocol = 'smtp' | 'pop3';
export type Direction = 'inbound' | 'outbound';
/** How a message left the gateway: upstream accepted it, the client got a 4xx/-ERR [SYS/TEMP], or a 5xx/-ERR. */
export type MessageOutcome = 'delivered' | 'queued' | 'tempfail' | 'refused';
export type VerdictKind = 'clean' | 'infected' | 'unscannable' | 'error';
/** Why an attachment was replaced by a notice: a signature, or the unscannable reason with policy `remove`. */
export type RemovalReason = 'infected' | 'encrypted' | 'corrupt' | 'limits';
/** Work queues whose backlog is exported as `mailwarden_pending_jobs{queue}`. */
export type Queue = 'jobs' | 'verdicts';

/** Scan latency buckets, seconds: a cached or tiny part (5 ms) up to clamd's scan deadline (60 s). */
export const SCAN_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60] as const;

/** A backlog reader, called at scrape time; see `trackPendingJobs`. */
export type PendingJobsReader = () => Promise<number>;

/** How long one backlog read may take during a scrape before the last value is served instead. */
const PENDING_READ_TIMEOUT_MS = 1000;

/** Queue mode: the delivery queue as one read gives it (messages waiting, age of the oldest in seconds). */
export type QueueReader = () => Promise<{ messages: number; oldestSeconds: number }>;

/** Runs `read` with the scrape deadline; undefined when it is slow or fails (the last value stays). */
async function readWithin<T>(read: () => Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      read(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), PENDING_READ_TIMEOUT_MS);
      }),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

export function createMetrics(registry: Registry) {
  const registers = [registry];
  const pendingReaders = new Map<Queue, PendingJobsReader>();
  let queueReader: QueueReader | undefined;
  let queueRead: Promise<{ messages: number; oldestSeconds: number } | undefined> | undefined;
  // Both queue gauges are collected in one scrape: one read serves them.
  const readQueue = () => {
    if (!queueReader) return Promise.resolve(undefined);
    queueRead ??= readWithin(queueReader).finally(() => setTimeout(() => (queueRead = undefined), 100));
    return queueRead;
  };

  const metrics = {
    messages: new Counter({
      name: 'mailwarden_messages_total',
      help: 'Messages handled by a gateway, by protocol, direction and outcome (delivered|queued|tempfail|refused; queued = accepted in queue mode).',
      labelNames: ['protocol', 'direction', 'outcome'] as const,
      registers,
    }),
    parts: new Counter({
      name: 'mailwarden_parts_total',
      help: 'Parts in the part maps scanners published (leaves, containers, regions), by protocol.',
      labelNames: ['protocol'] as const,
      registers,
    }),
    verdicts: new Counter({
      name: 'mailwarden_verdicts_total',
      help: 'Part verdicts in the part maps scanners published, by kind (clean|infected|unscannable|error).',
      labelNames: ['kind'] as const,
      registers,
    }),
    removedAttachments: new Counter({
      name: 'mailwarden_removed_attachments_total',
      help: 'Attachments replaced by a notice, by reason (infected|encrypted|corrupt|limits).',
      labelNames: ['reason'] as const,
      registers,
    }),
    scanDuration: new Histogram({
      name: 'mailwarden_scan_duration_seconds',
      help: 'Time to scan one part with clamd (S3 read included), seconds.',
      buckets: [...SCAN_DURATION_BUCKETS],
      registers,
    }),
    pendingJobs: new Gauge({
      name: 'mailwarden_pending_jobs',
      help: 'Work waiting in a JetStream work queue (jobs|verdicts) for a worker; the same value from every worker of the queue.',
      labelNames: ['queue'] as const,
      registers,
      async collect() {
        await Promise.all(
          [...pendingReaders].map(async ([queue, read]) => {
            let timer: NodeJS.Timeout | undefined;
            try {
              const n = await Promise.race([
                read(),
                new Promise<never>((_, reject) => {
                  timer = setTimeout(() => reject(new Error('timeout')), PENDING_READ_TIMEOUT_MS);
                }),
              ]);
              if (Number.isFinite(n)) this.set({ queue }, n);
            } catch {
              // Keep the last value: a slow or failed read must not fail the scrape.
            } finally {
              clearTimeout(timer);
            }
          }),
        );
      },
    }),
    errors: new Counter({
      name: 'mailwarden_errors_total',
      help: 'Internal errors by service and a stable kind (e.g. nats, s3, clamd, timeout, upstream).',
      labelNames: ['service', 'kind'] as const,
      registers,
    }),
    serviceInfo: new Gauge({
      name: 'mailwarden_service_info',
      help: 'Always 1, labelled with the service name (set by startOpsServer): join it on (job, instance) to group process metrics by service.',
      labelNames: ['service'] as const,
      registers,
    }),
    tlsUnscannedSessions: new Counter({
      name: 'mailwarden_tls_unscanned_sessions_total',
      help: 'Sessions relayed encrypted end to end (TLS policy passthrough), hence not scanned, by protocol.',
      labelNames: ['protocol'] as const,
      registers,
    }),
    quarantined: new Counter({
      name: 'mailwarden_quarantined_total',
      help: 'Originals kept in quarantine because the policy removed something, by protocol (a POP3 message retrieved again counts once).',
      labelNames: ['protocol'] as const,
      registers,
    }),
    quarantineObjects: new Gauge({
      name: 'mailwarden_quarantine_entries',
      help: 'Entries in quarantine, as of the last sweep or listing by the config service.',
      registers,
    }),
    quarantineBytes: new Gauge({
      name: 'mailwarden_quarantine_bytes',
      help: 'Bytes in quarantine (originals and metadata), as of the last sweep or listing by the config service.',
      registers,
    }),
    quarantineReleases: new Counter({
      name: 'mailwarden_quarantine_releases_total',
      help: 'Quarantined originals released (delivered) by an administrator, by outcome (delivered|failed).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    quarantineDeletions: new Counter({
      name: 'mailwarden_quarantine_deletions_total',
      help: 'Quarantine entries deleted, by cause (admin: DELETE by an administrator; expired: the retention sweep).',
      labelNames: ['cause'] as const,
      registers,
    }),
    queueMessages: new Gauge({
      name: 'mailwarden_queue_messages',
      help: 'Queue mode: messages in the delivery queue (finished scanning, waiting for or between delivery attempts).',
      registers,
      async collect() {
        const q = await readQueue();
        if (q) this.set(q.messages);
      },
    }),
    queueOldestSeconds: new Gauge({
      name: 'mailwarden_queue_oldest_seconds',
      help: 'Queue mode: age of the oldest message in the delivery queue, seconds (0 when empty).',
      registers,
      async collect() {
        const q = await readQueue();
        if (q) this.set(q.oldestSeconds);
      },
    }),
    queueDeliveries: new Counter({
      name: 'mailwarden_queue_deliveries_total',
      help: 'Queue mode: per-recipient outcomes of delivery attempts (delivered|deferred|failed).',
      labelNames: ['result'] as const,
      registers,
    }),
    queueBounces: new Counter({
      name: 'mailwarden_queue_bounces_total',
      help: 'Queue mode: delivery status notifications (DSN) queued for senders.',
      registers,
    }),
    pop3Sizes: new Counter({
      name: 'mailwarden_pop3_sizes_total',
      help: 'POP3 LIST/STAT: sizes of messages not retrieved yet, by where they came from (memory = remembered from an earlier session, scan = scanned ahead, upstream = upstream\'s size kept: budget spent or scan failed).',
      labelNames: ['source'] as const,
      registers,
    }),
    queueRefusals: new Counter({
      name: 'mailwarden_queue_refusals_total',
      help: 'Queue mode: sessions answered 451 by back-pressure, by reason (depth|unhealthy).',
      labelNames: ['reason'] as const,
      registers,
    }),

    /** Export the delivery queue's depth and age (queue mode), read at each scrape. */
    trackQueue(read: QueueReader): void {
      queueReader = read;
    },

    /**
     * Export the backlog of a work queue, read at each scrape (e.g. the consumer's `num_pending`).
     * A read slower than 1 s or failing keeps the last value. Returns a function that stops it.
     */
    trackPendingJobs(queue: Queue, read: PendingJobsReader): () => void {
      pendingReaders.set(queue, read);
      return () => {
        if (pendingReaders.get(queue) === read) pendingReaders.delete(queue);
      };
    },
  };
  return metrics;
}

export type MailwardenMetrics = ReturnType<typeof createMetrics>;

/** The registry every service serves at /metrics (the ops server's default). */
export const registry = new Registry();

/** The Mailwarden metrics on `registry`: import and bump these. */
export const metrics: MailwardenMetrics = createMetrics(registry);
