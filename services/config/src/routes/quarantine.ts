import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { QuarantineEntry } from '@mailwarden/contracts';
import { DeliveryError, UpstreamError } from '@mailwarden/smtp-client';
import { HttpError } from '../http-errors.js';
import { QuarantineNotFoundError, type Actor, type Quarantine } from '../quarantine.js';
import { ErrorBody, QuarantineListBody, QuarantineQuery, QuarantineRefParams, ReleaseBody } from '../schemas.js';

/** One admin token, so one identity: `admin`, with the client's address. */
const actor = (request: FastifyRequest): Actor => ({ by: 'admin', client: request.ip });

/** Domain failures as HTTP: unknown ref 404, upstream refusal 502, anything else down the line 503. */
async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (err instanceof QuarantineNotFoundError) throw new HttpError(404, 'not_found', err.message);
    if (err instanceof DeliveryError) throw new HttpError(502, 'upstream_refused', err.message, {}, { cause: err });
    if (err instanceof UpstreamError) throw new HttpError(502, 'upstream_unavailable', err.message, {}, { cause: err });
    if (err instanceof RangeError) throw new HttpError(413, 'payload_too_large', err.message);
    throw new HttpError(503, 'unavailable', `${what} failed: ${(err as Error).message}`, {}, { cause: err });
  }
}

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 503: ErrorBody };

export async function quarantineRoutes(app: FastifyInstance, opts: { quarantine: Quarantine; retentionDays: () => number }): Promise<void> {
  const { quarantine } = opts;

  app.get(
    '/quarantine',
    {
      schema: {
        summary: 'Quarantined originals, newest first, with filters and paging',
        description:
          'Every message the policy removed something from is kept (raw.eml + metadata) for `quarantine.retentionDays`. ' +
          'Filters combine (AND); text filters match a part, case-insensitive. Page with `limit` and `offset` (`nextOffset`).',
        tags: ['quarantine'],
        querystring: QuarantineQuery,
        response: { 200: QuarantineListBody, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => {
      const q = request.query as Static<typeof QuarantineQuery>;
      const page = await call('listing the quarantine', () => quarantine.list(q));
      return { ...page, retentionDays: opts.retentionDays() };
    },
  );

  app.get(
    '/quarantine/:ref',
    {
      schema: {
        summary: 'One quarantine entry: envelope, subject, removed parts, releases, last rescan',
        tags: ['quarantine'],
        params: QuarantineRefParams,
        response: { 200: QuarantineEntry, ...errors },
      },
    },
    async (request) => call('reading the entry', () => quarantine.get((request.params as Static<typeof QuarantineRefParams>).ref)),
  );

  app.get(
    '/quarantine/:ref/original',
    {
      schema: {
        summary: 'Download the original message as received',
        description: '`message/rfc822`, as an attachment `<ref>.eml`. The download is recorded in the activity feed.',
        tags: ['quarantine'],
        params: QuarantineRefParams,
        produces: ['message/rfc822'],
        response: { 200: { description: 'the original bytes', content: { 'message/rfc822': { schema: { type: 'string', format: 'binary' } } } }, ...errors },
      },
    },
    async (request, reply) => {
      const { ref } = request.params as Static<typeof QuarantineRefParams>;
      const body = await call('reading the original', () => quarantine.original(ref, actor(request)));
      return reply.type('message/rfc822').header('content-disposition', `attachment; filename="${ref}.eml"`).send(body);
    },
  );

  app.post(
    '/quarantine/:ref/release',
    {
      schema: {
        summary: 'Deliver the original to its recipients (or to given ones)',
        description:
          'Sent through the configured upstream SMTP server (SMTP_UPSTREAM) unchanged, or with an `X-Mailwarden-Released` header first ' +
          '(`addHeader`). Who released it and when is kept in the entry. The body may be omitted. 502 when upstream refuses.',
        tags: ['quarantine'],
        params: QuarantineRefParams,
        body: ReleaseBody,
        response: { 200: QuarantineEntry, ...errors, 502: ErrorBody },
      },
    },
    async (request) => {
      const { ref } = request.params as Static<typeof QuarantineRefParams>;
      const body = (request.body ?? {}) as ReleaseBody;
      return call('releasing', () => quarantine.release(ref, body, actor(request)));
    },
  );

  app.post(
    '/quarantine/:ref/rescan',
    {
      schema: {
        summary: 'Scan the original again with the signatures clamd has now',
        description: 'Returns the entry with `lastRescan`: the new verdict (clean, infected, unscannable) and the findings. Not cached.',
        tags: ['quarantine'],
        params: QuarantineRefParams,
        response: { 200: QuarantineEntry, ...errors, 413: ErrorBody },
      },
    },
    async (request) => call('rescanning', () => quarantine.rescan((request.params as Static<typeof QuarantineRefParams>).ref, actor(request))),
  );

  app.delete(
    '/quarantine/:ref',
    {
      schema: {
        summary: 'Delete the entry (original and metadata)',
        tags: ['quarantine'],
        params: QuarantineRefParams,
        response: { 204: { type: 'null', description: 'deleted' }, ...errors },
      },
    },
    async (request, reply) => {
      await call('deleting', () => quarantine.delete((request.params as Static<typeof QuarantineRefParams>).ref, actor(request)));
      return reply.code(204).send();
    },
  );
}
