import { parseHostPort } from '@mailwarden/config';
import type { DeliveryRoute } from '@mailwarden/contracts';
import { SmtpConnectionPool, type UpstreamTlsOptions } from '@mailwarden/smtp-client';

export interface RouteSettings {
  SMTP_UPSTREAM: string;
  SMTP_OUTBOUND_UPSTREAM: string;
  QUEUE_BOUNCE_RELAY: string;
  SMTP_HOSTNAME: string;
}

/**
 * Where each route delivers, from the deliverer's own configuration (the gateway's listeners
 * name the same upstreams): one connection pool per upstream, shared by the routes that use it.
 */
export class Routes {
  private readonly pools = new Map<string, SmtpConnectionPool>();
  private readonly byRoute = new Map<DeliveryRoute, string>();

  constructor(
    env: RouteSettings,
    private readonly timeouts: { connectTimeoutMs: number; commandTimeoutMs: number; dataReplyTimeoutMs: number },
    private readonly tls: UpstreamTlsOptions,
  ) {
    if (env.SMTP_UPSTREAM) this.byRoute.set('inbound', env.SMTP_UPSTREAM);
    if (env.SMTP_OUTBOUND_UPSTREAM) this.byRoute.set('outbound', env.SMTP_OUTBOUND_UPSTREAM);
    const relay = env.QUEUE_BOUNCE_RELAY || env.SMTP_UPSTREAM;
    if (relay) this.byRoute.set('bounce', relay);
    this.helloName = env.SMTP_HOSTNAME;
  }

  readonly helloName: string;

  /** The pool for a route; undefined when the route has no upstream configured here. */
  pool(route: DeliveryRoute): SmtpConnectionPool | undefined {
    const address = this.byRoute.get(route);
    if (!address) return undefined;
    let pool = this.pools.get(address);
    if (!pool) {
      const { host, port } = parseHostPort(address, `upstream of route ${route}`);
      pool = new SmtpConnectionPool({ host, port, ...this.timeouts, helloName: this.helloName, tls: this.tls });
      this.pools.set(address, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }
}
