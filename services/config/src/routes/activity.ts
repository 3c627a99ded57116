import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { ActivityView } from '../activity-log.js';
import { AuditBody, ErrorBody, EventsBody, EventsQuery, StatsBody } from '../schemas.js';

export async function activityRoutes(app: FastifyInstance, opts: { activity: ActivityView }): Promise<void> {
  const { activity } = opts;

  app.get(
    '/stats',
    {
      schema: {
        summary: 'Activity counters',
        description: 'Counted from the activity events kept in NATS (30 days), so they survive a restart of this service.',
        tags: ['activity'],
        response: { 200: StatsBody, 401: ErrorBody },
      },
    },
    async () => activity.stats(),
  );

  app.get(
    '/events',
    {
      schema: {
        summary: 'Recent detections, newest first',
        description: 'Infected and unscannable attachments and scan errors, with what was done about each.',
        tags: ['activity'],
        querystring: EventsQuery,
        response: { 200: EventsBody, 400: ErrorBody, 401: ErrorBody },
      },
    },
    async (request) => {
      const { limit } = request.query as Static<typeof EventsQuery>;
      return { events: activity.recent(limit) };
    },
  );

  app.get(
    '/audit',
    {
      schema: {
        summary: 'Recent administrator actions on quarantine entries, newest first',
        description: 'Releases, deletions, rescans and downloads, with who did it (the token identity and the client address).',
        tags: ['activity'],
        querystring: EventsQuery,
        response: { 200: AuditBody, 400: ErrorBody, 401: ErrorBody },
      },
    },
    async (request) => {
      const { limit } = request.query as Static<typeof EventsQuery>;
      return { actions: activity.actions(limit) };
    },
  );
}
