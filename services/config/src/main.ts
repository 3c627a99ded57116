import { parseHostPort, readSettings } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { PolicyStore, connectBus, STREAMS_NEEDED, natsSettings, waitForStreams } from '@mailwarden/bus';
import { parseClamdAddresses } from '@mailwarden/clamd';
import { buildApp } from './app.js';
import { ActivityLog } from './activity-log.js';
import { resolveAdminToken } from './admin-token.js';
import { ClamdEngineProbe } from './engine-probe.js';
import { EventFeed } from './event-feed.js';

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
const activity = new ActivityLog();
const feed = await EventFeed.start({ js: bus.js, jsm: bus.jsm, activity, log, signal: stop.signal });
// Counters are served only complete when possible; a huge backlog must not keep the API down.
const caughtUp = await Promise.race([feed.caughtUp.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000).unref())]);

const app = await buildApp({
  policyStore,
  activity,
  engine: new ClamdEngineProbe(parseClamdAddresses(env.CLAMD_ADDRESSES)),
  adminToken: token.token,
  log,
  health: () => ({ ok: natsState === 'connected' && !bus.nc.isClosed(), checks: { nats: bus.nc.isClosed() ? 'closed' : natsState } }),
});
const address = await app.listen({ host: listen.host, port: listen.port });
const policy = await policyStore.get();
log.info(
  { event: 'ready', url: address, policyVersion: policy.version, eventsReplayed: activity.sequence, eventsComplete: caughtUp },
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
      .then(() => bus.nc.drain())
      .finally(() => process.exit(0));
  });
}
