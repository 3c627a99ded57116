import { readSettings, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { PolicyStore, PolicyWatcher, connectBus, ensureTopology } from '@mailwarden/bus';
import { MinioStore } from '@mailwarden/storage';
import { BusMessageScanner } from '@mailwarden/pipeline';
import type { AddressInfo } from 'node:net';
import { createSmtpProxy } from './smtp-proxy.js';
import { listenerSpecs } from './listeners.js';

const log = createLogger('smtp-gateway');
const env = readSettings();
const specs = listenerSpecs(env);
const bus = await connectBus({ url: env.NATS_URL, name: 'smtp-gateway', log });
await ensureTopology(bus.jsm, bus.kvm);
const store = new MinioStore({ endpoint: env.S3_ENDPOINT, accessKey: env.S3_ACCESS_KEY, secretKey: env.S3_SECRET_KEY, bucket: env.S3_BUCKET, region: env.S3_REGION });
await store.ensureBucket();
const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);
const scanner = new BusMessageScanner({ bus, store, log, scanTimeoutMs: parseInteger(env.SCAN_TIMEOUT_MS, 'SCAN_TIMEOUT_MS', 1) });

const servers = specs.map((spec) => {
  const server = createSmtpProxy({
    direction: spec.direction,
    hostname: env.SMTP_HOSTNAME,
    upstream: spec.upstream,
    scanner,
    policy: () => policy.policy,
    log: log.child({ listener: spec.direction }),
    commandTimeoutMs: parseInteger(env.SMTP_TIMEOUT_MS, 'SMTP_TIMEOUT_MS', 1),
  });
  server.on('error', (err) => log.error({ event: 'smtp.server_error', err }, 'smtp server error'));
  return { spec, server };
});

// The advertised SIZE and its enforcement follow the live policy.
policy.onChange((p) => {
  for (const { server } of servers) (server.options as { size?: number }).size = p.limits.maxMessageBytes;
});

const addresses = await Promise.all(
  servers.map(
    ({ spec, server }) =>
      new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(spec.listen.port, spec.listen.host, () => {
          const a = server.server.address() as AddressInfo;
          resolve(`${spec.direction}=${a.address}:${a.port}`);
        });
      }),
  ),
);
log.info({ event: 'ready', listeners: addresses, policyVersion: policy.version }, `smtp gateway listening: ${addresses.join(', ')}`);

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ event: 'shutdown', signal: sig }, 'closing listeners, finishing sessions');
    stop.abort();
    let open = servers.length;
    for (const { server } of servers) server.close(() => --open === 0 && void bus.nc.drain().finally(() => process.exit(0)));
  });
}
