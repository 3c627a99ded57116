import { readSettings, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { PolicyStore, PolicyWatcher, connectBus, STREAMS_NEEDED, natsSettings, waitForStreams, natsReady, reportTlsUnscanned } from '@mailwarden/bus';
import { MinioStore } from '@mailwarden/storage';
import { BusMessageQueue, BusMessageScanner, newRef } from '@mailwarden/pipeline';
import { Streams } from '@mailwarden/contracts';
import { TlsMaterial } from '@mailwarden/tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startOpsServer, metrics } from '@mailwarden/observability';
import { createSmtpProxy } from './smtp-proxy.js';
import { listenerSpecs } from './listeners.js';
import { parseClientIdentityMode } from './client-identity.js';
import { BackPressure } from './back-pressure.js';
import { queueAcceptanceFor } from './queue-mode.js';
import { logServerError } from './server-error.js';

const log = createLogger('smtp-gateway');
const env = readSettings();
const specs = listenerSpecs(env);
const commandTimeoutMs = parseInteger(env.SMTP_TIMEOUT_MS, 'SMTP_TIMEOUT_MS', 1);
const dataReplyTimeoutMs = parseInteger(env.SMTP_DATA_REPLY_TIMEOUT_MS, 'SMTP_DATA_REPLY_TIMEOUT_MS', 1);
const maxConnections = parseInteger(env.SMTP_MAX_CONNECTIONS, 'SMTP_MAX_CONNECTIONS', 1);
const clientIdentity = parseClientIdentityMode(env.SMTP_UPSTREAM_XCLIENT);
const bus = await connectBus({ ...natsSettings(env), name: 'smtp-gateway', log });
// Created by mailwarden-init (this service's NATS user may not create streams).
await waitForStreams(bus.jsm, STREAMS_NEEDED.gateway, { log });
const store = MinioStore.fromSettings(env);
await store.ensureBucket({ onRetry: (err, attempt) => log.warn({ event: 's3.bucket_wait', attempt, err: err.message }, 'object storage not ready yet, waiting') });
const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);
const scanner = new BusMessageScanner({ bus, store, log, scanTimeoutMs: parseInteger(env.SCAN_TIMEOUT_MS, 'SCAN_TIMEOUT_MS', 1) });

const tls = await TlsMaterial.load({ cert: env.TLS_CERT, key: env.TLS_KEY, stateDir: join(env.MAILWARDEN_STATE_DIR, 'tls'), hostname: env.SMTP_HOSTNAME, log });
const upstreamTls = {
  verify: env.UPSTREAM_TLS_VERIFY === 'true' || !!env.UPSTREAM_TLS_CA,
  ...(env.UPSTREAM_TLS_CA ? { ca: readFileSync(env.UPSTREAM_TLS_CA) } : {}),
};
// Counted and listed by the config service as sessions that passed unscanned.
const onTlsUnscanned = (info: { client: string; direction: 'inbound' | 'outbound' }) => {
  metrics.tlsUnscannedSessions.inc({ protocol: 'smtp' });
  reportTlsUnscanned(bus, log, { ref: newRef(), protocol: 'smtp', ...info });
};

// Queue mode (SMTP_DELIVERY / SMTP_OUTBOUND_DELIVERY = queue): the 250 once the message is durable.
const scanTimeoutMs = parseInteger(env.SCAN_TIMEOUT_MS, 'SCAN_TIMEOUT_MS', 1);
const queueMode = {
  queue: new BusMessageQueue({ bus, store, log, timeoutMs: scanTimeoutMs }),
  backPressure: new BackPressure({
    maxDepth: parseInteger(env.QUEUE_MAX_DEPTH, 'QUEUE_MAX_DEPTH', 1),
    // Waiting to be scanned (jobs) and waiting for delivery: both are mail the gateway has taken.
    depth: async () => (await bus.jsm.streams.info(Streams.jobs)).state.messages + (await bus.jsm.streams.info(Streams.delivery)).state.messages,
    healthy: async () => (await natsReady(bus)) && (await store.ready()),
  }),
  hostname: env.SMTP_HOSTNAME,
  rcptCacheMs: parseInteger(env.QUEUE_RCPT_VERIFY_CACHE_MS, 'QUEUE_RCPT_VERIFY_CACHE_MS', 0),
  timeouts: { connectTimeoutMs: commandTimeoutMs, commandTimeoutMs },
  upstreamTls,
  log,
};

const ops = await startOpsServer({
  listen: env.OPS_LISTEN,
  service: 'smtp-gateway',
  log,
  readiness: { nats: () => natsReady(bus), s3: () => store.ready() },
});

const servers = specs.map((spec) => {
  const server = createSmtpProxy({
    tls,
    implicitTls: spec.implicitTls,
    upstreamTls,
    onTlsUnscanned,
    direction: spec.direction,
    hostname: env.SMTP_HOSTNAME,
    upstream: spec.upstream,
    scanner,
    policy: () => policy.policy,
    log: log.child({ listener: spec.direction }),
    commandTimeoutMs,
    dataReplyTimeoutMs,
    maxConnections,
    clientIdentity,
    ...(spec.delivery === 'queue' ? { queue: queueAcceptanceFor(queueMode, spec) } : {}),
  });
  server.on('error', (err) => logServerError(log, err));
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
          resolve(`${spec.implicitTls ? 'smtps' : spec.direction}=${a.address}:${a.port}${spec.delivery === 'queue' ? ' (queue)' : ''}`);
        });
      }),
  ),
);
log.info({ event: 'ready', listeners: addresses, ops: ops.address, policyVersion: policy.version }, `smtp gateway listening: ${addresses.join(', ')}`);

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ event: 'shutdown', signal: sig }, 'closing listeners, finishing sessions');
    ops.setShuttingDown();
    stop.abort();
    let open = servers.length;
    for (const { server } of servers)
      server.close(
        () =>
          --open === 0 &&
          void bus.nc
            .drain()
            .then(() => store.close())
            .then(() => ops.close())
            .finally(() => process.exit(0)),
      );
  });
}
