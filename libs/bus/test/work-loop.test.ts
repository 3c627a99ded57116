// runWorkLoop on a real nats-server: a worker pulls only what it can start now, so a job queued
// behind slow ones is never redelivered by the ack-wait timer before its first real attempt.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, RetentionPolicy, type JsMsg } from '@nats-io/jetstream';
import { startNats, type RunningNats } from '@mailwarden/local-stack';
import { createLogger } from '@mailwarden/log';
import { connectBus, runWorkLoop, type Bus } from '../src/index.js';

let dir: string;
let nats: RunningNats;
let bus: Bus;
const log = createLogger('work-loop-test');
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-work-loop-'));
  nats = await startNats({ stateDir: dir, auth: false });
  bus = await connectBus({ url: nats.url, name: 'work-loop-test' });
});
after(async () => {
  await bus?.nc.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
/** A work-queue stream and a pull consumer with a short ack wait, unique per test. */
async function queue(ackWaitMs: number, maxDeliver: number): Promise<{ stream: string; subject: string; consumer: string }> {
  const stream = `WL_${process.pid}_${++n}`;
  const subject = `wl.${process.pid}.${n}`;
  await bus.jsm.streams.add({ name: stream, subjects: [`${subject}.>`], retention: RetentionPolicy.Workqueue });
  await bus.jsm.consumers.add(stream, {
    durable_name: 'workers',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ackWaitMs * 1_000_000,
    max_deliver: maxDeliver,
    max_ack_pending: 10_000,
  });
  return { stream, subject, consumer: 'workers' };
}

test('jobs queued behind handlers slower than ack_wait start on their first delivery', async () => {
  const ackWaitMs = 1000;
  const q = await queue(ackWaitMs, 4);
  const jobs = 12;
  for (let i = 0; i < jobs; i++) await bus.js.publish(`${q.subject}.${i}`, String(i));

  const firstAttempt = new Map<string, number>();
  const started: string[] = [];
  const stop = new AbortController();
  const done = runWorkLoop({
    consumer: () => bus.js.consumers.get(q.stream, q.consumer),
    concurrency: 2,
    log,
    signal: stop.signal,
    handle: async (msg: JsMsg) => {
      const id = msg.string();
      started.push(`${id}#${msg.info.deliveryCount}`);
      if (!firstAttempt.has(id)) firstAttempt.set(id, msg.info.deliveryCount);
      // The first jobs take well over ack_wait; the handler keeps its own job alive as the workers do.
      const ms = Number(id) < 4 ? 2.5 * ackWaitMs : 50;
      const keepAlive = setInterval(() => msg.working(), ackWaitMs / 4);
      await new Promise((r) => setTimeout(r, ms));
      clearInterval(keepAlive);
      msg.ack();
    },
  });
  try {
    const deadline = Date.now() + 30_000;
    while (firstAttempt.size < jobs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // Redeliveries of buffered jobs would arrive a little later: give them the time to show.
    await new Promise((r) => setTimeout(r, 2 * ackWaitMs));
  } finally {
    stop.abort();
    await done;
  }
  assert.equal(firstAttempt.size, jobs, 'every job was handled');
  // A job buffered in the client while the slots were busy is redelivered after ack_wait: it then
  // starts twice, or starts for the first time with deliveryCount > 1 (one retry fewer left).
  const late = started.filter((s) => !s.endsWith('#1'));
  assert.deepEqual(late, [], `no job starts with deliveryCount > 1 (started: ${started.join(',')})`);
  assert.equal(started.length, jobs, `each job handled exactly once (started: ${started.join(',')})`);
  const info = await bus.jsm.consumers.info(q.stream, q.consumer);
  assert.equal(info.num_pending + info.num_ack_pending, 0, 'everything acked');
});

test('the loop stops promptly when aborted while the queue is empty, and a job published later waits for the next worker', async () => {
  const q = await queue(30_000, 4);
  const stop = new AbortController();
  const handled: string[] = [];
  const done = runWorkLoop({
    consumer: () => bus.js.consumers.get(q.stream, q.consumer),
    concurrency: 3,
    log,
    signal: stop.signal,
    handle: async (msg) => {
      handled.push(msg.string());
      msg.ack();
    },
  });
  await bus.js.publish(`${q.subject}.a`, 'a');
  const deadline = Date.now() + 5000;
  while (!handled.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(handled, ['a']);
  const t0 = Date.now();
  stop.abort();
  await done;
  assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
  await bus.js.publish(`${q.subject}.b`, 'b');
  await new Promise((r) => setTimeout(r, 300));
  const info = await bus.jsm.consumers.info(q.stream, q.consumer);
  // Nothing pulled 'b' after the stop: it is pending, not held by a stopped worker until ack_wait.
  assert.equal(info.num_ack_pending, 0);
  assert.equal(info.num_pending, 1);
});
