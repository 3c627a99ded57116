import { readSettings, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { PolicyStore, PolicyWatcher, connectBus, ensureTopology, runWorkLoop } from '@mailwarden/bus';
import { MinioStore } from '@mailwarden/storage';
import { Buckets, Consumers, Streams } from '@mailwarden/contracts';
import { metrics, startOpsServer } from '@mailwarden/observability';
import { handleVerdict } from './join.js';

const log = createLogger('reassembler');
const env = readSettings();
const bus = await connectBus({ url: env.NATS_URL, name: 'reassembler', log });
await ensureTopology(bus.jsm, bus.kvm);
const store = new MinioStore({ endpoint: env.S3_ENDPOINT, accessKey: env.S3_ACCESS_KEY, secretKey: env.S3_SECRET_KEY, bucket: env.S3_BUCKET, region: env.S3_REGION });
const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);
const joins = await bus.kvm.open(Buckets.joins);

const ops = await startOpsServer({
  listen: env.OPS_LISTEN,
  service: 'reassembler',
  log,
  readiness: {
    nats: async () => {
      if (bus.nc.isClosed()) return false;
      await bus.nc.flush();
      return true;
    },
    s3: () => store.client.bucketExists(env.S3_BUCKET),
  },
});
metrics.trackPendingJobs('verdicts', async () => (await bus.jsm.consumers.info(Streams.verdicts, Consumers.reassemblers)).num_pending);

const done = runWorkLoop({
  consumer: () => bus.js.consumers.get(Streams.verdicts, Consumers.reassemblers),
  concurrency: parseInteger(env.REASSEMBLER_CONCURRENCY, 'REASSEMBLER_CONCURRENCY', 1),
  handle: (msg) => handleVerdict({ bus, store, policy, log, joins }, msg),
  log,
  signal: stop.signal,
});
log.info({ event: 'ready', ops: ops.address, policyVersion: policy.version }, 'reassembler ready');

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ event: 'shutdown', signal: sig }, 'draining');
    ops.setShuttingDown();
    stop.abort();
    void done
      .then(() => bus.nc.drain())
      .then(() => ops.close())
      .finally(() => process.exit(0));
  });
}
