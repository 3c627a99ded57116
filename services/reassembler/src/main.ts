import { readSettings, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { PolicyStore, PolicyWatcher, connectBus, STREAMS_NEEDED, natsSettings, waitForStreams, natsReady, runWorkLoop } from '@mailwarden/bus';
import { MinioStore } from '@mailwarden/storage';
import { Consumers, Streams } from '@mailwarden/contracts';
import { metrics, startOpsServer } from '@mailwarden/observability';
import { handleVerdict } from './handle-verdict.js';

const log = createLogger('reassembler');
const env = readSettings();
const bus = await connectBus({ ...natsSettings(env), name: 'reassembler', log });
// Created by mailwarden-init (this service's NATS user may not create streams).
await waitForStreams(bus.jsm, STREAMS_NEEDED.reassembler, { log });
const store = MinioStore.fromSettings(env);
const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);

const ops = await startOpsServer({
  listen: env.OPS_LISTEN,
  service: 'reassembler',
  log,
  readiness: { nats: () => natsReady(bus), s3: () => store.ready() },
});
metrics.trackPendingJobs('verdicts', async () => (await bus.jsm.consumers.info(Streams.verdicts, Consumers.reassemblers)).num_pending);

const done = runWorkLoop({
  consumer: () => bus.js.consumers.get(Streams.verdicts, Consumers.reassemblers),
  concurrency: parseInteger(env.REASSEMBLER_CONCURRENCY, 'REASSEMBLER_CONCURRENCY', 1),
  handle: (msg) => handleVerdict({ bus, store, policy, log }, msg),
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
