import { readFileSync } from 'node:fs';
import { readSettings, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { DeliveryRecords, PolicyStore, PolicyWatcher, connectBus, STREAMS_NEEDED, natsSettings, waitForStreams, natsReady, runWorkLoop } from '@mailwarden/bus';
import { MinioStore } from '@mailwarden/storage';
import { Consumers, Streams } from '@mailwarden/contracts';
import { metrics, startOpsServer } from '@mailwarden/observability';
import { handleVerdict } from './handle-verdict.js';
import { Routes, handleDelivery } from './delivery/index.js';

const log = createLogger('reassembler');
const env = readSettings();
const bus = await connectBus({ ...natsSettings(env), name: 'reassembler', log });
// Created by mailwarden-init (this service's NATS user may not create streams).
await waitForStreams(bus.jsm, STREAMS_NEEDED.reassembler, { log });
const store = MinioStore.fromSettings(env);
const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);
const records = await DeliveryRecords.open(bus.kvm);
const lifetimeMs = parseInteger(env.QUEUE_LIFETIME_MS, 'QUEUE_LIFETIME_MS', 1);
// Queue mode: the same SMTP client, deadlines and upstream TLS checks as the gateway's upstream leg.
const routes = new Routes(
  env,
  {
    connectTimeoutMs: parseInteger(env.SMTP_TIMEOUT_MS, 'SMTP_TIMEOUT_MS', 1),
    commandTimeoutMs: parseInteger(env.SMTP_TIMEOUT_MS, 'SMTP_TIMEOUT_MS', 1),
    dataReplyTimeoutMs: parseInteger(env.SMTP_DATA_REPLY_TIMEOUT_MS, 'SMTP_DATA_REPLY_TIMEOUT_MS', 1),
  },
  { verify: env.UPSTREAM_TLS_VERIFY === 'true' || !!env.UPSTREAM_TLS_CA, ...(env.UPSTREAM_TLS_CA ? { ca: readFileSync(env.UPSTREAM_TLS_CA) } : {}) },
);

const ops = await startOpsServer({
  listen: env.OPS_LISTEN,
  service: 'reassembler',
  log,
  readiness: { nats: () => natsReady(bus), s3: () => store.ready() },
});
metrics.trackPendingJobs('verdicts', async () => (await bus.jsm.consumers.info(Streams.verdicts, Consumers.reassemblers)).num_pending);
metrics.trackQueue(async () => {
  const { state } = await bus.jsm.streams.info(Streams.delivery);
  const oldest = state.messages && state.first_ts ? (Date.now() - Date.parse(state.first_ts)) / 1000 : 0;
  return { messages: state.messages, oldestSeconds: Math.max(0, oldest) };
});

const verdicts = runWorkLoop({
  consumer: () => bus.js.consumers.get(Streams.verdicts, Consumers.reassemblers),
  concurrency: parseInteger(env.REASSEMBLER_CONCURRENCY, 'REASSEMBLER_CONCURRENCY', 1),
  handle: (msg) => handleVerdict({ bus, store, policy, log, queue: { records, hostname: env.SMTP_HOSTNAME, lifetimeMs } }, msg),
  log,
  signal: stop.signal,
});
// Queue mode: the delivery worker beside the reassembler, scaled with it (idle in proxy mode).
const deliveries = runWorkLoop({
  consumer: () => bus.js.consumers.get(Streams.delivery, Consumers.deliverers),
  concurrency: parseInteger(env.DELIVERY_CONCURRENCY, 'DELIVERY_CONCURRENCY', 1),
  handle: (msg) =>
    handleDelivery(
      {
        bus,
        store,
        records,
        routes,
        log,
        lifetimeMs,
        retryMinMs: parseInteger(env.QUEUE_RETRY_MIN_MS, 'QUEUE_RETRY_MIN_MS', 1),
        retryMaxMs: parseInteger(env.QUEUE_RETRY_MAX_MS, 'QUEUE_RETRY_MAX_MS', 1),
      },
      msg,
    ),
  log,
  signal: stop.signal,
});
log.info({ event: 'ready', ops: ops.address, policyVersion: policy.version }, 'reassembler ready');

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ event: 'shutdown', signal: sig }, 'draining');
    ops.setShuttingDown();
    stop.abort();
    void Promise.all([verdicts, deliveries])
      .then(() => routes.close())
      .then(() => bus.nc.drain())
      .then(() => ops.close())
      .finally(() => process.exit(0));
  });
}
