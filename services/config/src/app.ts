import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { Logger } from '@mailwarden/log';
import type { ActivityView } from './activity-log.js';
import { bearerAuth } from './auth.js';
import type { EngineProbe } from './engine-probe.js';
import { HttpError } from './http-errors.js';
import { activityRoutes } from './routes/activity.js';
import { engineRoutes } from './routes/engine.js';
import { policyRoutes, type PolicyApi } from './routes/policy.js';
import { quarantineRoutes } from './routes/quarantine.js';
import { queueRoutes } from './routes/queue.js';
import type { DeliveryQueue } from './delivery-queue.js';
import type { Quarantine } from './quarantine.js';
import { HealthBody } from './schemas.js';
import { typeboxValidatorCompiler } from './validation.js';

export interface HealthReport {
  ok: boolean;
  /** e.g. `{ nats: 'connected' }` */
  checks: Record<string, string>;
}

/** Everything the config service talks to, injected so tests can hand in their own. */
export interface AppDeps {
  /** The policy in NATS KV: PolicyStore from @mailwarden/bus. */
  policyStore: PolicyApi;
  /** Counters and recent detections folded from MW_EVENTS. */
  activity: ActivityView;
  /** clamd reachability and signature version. */
  engine: EngineProbe;
  /** Bearer token every /api/ call must carry. */
  adminToken: string;
  log?: Logger;
  /** For GET /healthz; healthy when absent. */
  health?: () => HealthReport;
  /** The quarantine API (needs S3, SMTP_UPSTREAM and clamd); its routes are absent without it. */
  quarantine?: { quarantine: Quarantine; retentionDays: () => number };
  /** The delivery queue (queue mode; needs NATS and S3); its routes are absent without it. */
  queue?: DeliveryQueue;
}

/** The admin web UI: static HTML, CSS and vanilla JS, no build step. */
export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

const UI_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const ERROR_CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  404: 'not_found',
  409: 'conflict',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  412: 'precondition_failed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/**
 * The config service as a Fastify plugin: REST API under /api/v1 (bearer token), /healthz,
 * OpenAPI and Swagger UI at /docs, the admin UI at /.
 */
export async function configService(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.setValidatorCompiler(typeboxValidatorCompiler);

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (err instanceof HttpError) {
      if (err.statusCode >= 500) request.log.error({ event: 'http.unavailable', err }, err.message);
      return reply.code(err.statusCode).send({ statusCode: err.statusCode, error: err.code, message: err.message, ...err.extra });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status < 500) return reply.code(status).send({ statusCode: status, error: ERROR_CODES[status] ?? 'bad_request', message: err.message });
    request.log.error({ event: 'http.error', err }, 'request failed');
    return reply.code(500).send({ statusCode: 500, error: 'internal_error', message: 'internal error; the config service log has the details' });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mailwarden config API',
        description:
          'Policy, activity and engine status of the Mailwarden email antivirus gateway. Every /api/v1 call needs `Authorization: Bearer <ADMIN_TOKEN>`.',
        version: '1',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } } },
      security: [{ bearerAuth: [] }],
      tags: [
        { name: 'policy', description: 'The scanning policy, its versions and history' },
        { name: 'activity', description: 'Counters and recent detections' },
        { name: 'engine', description: 'The antivirus engine' },
        { name: 'quarantine', description: 'Originals of messages that had something removed: find, download, release, rescan, delete' },
        { name: 'queue', description: 'Queue mode: the delivery queue, a message\'s attempts, retry now, delete' },
        { name: 'health', description: 'Liveness' },
      ],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false } });

  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness and NATS connection (no token needed)',
        tags: ['health'],
        security: [],
        response: { 200: HealthBody, 503: HealthBody },
      },
    },
    async (_request, reply) => {
      const report = deps.health?.() ?? { ok: true, checks: {} };
      return reply.code(report.ok ? 200 : 503).send({ status: report.ok ? 'ok' : 'unavailable', checks: report.checks });
    },
  );

  await app.register(
    async (api) => {
      api.addHook('onRequest', bearerAuth(deps.adminToken));
      api.addHook('onSend', async (_request, reply) => {
        reply.header('cache-control', 'no-store');
      });
      await api.register(policyRoutes, { store: deps.policyStore });
      await api.register(activityRoutes, { activity: deps.activity });
      await api.register(engineRoutes, { engine: deps.engine });
      if (deps.quarantine) await api.register(quarantineRoutes, deps.quarantine);
      if (deps.queue) await api.register(queueRoutes, { queue: deps.queue });
    },
    { prefix: '/api/v1' },
  );

  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    setHeaders: (reply) => {
      reply.headers(UI_HEADERS);
    },
  });
}

export interface BuildOptions {
  /** Extra Fastify options (tests: none needed). */
  fastify?: Omit<FastifyServerOptions, 'logger' | 'loggerInstance'>;
}

/** A ready-to-listen Fastify instance (fastify/demo's `build`): tests call `inject` on it. */
export async function buildApp(deps: AppDeps, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const options: FastifyServerOptions = {
    // Polling the UI would flood the log; policy changes and failures are logged by the routes.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 256 * 1024,
    ...opts.fastify,
    ...(deps.log ? { loggerInstance: deps.log as FastifyBaseLogger } : { logger: false }),
  };
  const app = Fastify(options);
  await app.register(configService, deps);
  return app;
}

