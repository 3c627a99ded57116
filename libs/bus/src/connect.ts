import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { Logger } from '@mailwarden/log';

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kvm: Kvm;
}

export interface ConnectOptions {
  url: string;
  name: string;
  log?: Logger;
  connectTimeoutMs?: number;
  /** NATS user and password (deploy/nats/auth.conf); none = anonymous. */
  user?: string;
  password?: string;
  /** PEM CA file for the server's certificate; implies TLS, as does a `tls://` URL. */
  ca?: string;
}

/** The connection settings of a service: NATS_URL, NATS_USER, NATS_PASSWORD, NATS_CA (empty = unset). */
export function natsSettings(env: { NATS_URL: string; NATS_USER?: string; NATS_PASSWORD?: string; NATS_CA?: string }): Pick<ConnectOptions, 'url' | 'user' | 'password' | 'ca'> {
  return {
    url: env.NATS_URL,
    ...(env.NATS_USER ? { user: env.NATS_USER, password: env.NATS_PASSWORD || '' } : {}),
    ...(env.NATS_CA ? { ca: env.NATS_CA } : {}),
  };
}

/**
 * Replies (request responses, pull deliveries, watchers) come to `_INBOX_<user>.>`: each user may
 * subscribe to its own inbox only, so one service cannot read the replies meant for another.
 */
export function inboxPrefix(user: string | undefined): string {
  return user ? `_INBOX_${user}` : '_INBOX';
}

/** One connection per process; reconnects forever, because a gateway outliving a NATS restart is the normal case. */
export async function connectBus(opts: ConnectOptions): Promise<Bus> {
  const servers = opts.url.split(',').map((s) => s.trim());
  const tlsWanted = !!opts.ca || servers.some((s) => s.startsWith('tls://'));
  const nc = await connect({
    servers,
    name: opts.name,
    timeout: opts.connectTimeoutMs ?? 5000,
    ...(opts.user ? { user: opts.user, pass: opts.password ?? '', inboxPrefix: inboxPrefix(opts.user) } : {}),
    // A TLS requirement on the client side too: a server without TLS is refused, not used in the clear.
    ...(tlsWanted ? { tls: opts.ca ? { caFile: opts.ca } : {} } : {}),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // No stack capture per request (RequestError/TimeoutError objects showed in the profiles).
    noAsyncTraces: true,
  });
  if (opts.log) {
    const log = opts.log;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error')
          log.warn({ event: `nats.${s.type}`, server: 'server' in s ? s.server : undefined }, `nats ${s.type}`);
      }
    })().catch(() => undefined);
  }
  const js = jetstream(nc, { timeout: 5000 });
  const jsm = await jetstreamManager(nc, { timeout: 5000 });
  return { nc, js, jsm, kvm: new Kvm(js) };
}

/** Readiness: connected, and the server answers a round trip. */
export async function natsReady(bus: Bus): Promise<boolean> {
  if (bus.nc.isClosed()) return false;
  await bus.nc.flush();
  return true;
}
