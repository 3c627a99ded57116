// The delivery worker (queue mode) against a real NATS (the topology mailwarden-init makes) and a
// real SMTP server (the dev mailbox: `reject…` gets 550 at RCPT, `tempfail…` 450), with an
// in-memory object store. Each job is pulled and handled by hand, so every step can be checked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { DeliveryRecords, connectBus, ensureTopology, type Bus } from '@mailwarden/bus';
import { Consumers, DeliveryJob, Streams, Subjects, decode, type DeliveryState } from '@mailwarden/contracts';
import { startDevMailbox, type DevMailbox } from '@mailwarden/dev-mailbox';
import { startNats, type RunningNats } from '@mailwarden/local-stack';
import type { ObjectStore } from '@mailwarden/storage';
import { Routes, handleDelivery, type DeliveryDeps } from '../src/delivery/index.js';

let dir: string;
let nats: RunningNats;
let bus: Bus;
let mailbox: DevMailbox;
let records: DeliveryRecords;
let routes: Routes;
const objects = new Map<string, Buffer>();

const store = {
  async get(key: string) {
    const b = objects.get(key);
    if (!b) throw new Error(`no object ${key}`);
    return Readable.from([b]);
  },
  async getRange(key: string, start: number, end: number) {
    return Readable.from([objects.get(key)!.subarray(start, end)]);
  },
  async put(key: string, body: Readable) {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    objects.set(key, Buffer.concat(chunks));
    return { size: objects.get(key)!.length };
  },
  async remove(keys: string[]) {
    for (const k of keys) objects.delete(k);
  },
} as unknown as ObjectStore;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-deliver-'));
  nats = await startNats({ stateDir: dir, auth: false });
  bus = await connectBus({ url: nats.url, name: 'delivery-test' });
  await ensureTopology(bus.jsm, bus.kvm);
  records = await DeliveryRecords.open(bus.kvm);
  mailbox = await startDevMailbox({ listen: '127.0.0.1:0', mailRoot: join(dir, 'mail') });
  routes = new Routes({ SMTP_UPSTREAM: mailbox.address, SMTP_OUTBOUND_UPSTREAM: '', QUEUE_BOUNCE_RELAY: '', SMTP_HOSTNAME: 'mx.test' }, { connectTimeoutMs: 5000, commandTimeoutMs: 5000, dataReplyTimeoutMs: 5000 }, { verify: false });
});
after(async () => {
  await routes?.close();
  await mailbox?.stop();
  await bus?.nc.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

const deps = (over: Partial<DeliveryDeps> = {}): DeliveryDeps => ({ bus, store, records, routes, log: pino({ level: 'silent' }), lifetimeMs: 3_600_000, retryMinMs: 60_000, retryMaxMs: 3_600_000, ...over });

async function inbox(user: string): Promise<number> {
  return (await readdir(join(dir, 'mail', user, 'new')).catch(() => [])).length;
}

let n = 0;
async function queue(rcptTo: string[], extra: Partial<DeliveryJob> = {}): Promise<DeliveryJob> {
  const ref = `t${process.pid}x${++n}aaaa`;
  const key = `msg/${ref}/raw.eml`;
  objects.set(key, Buffer.from(`From: alice@example.org\r\nSubject: test ${ref}\r\n\r\nhello\r\n`));
  const job: DeliveryJob = { ref, route: 'inbound', mailFrom: 'alice@example.org', rcptTo, key, size: objects.get(key)!.length, keys: [key], receivedAt: new Date().toISOString(), ...extra };
  await records.create(DeliveryRecords.initialState(job));
  await bus.js.publish(Subjects.delivery(ref), JSON.stringify(job), { msgID: `delivery-${ref}${extra.copy ?? ''}` });
  return job;
}

/** Pulls the next delivery job and handles it; returns the job it was. */
async function handleNext(d = deps()): Promise<DeliveryJob> {
  const consumer = await bus.js.consumers.get(Streams.delivery, Consumers.deliverers);
  const msg = await consumer.next({ expires: 5000 });
  assert.ok(msg, 'a delivery job is waiting');
  await handleDelivery(d, msg);
  return decode(DeliveryJob, msg.data);
}

test('per recipient: 2xx delivered once, 5xx bounced with a DSN, 4xx kept for a retry; lifetime over: bounced too', async () => {
  const job = await queue([`ok${n}@example.test`, `reject${n}@example.test`, `tempfail${n}@example.test`]);
  const [ok, rejected, deferred] = job.rcptTo as [string, string, string];
  await handleNext();
  const state = (await records.load(job.ref))!.state;
  assert.deepEqual(state.delivered, [ok]);
  assert.deepEqual(state.failed.map((f) => [f.recipient, f.code]), [[rejected, 550]]);
  assert.equal(state.attemptCount, 1);
  assert.ok(state.nextAttemptAt, 'a retry is planned');
  assert.equal(state.leaseUntil, undefined, 'the lease is given back');
  assert.equal(await inbox(ok.split('@')[0]!), 1);
  // The DSN for the 550 is queued to the sender (null sender, route bounce).
  const dsnJob = await handleNext();
  assert.equal(dsnJob.route, 'bounce');
  assert.equal(dsnJob.mailFrom, '');
  assert.deepEqual(dsnJob.rcptTo, ['alice@example.org']);
  assert.equal(await inbox('alice'), 1);
  assert.equal((await records.done(dsnJob.ref))?.outcome, 'delivered');

  // The retry comes after its backoff; force it with a copy (as retry-now does) and a lifetime already over.
  const live = (await records.load(job.ref))!;
  await records.update({ ...live.state, copy: 'now' }, live.revision);
  await bus.js.publish(Subjects.delivery(job.ref), JSON.stringify({ ...job, copy: 'now' }), { msgID: `delivery-${job.ref}-now` });
  await handleNext(deps({ lifetimeMs: 0 }));
  const record = await records.done(job.ref);
  assert.equal(record?.outcome, 'partial');
  assert.deepEqual(record?.delivered, [ok]);
  assert.deepEqual(record?.failed.map((f) => f.recipient).sort(), [rejected, deferred].sort());
  assert.match(record!.failed.find((f) => f.recipient === deferred)!.reply, /^4\.4\.7 delivery time expired/);
  assert.equal(await records.load(job.ref), undefined, 'no longer queued');
  assert.equal(objects.has(job.key), false, 'its objects are removed');
  assert.equal(await inbox(ok.split('@')[0]!), 1, 'the delivered recipient got it once');
  // A second DSN, for the expired recipient only.
  await handleNext();
  assert.equal(await inbox('alice'), 2);
});

test('a finished message and a superseded copy are dropped without delivering', async () => {
  const user = `once${n}`;
  const job = await queue([`${user}@example.test`]);
  await handleNext();
  assert.equal((await records.done(job.ref))?.outcome, 'delivered');
  await bus.js.publish(Subjects.delivery(job.ref), JSON.stringify(job), { msgID: `delivery-${job.ref}-again` });
  await handleNext();
  assert.equal(await inbox(user), 1, 'a job for a finished message delivers nothing');

  const staleUser = `stale${n}`;
  const stale = await queue([`${staleUser}@example.test`], { copy: 'old' });
  const live = (await records.load(stale.ref))!;
  await records.update({ ...live.state, copy: 'new' }, live.revision);
  await handleNext();
  assert.equal(await inbox(staleUser), 0, 'a copy the state does not name is dropped');
  assert.ok(await records.load(stale.ref), 'and the message stays queued for the live copy');
});

test('a lease held by another deliverer defers; an attempt cut off after DATA began is counted as interrupted', async () => {
  const heldUser = `held${n}`;
  const job = await queue([`${heldUser}@example.test`]);
  const held = (await records.load(job.ref))!;
  await records.update({ ...held.state, leaseUntil: Date.now() + 60_000, leaseBy: 'other/1' }, held.revision);
  await handleNext();
  assert.equal(await inbox(heldUser), 0, 'not delivered while another deliverer holds it');

  const cutUser = `cut${n}`;
  const cut = await queue([`${cutUser}@example.test`]);
  const s = (await records.load(cut.ref))!;
  const sending: DeliveryState = { ...s.state, sending: { attempt: 1, at: new Date().toISOString() } };
  await records.update(sending, s.revision);
  await handleNext();
  const record = await records.done(cut.ref);
  assert.equal(record?.interrupted, 1);
  assert.equal(await inbox(cutUser), 1);
});

test("upstream's 250 is recorded even when the first writes fail (NATS restarting): no second delivery", async () => {
  const user = `flaky${n}`;
  const job = await queue([`${user}@example.test`]);
  let failures = 2;
  // The record of upstream's answer fails twice, as during a NATS restart, then works.
  const flaky = Object.assign(Object.create(records) as DeliveryRecords, {
    finish: (record: Parameters<DeliveryRecords['finish']>[0]) => (failures-- > 0 ? Promise.reject(new Error('timeout')) : records.finish(record)),
  });
  await handleNext(deps({ records: flaky, recordRetryMs: 10_000 }));
  assert.equal(failures, -1, 'tried until it was written');
  const record = await records.done(job.ref);
  assert.equal(record?.outcome, 'delivered');
  assert.equal(record?.interrupted, undefined, 'no attempt was repeated');
  assert.equal(await inbox(user), 1);
});
