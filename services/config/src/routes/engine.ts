import type { FastifyInstance } from 'fastify';
import type { EngineProbe } from '../engine-probe.js';
import { EngineBody, ErrorBody } from '../schemas.js';

export async function engineRoutes(app: FastifyInstance, opts: { engine: EngineProbe }): Promise<void> {
  app.get(
    '/engine',
    {
      schema: {
        summary: 'Antivirus engine status',
        description: 'Reachability and signature version of every clamd in CLAMD_ADDRESSES (checked at most every 2 s).',
        tags: ['engine'],
        response: { 200: EngineBody, 401: ErrorBody },
      },
    },
    async () => opts.engine.status(),
  );
}
