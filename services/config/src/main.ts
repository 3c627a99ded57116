import { parseHostPort, parseInteger, readSettings } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { DeliveryRecords, PolicyStore, PolicyWatcher, connectBus, STREAMS_NEEDED, natsSettings, waitForStreams, natsReady } from '@mailwarden/bus';
import { ClamdClient, parseClamdAddresses, parseClamdBalance } from '@mailwarden/clamd';
import { checkArchive } from '@mailwarden/archive';
import { Subjects, quarantineRetentionDays } from '@mailwarden/contracts';
import { startOpsServer } from '@mailwarden/observability';
import { UpstreamError, deliverMessage } from '@mailwarden/smtp-client';
import { MinioStore } from '@mailwarden/storage';
import { buildApp } from './app.js';
import { ActivityLog } from './activity-log.js';
import { resolveAdminToken } from './admin-token.js';
import { ClamdEngineProbe } from './engine-probe.js';
import { EventFeed } from './event-feed.js';
import { Quarantine } from './quarantine.js';
import { DeliveryQueue } from './delivery-queue.js';
import { clamdRescan } from './quarantine-rescan.js';

const log = createLogger('config');
const env = readSettings();
const listen = parseHostPort(env.CONFIG_LISTEN, 'CONFIG_LISTEN');

// `npm start` passes ADMIN_TOKEN; run by hand without one, the token kept in the state dir is used (or made).
const token = await resolveAdminToken(process.env.MAILWARDEN_STATE_DIR || '.local', { ADMIN_TOKEN: env.ADMIN_TOKEN });
if (token.source !== 'env') log.warn({ event: 'admin_token.from_file', file: token.file, generated: token.source === 'generated' }, `ADMIN_TOKEN not set: using the token in ${token.file}`);
if (token.token.length < 16) log.warn({ event: 'admin_token.weak' }, 'ADMIN_TOKEN is shorter than 16 characters');

const bus = await connectBus({ ...natsSettings(env), name: 'config', log });
// Created by mailwarden-init (this service's NATS user may not create streams).
await waitForStreams(bus.jsm, STREAMS_NEEDED.config, { log });
const policyStore = await PolicyStore.open(bus.kvm);
await policyStore.seedDefaults();

let natsState = 'connected';
void (async () => {
  for await (const s of bus.nc.status()) {
    if (s.type === 'disconnect') natsState = 'disconnected';
    else if (s.type === 'reconnect') natsState = 'connected';
  }
})().catch(() => undefined);

const stop = new AbortController();
const policyWatch = await PolicyWatcher.start(policyStore, log, stop.signal);
const retentionDays = () => quarantineRetentionDays(policyWatch.policy);

// Quarantine: S3 for the entries, SMTP_UPSTREAM for releases, clamd for rescans.
const store = MinioStore.fromSettings(env);
const clamdAddresses = parseClamdAddresses(env.CLAMD_ADDRESSES);
const clamd = new ClamdClient({
  addresses: clamdAddresses,
  balance: parseClamdBalance(env.CLAMD_BALANCE),
  connectTimeoutMs: parseInteger(env.CLAMD_CONNECT_TIMEOUT_MS, 'CLAMD_CONNECT_TIMEOUT_MS', 1),
  scanTimeoutMs: parseInteger(env.CLAMD_SCAN_TIMEOUT_MS, 'CLAMD_SCAN_TIMEOUT_MS', 1),
});
const upstream = env.SMTP_UPSTREAM ? parseHostPort(env.SMTP_UPSTREAM, 'SMTP_UPSTREAM') : undefined;
const smtpTimeoutMs = parseInteger(env.SMTP_TIMEOUT_MS, 'SMTP_TIMEOUT_MS', 1);
const quarantine = new Quarantine({
  store,
  deliver: async (delivery) => {
    if (!upstream) throw new UpstreamError('SMTP_UPSTREAM is not set: the config service has nowhere to deliver a release');
    return deliverMessage(
      { host: upstream.host, port: upstream.port, connectTimeoutMs: 10_000, commandTimeoutMs: smtpTimeoutMs, dataReplyTimeoutMs: parseInteger(env.SMTP_DATA_REPLY_TIMEOUT_MS, 'SMTP_DATA_REPLY_TIMEOUT_MS', 1) },
      { ...delivery, helloName: env.SMTP_HOSTNAME },
    );
  },
  rescan: clamdRescan(clamd, (bytes) => checkArchive(bytes, undefined, { nested: true })),
  audit: async (event) => {
    await bus.js.publish(Subjects.event(event.kind), JSON.stringify(event), { msgID: `audit-${event.ref}-${event.kind}-${event.time}` });
  },
  retentionDays,
  log,
});
// A shorter retention applies at once, not at the next sweep.
policyWatch.onChange(() => void quarantine.sweep().catch((err: Error) => log.warn({ event: 'quarantine.sweep_failed', err: err.message }, 'quarantine sweep failed')));
quarantine.runSweeps(parseInteger(env.QUARANTINE_SWEEP_INTERVAL_MS, 'QUARANTINE_SWEEP_INTERVAL_MS', 1), stop.signal);

const activity = new ActivityLog();
const feed = await EventFeed.start({ js: bus.js, jsm: bus.jsm, activity, log, signal: stop.signal });
// Counters are served only complete when possible; a huge backlog must not keep the API down.
const caughtUp = await Promise.race([feed.caughtUp.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000).unref())]);

const app = await buildApp({
  policyStore,
  activity,
  engine: new ClamdEngineProbe(clamdAddresses),
  quarantine: { quarantine, retentionDays },
  // Queue mode: what the deliverers keep in mw-delivery; retry-now publishes a new delivery job.
  queue: new DeliveryQueue({
    records: await DeliveryRecords.open(bus.kvm),
    store,
    publish: (subject, data, msgID) => bus.js.publish(subject, data, { msgID }),
  }),
  adminToken: token.token,
  log,
  health: () => ({ ok: natsState === 'connected' && !bus.nc.isClosed(), checks: { nats: bus.nc.isClosed() ? 'closed' : natsState } }),
});
const address = await app.listen({ host: listen.host, port: listen.port });
const ops = await startOpsServer({ listen: env.OPS_LISTEN, service: 'config', log, readiness: { nats: () => natsReady(bus), s3: () => store.ready() } });
const policy = await policyStore.get();
log.info(
  { event: 'ready', url: address, ops: ops.address, policyVersion: policy.version, eventsReplayed: activity.sequence, eventsComplete: caughtUp },
  `config service and admin UI on ${address}`,
);

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info({ event: 'shutdown', signal: sig }, 'closing the API, draining NATS');
    setTimeout(() => {
      log.error({ event: 'shutdown.timeout' }, 'shutdown took over 10 s, exiting');
      process.exit(1);
    }, 10_000).unref();
    stop.abort();
    void app
      .close()
      .then(() => ops.close())
      .then(() => bus.nc.drain())
      .finally(() => process.exit(0));
  });
}
