/**
 * The delivery queue API (queue mode) over a real NATS with the topology mailwarden-init makes:
 * states written the way the deliverers write them, retry-now publishing a live copy on
 * MW_DELIVERY, delete recording `deleted`. 401, 400, 404 and 409 included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryRecords } from '@mailwarden/bus';
import { DeliveryJob, Streams, Subjects, decode, type DeliveryState } from '@mailwarden/contracts';
import type { ObjectStore } from '@mailwarden/storage';
import { DeliveryQueue, buildApp } from '../src/index.js';
import { TOKEN, auth, build, fixedEngine } from './harness.js';

const job = (ref: string, receivedAt: string): DeliveryJob => ({
  ref,
  route: 'inbound',
  mailFrom: 'alice@example.org',
  rcptTo: ['bob@example.test', 'carol@example.test'],
  key: `msg/${ref}/raw.eml`,
  size: 1234,
  keys: [`msg/${ref}/raw.eml`],
  receivedAt,
});

test('queue API: summary, one message with its attempts, retry-now, delete; 401/400/404/409', { timeout: 60_000 }, async (t) => {
  const removed: string[][] = [];
  const store = { remove: async (keys: string[]) => void removed.push(keys) } as unknown as ObjectStore;
  // The harness's NATS (with the topology) first; then an app with the queue on top of it.
  const h = await build(t);
  const records = await DeliveryRecords.open(h.bus.kvm);
  const queue = new DeliveryQueue({ records, store, publish: (subject, data, msgID) => h.bus.js.publish(subject, data, { msgID }) });
  const app = await buildApp({ policyStore: h.store, activity: h.activity, engine: fixedEngine(), adminToken: TOKEN, queue });
  t.after(() => app.close());
  const get = (url: string) => app.inject({ method: 'GET', url, headers: auth });

  for (const [method, url] of [
    ['GET', '/api/v1/queue'],
    ['GET', '/api/v1/queue/aaaaaaaaaaaa'],
    ['POST', '/api/v1/queue/aaaaaaaaaaaa/retry'],
    ['DELETE', '/api/v1/queue/aaaaaaaaaaaa'],
  ] as const) {
    assert.equal((await app.inject({ method, url })).statusCode, 401, `${method} ${url} without a token`);
  }

  // Empty.
  assert.deepEqual((await get('/api/v1/queue')).json(), { count: 0, oldest: null, upstreams: [], messages: [] });

  // Two queued messages: one failing (upstream answered 451), one not tried yet.
  const failing: DeliveryState = {
    ...DeliveryRecords.initialState(job('q1aaaaaaaaaa', '2026-12-01T10:00:00.000Z')),
    delivered: ['bob@example.test'],
    attempts: [{ at: '2026-12-01T10:00:05.000Z', upstream: '10.0.0.5:25', outcomes: [{ recipient: 'bob@example.test', code: 250, reply: '250 2.0.0 ok' }, { recipient: 'carol@example.test', code: 451, reply: '451 4.3.0 try later' }] }],
    attemptCount: 1,
    nextAttemptAt: '2026-12-01T10:01:05.000Z',
  };
  await records.create(failing);
  await records.create(DeliveryRecords.initialState(job('q2bbbbbbbbbb', '2026-12-01T11:00:00.000Z')));

  const summary = (await get('/api/v1/queue')).json();
  assert.equal(summary.count, 2);
  assert.equal(summary.oldest, '2026-12-01T10:00:00.000Z');
  assert.deepEqual(summary.upstreams, [{ route: 'inbound', upstream: '10.0.0.5:25', queued: 2, failing: 1, lastError: '451 4.3.0 try later' }]);
  assert.deepEqual(summary.messages.map((m: { ref: string }) => m.ref), ['q1aaaaaaaaaa', 'q2bbbbbbbbbb']);
  assert.equal(summary.messages[0].lastError, '451 4.3.0 try later');
  assert.deepEqual(summary.messages[0].delivered, ['bob@example.test']);
  assert.equal((await get('/api/v1/queue?limit=1')).json().messages.length, 1);
  assert.equal((await get('/api/v1/queue?limit=0')).statusCode, 400);

  // One message: its attempts.
  const one = (await get('/api/v1/queue/q1aaaaaaaaaa')).json();
  assert.equal(one.status, 'queued');
  assert.equal(one.attempts.length, 1);
  assert.equal(one.attempts[0].outcomes[1].code, 451);
  assert.equal((await get('/api/v1/queue/q9zzzzzzzzzz')).statusCode, 404);
  assert.equal((await get('/api/v1/queue/BAD!')).statusCode, 400);

  // Retry now: a new copy on MW_DELIVERY, named live in the state.
  const retried = await app.inject({ method: 'POST', url: '/api/v1/queue/q1aaaaaaaaaa/retry', headers: auth });
  assert.equal(retried.statusCode, 202, retried.body);
  const stored = await h.bus.jsm.streams.getMessage(Streams.delivery, { last_by_subj: Subjects.delivery('q1aaaaaaaaaa') });
  const copy = decode(DeliveryJob, stored!.data);
  const state = (await records.load('q1aaaaaaaaaa'))!.state;
  assert.ok(copy.copy && copy.copy === state.copy, 'the published copy is the live one');
  assert.equal(state.nextAttemptAt, undefined);
  assert.deepEqual(state.delivered, ['bob@example.test'], 'what was delivered stays delivered');
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/queue/q9zzzzzzzzzz/retry', headers: auth })).statusCode, 404);

  // A message a deliverer holds: 409.
  const held = (await records.load('q2bbbbbbbbbb'))!;
  await records.update({ ...held.state, leaseUntil: Date.now() + 60_000 }, held.revision);
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/queue/q2bbbbbbbbbb/retry', headers: auth })).statusCode, 409);
  assert.equal((await app.inject({ method: 'DELETE', url: '/api/v1/queue/q2bbbbbbbbbb', headers: auth })).statusCode, 409);

  // Delete: finished as deleted, objects removed, no longer listed.
  assert.equal((await app.inject({ method: 'DELETE', url: '/api/v1/queue/q1aaaaaaaaaa', headers: auth })).statusCode, 204);
  assert.deepEqual(removed, [['msg/q1aaaaaaaaaa/raw.eml']]);
  const gone = (await get('/api/v1/queue/q1aaaaaaaaaa')).json();
  assert.equal(gone.status, 'finished');
  assert.equal(gone.record.outcome, 'deleted');
  assert.equal((await get('/api/v1/queue')).json().count, 1);
  assert.equal((await app.inject({ method: 'DELETE', url: '/api/v1/queue/q1aaaaaaaaaa', headers: auth })).statusCode, 404);
});
