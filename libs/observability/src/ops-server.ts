/**
 * The operations endpoint every Mailwarden process serves on OPS_LISTEN (plain node:http, no
 * framework, nothing else on the port):
 *
 *   GET /healthz  200 while the process is alive and not shutting down; 503 during the drain.
 *                 Docker's HEALTHCHECK and Kubernetes' livenessProbe use it.
 *   GET /readyz   runs every readiness check (each with a 2 s deadline, all at once): 200
 *                 `{ ready: true, checks }`, or 503 naming the failing ones. 503 while shutting down.
 *                 Kubernetes' readinessProbe uses it; a gateway that is not ready gets no traffic.
 *   GET /metrics  Prometheus text format: prom-client's default process metrics + `mailwarden_*`.
 *
 * OPS_LISTEN is `host:port`; `off` (or empty) starts nothing. Port 0 takes a free port.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { collectDefaultMetrics, type Gauge, type Registry } from 'prom-client';
import { parseHostPort } from '@mailwarden/config';
import type { Logger } from '@mailwarden/log';
import { registry as sharedRegistry } from './metrics.js';

/** A dependency probe: resolve true when reachable. The signal aborts when the deadline passes. */
export type ReadinessCheck = (signal: AbortSignal) => Promise<boolean>;

/** `ok`, `failed` (the check said false), `timeout` (past the deadline) or `error: <message>`. */
export type CheckResult = 'ok' | 'failed' | 'timeout' | `error: ${string}`;

export interface ReadinessReport {
  ready: boolean;
  service: string;
  checks: Record<string, CheckResult>;
  /** Names of the checks that are not `ok` (only when not ready). */
  failing?: string[];
  shuttingDown?: boolean;
}

export interface OpsServerOptions {
  /** `host:port` (OPS_LISTEN); `off` or empty: no server. */
  listen: string;
  /** Service name, reported in the JSON bodies and the log. */
  service: string;
  /** Named probes of the dependencies, e.g. `{ nats, s3, clamd }`. */
  readiness?: Record<string, ReadinessCheck>;
  /** Registry served at /metrics. Default: the shared registry of `metrics`. */
  registry?: Registry;
  log?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Deadline of one readiness check. Default 2000 ms. */
  checkTimeoutMs?: number;
}

export interface OpsServer {
  registry: Registry;
  /** The port listened on (the real one when OPS_LISTEN asked for 0); undefined when off. */
  port: number | undefined;
  /** `host:port` listened on; undefined when off. */
  address: string | undefined;
  /** /healthz and /readyz answer 503 from now on: call it first thing on SIGTERM. */
  setShuttingDown(): void;
  readonly shuttingDown: boolean;
  /** Runs the readiness checks as /readyz does. */
  readiness(): Promise<ReadinessReport>;
  /** Stops listening and ends open connections (marks the process as shutting down). */
  close(): Promise<void>;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 2000;
/** Keep-alive connections of a scraper get this long to finish a response at close. */
const CLOSE_GRACE_MS = 1000;

/** Default process metrics are registered once per registry, however many servers use it. */
const withDefaultMetrics = new WeakSet<Registry>();

export function isOpsListenOff(listen: string | undefined): boolean {
  const v = (listen ?? '').trim().toLowerCase();
  return v === '' || v === 'off';
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const registry = opts.registry ?? sharedRegistry;
  const checks = opts.readiness ?? {};
  const checkTimeoutMs = opts.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const log = opts.log;
  let shuttingDown = false;
  let inflight: Promise<ReadinessReport> | undefined;

  const readiness = (): Promise<ReadinessReport> => {
    if (shuttingDown) return Promise.resolve({ ready: false, service: opts.service, checks: {}, shuttingDown: true });
    // Concurrent probes share one run: a slow dependency is probed once, not once per caller.
    inflight ??= runChecks(checks, checkTimeoutMs)
      .then((results) => {
        const failing = Object.entries(results)
          .filter(([, r]) => r !== 'ok')
          .map(([name]) => name);
        const report: ReadinessReport = { ready: failing.length === 0, service: opts.service, checks: results };
        if (failing.length) report.failing = failing;
        return report;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  const handle: OpsServer = {
    registry,
    port: undefined,
    address: undefined,
    setShuttingDown: () => {
      shuttingDown = true;
    },
    get shuttingDown() {
      return shuttingDown;
    },
    readiness,
    close: async () => {
      shuttingDown = true;
    },
  };

  if (isOpsListenOff(opts.listen)) {
    log?.info({ event: 'ops.off', service: opts.service }, 'ops endpoint off (OPS_LISTEN=off): no /healthz, /readyz, /metrics');
    return handle;
  }

  const { host, port } = parseHostPort(opts.listen, 'OPS_LISTEN');
  if (!withDefaultMetrics.has(registry)) {
    collectDefaultMetrics({ register: registry });
    withDefaultMetrics.add(registry);
  }
  (registry.getSingleMetric('mailwarden_service_info') as Gauge<'service'> | undefined)?.set({ service: opts.service }, 1);

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/healthz' && path !== '/readyz' && path !== '/metrics') return send(res, req, 404, { error: 'not found', paths: ['/healthz', '/readyz', '/metrics'] });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, req, 405, { error: 'method not allowed' });
    }
    if (path === '/healthz') {
      return shuttingDown ? send(res, req, 503, { status: 'shutting down', service: opts.service }) : send(res, req, 200, { status: 'ok', service: opts.service });
    }
    if (path === '/readyz') {
      const report = await readiness();
      if (!report.ready && !report.shuttingDown) log?.warn({ event: 'ops.not_ready', failing: report.failing, checks: report.checks }, `not ready: ${report.failing?.join(', ')}`);
      return send(res, req, report.ready ? 200 : 503, report);
    }
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      log?.error({ event: 'ops.error', err, url: req.url }, 'ops endpoint failed');
      if (!res.headersSent) send(res, req, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  });
  // Every request is tiny; nothing may hold the port's resources for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log?.error({ event: 'ops.server_error', err }, 'ops server error'));

  const addr = server.address() as AddressInfo;
  handle.port = addr.port;
  handle.address = `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  let closing: Promise<void> | undefined;
  handle.close = () => {
    shuttingDown = true;
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      // A scrape in progress may finish; then everything still open is cut.
      setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, CLOSE_GRACE_MS).unref();
    });
    return closing;
  };
  log?.info({ event: 'ops.listening', service: opts.service, address: handle.address }, `ops endpoint on http://${handle.address} (/healthz /readyz /metrics)`);
  return handle;
}

async function runChecks(checks: Record<string, ReadinessCheck>, timeoutMs: number): Promise<Record<string, CheckResult>> {
  const entries = await Promise.all(Object.entries(checks).map(async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const));
  return Object.fromEntries(entries);
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => {
      ac.abort(new Error(`readiness check timed out after ${timeoutMs} ms`));
      resolve('timeout');
    }, timeoutMs);
  });
  const probe = (async (): Promise<CheckResult> => {
    try {
      return (await check(ac.signal)) === true ? 'ok' : 'failed';
    } catch (err) {
      return `error: ${err instanceof Error ? err.message : String(err)}`;
    }
  })();
  try {
    return await Promise.race([probe, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function send(res: ServerResponse, req: IncomingMessage, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(req.method === 'HEAD' ? undefined : text);
}
