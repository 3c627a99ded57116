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
}

/** One connection per process; reconnects forever, because a gateway outliving a NATS restart is the normal case. */
export async function connectBus(opts: ConnectOptions): Promise<Bus> {
  const nc = await connect({
    servers: opts.url.split(',').map((s) => s.trim()),
    name: opts.name,
    timeout: opts.connectTimeoutMs ?? 5000,
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
