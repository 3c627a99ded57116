import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { DeliveryConflictError } from '@mailwarden/bus';
import { HttpError } from '../http-errors.js';
import { QueueEntryBusyError, QueueEntryNotFoundError, type DeliveryQueue } from '../delivery-queue.js';
import { ErrorBody, QueueEntryBody, QueueQuery, QueueRefParams, QueueSummaryBody, QueuedMessageBody } from '../schemas.js';

/** Domain failures as HTTP: unknown ref 404, being delivered (or changed meanwhile) 409, NATS/S3 503. */
async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof QueueEntryNotFoundError) throw new HttpError(404, 'not_found', err.message);
    if (err instanceof QueueEntryBusyError) throw new HttpError(409, 'conflict', err.message);
    if (err instanceof DeliveryConflictError) throw new HttpError(409, 'conflict', 'the message changed meanwhile (a delivery attempt); try again');
    throw new HttpError(503, 'unavailable', `${what} failed: ${(err as Error).message}`, {}, { cause: err });
  }
}

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 503: ErrorBody };

/** Queue mode: the delivery queue (count, oldest, per-upstream failures), one message's attempts, retry-now, delete. */
export async function queueRoutes(app: FastifyInstance, opts: { queue: DeliveryQueue }): Promise<void> {
  const { queue } = opts;
  const refOf = (params: unknown) => (params as Static<typeof QueueRefParams>).ref;

  app.get(
    '/queue',
    {
      schema: {
        summary: 'The delivery queue (queue mode): how many, the oldest, failures per upstream, messages oldest first',
        tags: ['queue'],
        querystring: QueueQuery,
        response: { 200: QueueSummaryBody, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => call('reading the queue', () => queue.summary((request.query as Static<typeof QueueQuery>).limit ?? 100)),
  );

  app.get(
    '/queue/:ref',
    {
      schema: {
        summary: 'One message: its delivery attempts while queued, or how it finished',
        tags: ['queue'],
        params: QueueRefParams,
        response: { 200: QueueEntryBody, ...errors },
      },
    },
    async (request) => {
      const entry = await call('reading the message', () => queue.get(refOf(request.params)));
      return entry.status === 'queued' ? { status: entry.status, message: entry.message, attempts: entry.state.attempts } : { status: entry.status, record: entry.record };
    },
  );

  app.post(
    '/queue/:ref/retry',
    {
      schema: {
        summary: 'Try to deliver the message now instead of at its next retry',
        description: '409 while a deliverer is working on it.',
        tags: ['queue'],
        params: QueueRefParams,
        response: { 202: QueuedMessageBody, ...errors, 409: ErrorBody },
      },
    },
    async (request, reply) => reply.code(202).send(await call('retrying', () => queue.retry(refOf(request.params)))),
  );

  app.delete(
    '/queue/:ref',
    {
      schema: {
        summary: 'Drop the message from the queue (not delivered, no DSN); its objects are removed',
        tags: ['queue'],
        params: QueueRefParams,
        response: { 204: { type: 'null', description: 'deleted' }, ...errors, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      await call('deleting', () => queue.delete(refOf(request.params)));
      return reply.code(204).send();
    },
  );
}
