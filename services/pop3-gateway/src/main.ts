import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ConfigError, readSettings, parseHostPort, parseInteger } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { DeliveredSizeRecords, PolicyStore, PolicyWatcher, connectBus, STREAMS_NEEDED, natsSettings, waitForStreams, natsReady, reportTlsUnscanned } from '@mailwarden/bus';
import { MinioStore } from '@mailwarden/storage';
import { BusMessageScanner, newRef } from '@mailwarden/pipeline';
import { TlsMaterial } from '@mailwarden/tls';
import { metrics, startOpsServer } from '@mailwarden/observability';
import { Pop3Proxy, type Pop3ProxyOptions } from './pop3-proxy.js';
import { parseUpstreamTlsMode } from './upstream-tls-mode.js';

const log = createLogger('pop3-gateway');
const env = readSettings();
if (!env.POP3_UPSTREAM) throw new Error('POP3_UPSTREAM is not set: the gateway needs the POP3 server to relay to');
const listen = parseHostPort(env.POP3_LISTEN, 'POP3_LISTEN');
const pop3sListen = env.POP3S_LISTEN ? parseHostPort(env.POP3S_LISTEN, 'POP3S_LISTEN') : undefined;
const upstream = parseHostPort(env.POP3_UPSTREAM, 'POP3_UPSTREAM');
const upstreamTlsMode = parseUpstreamTlsMode(env.POP3_UPSTREAM_TLS);
const scanTimeoutMs = parseInteger(env.SCAN_TIMEOUT_MS, 'SCAN_TIMEOUT_MS', 1);
const maxConnections = parseInteger(env.POP3_MAX_CONNECTIONS, 'POP3_MAX_CONNECTIONS', 1);
if (!/^(true|false)$/.test(env.POP3_REQUIRE_UPSTREAM_TLS)) throw new ConfigError(`POP3_REQUIRE_UPSTREAM_TLS: expected "true" or "false", got "${env.POP3_REQUIRE_UPSTREAM_TLS}"`);
const requireUpstreamTls = env.POP3_REQUIRE_UPSTREAM_TLS === 'true';
const sizeLookaheadMs = parseInteger(env.POP3_SIZE_LOOKAHEAD_MS, 'POP3_SIZE_LOOKAHEAD_MS', 0);

const bus = await connectBus({ ...natsSettings(env), name: 'pop3-gateway', log });
// Created by mailwarden-init (this service's NATS user may not create streams).
await waitForStreams(bus.jsm, STREAMS_NEEDED.pop3Gateway, { log });
const store = MinioStore.fromSettings(env);
await store.ensureBucket({ onRetry: (err, attempt) => log.warn({ event: 's3.bucket_wait', attempt, err: err.message }, 'object storage not ready yet, waiting') });
const stop = new AbortController();
const policy = await PolicyWatcher.start(await PolicyStore.open(bus.kvm), log, stop.signal);
const scanner = new BusMessageScanner({ bus, store, log, scanTimeoutMs });
// Delivered sizes of scanned messages, across sessions: a poll does not rescan old messages for LIST/STAT.
const sizeMemory = sizeLookaheadMs > 0 ? await DeliveredSizeRecords.open(bus.kvm) : undefined;

// The same certificate files as the SMTP gateway: TLS_CERT/TLS_KEY, else the self-signed pair in the state dir.
const tls = await TlsMaterial.load({ cert: env.TLS_CERT, key: env.TLS_KEY, stateDir: join(env.MAILWARDEN_STATE_DIR, 'tls'), hostname: env.SMTP_HOSTNAME, log });
const upstreamTls = {
  verify: env.UPSTREAM_TLS_VERIFY === 'true' || !!env.UPSTREAM_TLS_CA,
  ...(env.UPSTREAM_TLS_CA ? { ca: readFileSync(env.UPSTREAM_TLS_CA) } : {}),
};
// Counted and listed by the config service as sessions that passed unscanned.
const onTlsUnscanned = (info: { client: string }): void => {
  metrics.tlsUnscannedSessions.inc({ protocol: 'pop3' });
  reportTlsUnscanned(bus, log, { ref: newRef(), protocol: 'pop3', direction: 'inbound', client: info.client });
};

const ops = await startOpsServer({ listen: env.OPS_LISTEN, service: 'pop3-gateway', log, readiness: { nats: () => natsReady(bus), s3: () => store.ready() } });

const common: Omit<Pop3ProxyOptions, 'log'> = {
  upstream,
  scanner,
  policy: () => policy.policy,
  // The scanner's deadline runs from the end of the upload; this one covers the whole retrieval.
  retrieveTimeoutMs: scanTimeoutMs + 5 * 60_000,
  tls,
  upstreamTls,
  upstreamImplicitTls: upstreamTlsMode === 'implicit',
  onTlsUnscanned,
  maxConnections,
  requireUpstreamTls,
  sizeLookaheadMs,
  ...(sizeMemory ? { sizeMemory } : {}),
};
const proxies = [{ proxy: new Pop3Proxy({ ...common, log: log.child({ listener: 'pop3' }) }), at: listen, name: 'pop3' }];
if (pop3sListen) proxies.push({ proxy: new Pop3Proxy({ ...common, implicitTls: true, log: log.child({ listener: 'pop3s' }) }), at: pop3sListen, name: 'pop3s' });

const addresses = await Promise.all(
  proxies.map(async ({ proxy, at, name }) => {
    const a: AddressInfo = await proxy.listen(at.port, at.host);
    return `${name}=${a.address}:${a.port}`;
  }),
);
const bound = (name: string) => addresses.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
log.info(
  { event: 'ready', ops: ops.address, listen: bound('pop3'), pop3s: bound('pop3s'), listeners: addresses, upstream: env.POP3_UPSTREAM, upstreamTls: upstreamTlsMode, policyVersion: policy.version },
  `pop3 gateway listening: ${addresses.join(', ')}; upstream ${env.POP3_UPSTREAM}${upstreamTlsMode === 'implicit' ? ' (TLS)' : ''}`,
);

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ event: 'shutdown', signal: sig, sessions: proxies.reduce((n, p) => n + p.proxy.activeSessions, 0) }, 'closing the listeners, finishing sessions');
    ops.setShuttingDown();
    stop.abort();
    tls.close();
    void Promise.all(proxies.map((p) => p.proxy.close()))
      .then(() => bus.nc.drain())
      .then(() => store.close())
      .then(() => ops.close())
      .finally(() => process.exit(0));
  });
}
