import { readSettings, parseHostPort, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { PolicyStore, PolicyWatcher, connectBus, ensureTopology } from '@mailwarden/bus';
import { MinioStore } from '@mailwarden/storage';
import { BusMessageScanner } from '@mailwarden/pipeline';
import { Pop3Proxy } from './pop3-proxy.js';

const log = createLogger('pop3-gateway');
const env = readSettings();
if (!env.POP3_UPSTREAM) throw new Error('POP3_UPSTREAM is not set: the gateway needs the POP3 server to relay to');
const listen = parseHostPort(env.POP3_LISTEN, 'POP3_LISTEN');
const upstream = parseHostPort(env.POP3_UPSTREAM, 'POP3_UPSTREAM');
const scanTimeoutMs = parseInteger(env.SCAN_TIMEOUT_MS, 'SCAN_TIMEOUT_MS', 1);

const bus = await connectBus({ url: env.NATS_URL, name: 'pop3-gateway', log });
await ensureTopology(bus.jsm, bus.kvm);
const store = new MinioStore({ endpoint: env.S3_ENDPOINT, accessKey: env.S3_ACCESS_KEY, secretKey: env.S3_SECRET_KEY, bucket: env.S3_BUCKET, region: env.S3_REGION });
await store.ensureBucket();
const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);
const scanner = new BusMessageScanner({ bus, store, log, scanTimeoutMs });

const proxy = new Pop3Proxy({
  upstream,
  scanner,
  policy: () => policy.policy,
  log,
  // The scanner's deadline runs from the end of the upload; this one covers the whole retrieval.
  retrieveTimeoutMs: scanTimeoutMs + 5 * 60_000,
});
const address = await proxy.listen(listen.port, listen.host);
log.info(
  { event: 'ready', listen: `${address.address}:${address.port}`, upstream: env.POP3_UPSTREAM, policyVersion: policy.version },
  `pop3 gateway listening on ${address.address}:${address.port}, upstream ${env.POP3_UPSTREAM}`,
);

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ event: 'shutdown', signal: sig, sessions: proxy.activeSessions }, 'closing the listener, finishing sessions');
    stop.abort();
    void proxy
      .close()
      .then(() => bus.nc.drain())
      .finally(() => process.exit(0));
  });
}
