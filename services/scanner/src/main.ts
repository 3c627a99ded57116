import { readSettings, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { PolicyStore, PolicyWatcher, connectBus, STREAMS_NEEDED, natsSettings, waitForStreams, natsReady, runWorkLoop } from '@mailwarden/bus';
import { metrics, startOpsServer } from '@mailwarden/observability';
import { MinioStore } from '@mailwarden/storage';
import { ClamdClient, parseClamdAddresses, parseClamdBalance } from '@mailwarden/clamd';
import { Consumers, Streams } from '@mailwarden/contracts';
import { checkArchive } from '@mailwarden/archive';
import { handleJob } from './scan-worker.js';
import { openScanCache, scanCacheIdentityRefreshMs } from './scan-cache.js';

const log = createLogger('scanner');
const env = readSettings();
const bus = await connectBus({ ...natsSettings(env), name: 'scanner', log });
// Created by mailwarden-init (this service's NATS user may not create streams).
await waitForStreams(bus.jsm, STREAMS_NEEDED.scanner, { log });
const store = MinioStore.fromSettings(env);
const clamd = new ClamdClient({
  addresses: parseClamdAddresses(env.CLAMD_ADDRESSES),
  balance: parseClamdBalance(env.CLAMD_BALANCE),
  connectTimeoutMs: parseInteger(env.CLAMD_CONNECT_TIMEOUT_MS, 'CLAMD_CONNECT_TIMEOUT_MS', 1),
  scanTimeoutMs: parseInteger(env.CLAMD_SCAN_TIMEOUT_MS, 'CLAMD_SCAN_TIMEOUT_MS', 1),
  // Each engine's identity (VERSION + database probe) keys the scan cache; learned again this often.
  identityRefreshMs: scanCacheIdentityRefreshMs(process.env),
});

const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);
const cache = await openScanCache({ kvm: bus.kvm, clamd, log, env: process.env });
const ops = await startOpsServer({
  listen: env.OPS_LISTEN,
  service: 'scanner',
  log,
  readiness: { nats: () => natsReady(bus), s3: () => store.ready(), clamd: (signal) => clamd.ping(signal) },
});
metrics.trackPendingJobs('jobs', async () => (await bus.jsm.consumers.info(Streams.jobs, Consumers.scanners)).num_pending);
const done = runWorkLoop({
  consumer: () => bus.js.consumers.get(Streams.jobs, Consumers.scanners),
  concurrency: parseInteger(env.SCANNER_CONCURRENCY, 'SCANNER_CONCURRENCY', 1),
  handle: (msg) =>
    handleJob(
      {
        bus,
        store,
        clamd,
        log,
        cache,
        checkArchive: (bytes) => checkArchive(bytes, undefined, { nested: true }),
        cacheMinBytes: parseInteger(env.SCAN_CACHE_MIN_BYTES, 'SCAN_CACHE_MIN_BYTES', 0),
        rawMessageScan: () => policy.policy.antivirus.rawMessageScan === true,
        concurrency: parseInteger(env.SCANNER_PART_CONCURRENCY, 'SCANNER_PART_CONCURRENCY', 1),
        inMemoryBytes: parseInteger(env.SCANNER_MEMORY_BYTES, 'SCANNER_MEMORY_BYTES', 1),
        limits: {
          maxParts: parseInteger(env.ANALYSIS_MAX_PARTS, 'ANALYSIS_MAX_PARTS', 1),
          maxDepth: parseInteger(env.ANALYSIS_MAX_DEPTH, 'ANALYSIS_MAX_DEPTH', 1),
          maxHeaderBytes: parseInteger(env.ANALYSIS_MAX_HEADER_BYTES, 'ANALYSIS_MAX_HEADER_BYTES', 1),
        },
      },
      msg,
    ),
  log,
  signal: stop.signal,
});
log.info({ event: 'ready', ops: ops.address, clamd: env.CLAMD_ADDRESSES }, 'scanner ready');

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
