/**
 * Issue 11, "An open bus": the NATS server runs with deploy/nats/auth.conf (as in docker-compose and
 * Kubernetes, and in every local stack); each service's user can do only what that service needs.
 * Checked against a real nats-server: what a user is refused never reaches a stream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { DeliveredSizeRecords, DeliveryRecords, PolicyStore, STREAMS_NEEDED, connectBus, waitForStreams, type Bus } from '@mailwarden/bus';
import { Buckets, POLICY_KEY, Streams, Subjects, kvStream } from '@mailwarden/contracts';
import { NATS_ADMIN_USER, runNatsInit, startNats, type NatsUserName, type RunningNats } from '@mailwarden/local-stack';

let dir = '';
let nats: RunningNats;
let admin: Bus;
const open: Bus[] = [];

async function as(user: NatsUserName): Promise<Bus> {
  const creds = nats.users![user];
  const bus = await connectBus({ url: nats.url, user: creds.user, password: creds.password, name: `auth-test-${user}` });
  open.push(bus);
  return bus;
}

/** Messages in a stream (as the admin sees them). */
async function count(stream: string): Promise<number> {
  return (await admin.jsm.streams.info(stream)).state.messages;
}

/** Publishes with a JetStream acknowledgement; resolves to the error, or undefined if it was stored. */
async function jsPublish(bus: Bus, subject: string, data = 'forged'): Promise<Error | undefined> {
  try {
    await bus.js.publish(subject, data, { timeout: 2000 });
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

/** A core publish (no acknowledgement), then a round trip so the server has seen it. */
async function corePublish(bus: Bus, subject: string, data = 'forged'): Promise<void> {
  bus.nc.publish(subject, data);
  await bus.nc.flush().catch(() => undefined);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mw-nats-auth-'));
  nats = await startNats({ stateDir: dir });
  await runNatsInit(nats, { stateDir: dir });
  admin = await as(NATS_ADMIN_USER);
});

after(async () => {
  for (const bus of open) await bus.nc.close().catch(() => undefined);
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('NATS users and permissions (deploy/nats/auth.conf)', () => {
  it('refuses anonymous clients and wrong passwords', async () => {
    await assert.rejects(connect({ servers: nats.url, timeout: 3000 }), /authoriz/i);
    await assert.rejects(connect({ servers: nats.url, user: 'scanner', pass: 'not-the-password', timeout: 3000 }), /authoriz/i);
    // Another service's password does not open this user.
    await assert.rejects(connect({ servers: nats.url, user: 'scanner', pass: nats.users!.reassembler.password, timeout: 3000 }), /authoriz/i);
  });

  it('mailwarden-init made the streams, consumers and buckets, and seeded the policy', async () => {
    for (const s of [Streams.jobs, Streams.verdicts, Streams.results, Streams.events, Streams.delivery, kvStream(Buckets.policy), kvStream(Buckets.scanCache), kvStream(Buckets.delivery), kvStream(Buckets.pop3Sizes)]) {
      assert.ok(await admin.jsm.streams.info(s), s);
    }
    const policy = await (await admin.kvm.open(Buckets.policy)).get(POLICY_KEY);
    assert.equal(policy?.operation, 'PUT');
  });

  it('the scanner cannot forge a result, an event, a job, or the policy; it can publish a verdict and write the scan cache', async () => {
    const scanner = await as('scanner');
    const results = await count(Streams.results);
    const events = await count(Streams.events);
    const jobs = await count(Streams.jobs);
    const policy = await (await admin.kvm.open(Buckets.policy)).get(POLICY_KEY);

    assert.ok(await jsPublish(scanner, Subjects.result('x')), 'publishing a result is refused');
    await corePublish(scanner, Subjects.result('y'));
    assert.ok(await jsPublish(scanner, Subjects.event('scanned')), 'publishing an event is refused');
    assert.ok(await jsPublish(scanner, Subjects.job('x')), 'publishing a job is refused');
    await corePublish(scanner, `$KV.${Buckets.policy}.${POLICY_KEY}`, JSON.stringify({ policy: { scanning: false } }));
    assert.ok(await jsPublish(scanner, `$KV.${Buckets.policy}.${POLICY_KEY}`), 'writing the policy is refused');
    // Through the KV API as well.
    const kv = await new Kvm(scanner.js).open(Buckets.policy);
    await assert.rejects(kv.put(POLICY_KEY, '{}'));

    assert.equal(await count(Streams.results), results, 'no forged result stored');
    assert.equal(await count(Streams.events), events, 'no forged event stored');
    assert.equal(await count(Streams.jobs), jobs, 'no forged job stored');
    assert.equal((await (await admin.kvm.open(Buckets.policy)).get(POLICY_KEY))?.revision, policy?.revision, 'the policy is unchanged');

    // What it is for.
    assert.equal(await jsPublish(scanner, Subjects.verdict('x'), '{}'), undefined, 'a verdict is accepted');
    await corePublish(scanner, `$KV.${Buckets.scanCache}.engine.abc`, '{"kind":"clean"}');
    await assert.doesNotReject(async () => assert.ok(await (await admin.kvm.open(Buckets.scanCache)).get('engine.abc')));
  });

  it('no service user can create, change or delete streams and consumers', async () => {
    for (const user of ['scanner', 'reassembler', 'smtp-gateway', 'config'] as const) {
      const bus = await as(user);
      await assert.rejects(bus.jsm.streams.add({ name: `EVIL_${user.replace('-', '_')}`, subjects: [`evil.${user}`] }), `${user}: stream create`);
      await assert.rejects(bus.jsm.streams.update(Streams.results, { max_age: 1_000_000_000 }), `${user}: stream update`);
      await assert.rejects(bus.jsm.streams.purge(Streams.events), `${user}: stream purge`);
      await assert.rejects(bus.jsm.streams.delete(Streams.jobs), `${user}: stream delete`);
      await assert.rejects(bus.jsm.consumers.delete(Streams.jobs, 'scanners'), `${user}: consumer delete`);
    }
    assert.ok(await admin.jsm.streams.info(Streams.jobs));
    assert.ok(await admin.jsm.consumers.info(Streams.jobs, 'scanners'));
  });

  it('a gateway cannot poison the scan cache, publish a verdict, or read the work queues', async () => {
    const gateway = await as('smtp-gateway');
    const verdicts = await count(Streams.verdicts);
    await corePublish(gateway, `$KV.${Buckets.scanCache}.engine.eicar`, '{"kind":"clean"}');
    assert.ok(await jsPublish(gateway, Subjects.verdict('x')));
    assert.equal(await (await admin.kvm.open(Buckets.scanCache)).get('engine.eicar'), null, 'no "clean" entry written');
    assert.equal(await count(Streams.verdicts), verdicts);
    await assert.rejects(gateway.js.consumers.get(Streams.jobs, 'scanners').then((c) => c.next({ expires: 1000 })));
    // Its own job goes through.
    assert.equal(await jsPublish(gateway, Subjects.job('ok'), '{}'), undefined);
  });

  it('the reassembler publishes results and events, but not TLS passthrough events nor jobs', async () => {
    const reassembler = await as('reassembler');
    assert.equal(await jsPublish(reassembler, Subjects.result('ok'), '{}'), undefined);
    assert.equal(await jsPublish(reassembler, Subjects.event('scanned'), '{}'), undefined);
    assert.ok(await jsPublish(reassembler, Subjects.event('tls-unscanned')));
    assert.ok(await jsPublish(reassembler, Subjects.job('x')));
  });

  it('queue mode: only the reassembler queues deliveries and rescans; only it and the config service touch the delivery records', async () => {
    const reassembler = await as('reassembler');
    assert.equal(await jsPublish(reassembler, Subjects.delivery('okaaaaaaaa'), '{}'), undefined, 'the reassembler queues a delivery');
    assert.equal(await jsPublish(reassembler, Subjects.rescan('okaaaaaaaa'), '{}'), undefined, 'the reassembler asks for a rescan');
    assert.ok(await jsPublish(reassembler, Subjects.job('x')), 'but publishes no ordinary job');
    await assert.doesNotReject((await new Kvm(reassembler.js).create(Buckets.delivery, { history: 1, ttl: 30 * 24 * 3600 * 1000 })).put('done.okaaaaaaaa', '{}'));
    const delivery = await count(Streams.delivery);
    for (const user of ['scanner', 'smtp-gateway', 'pop3-gateway'] as const) {
      const bus = await as(user);
      assert.ok(await jsPublish(bus, Subjects.delivery('x'), '{}'), `${user}: queueing a delivery is refused`);
      await corePublish(bus, `$KV.${Buckets.delivery}.done.forged`, '{}');
      await assert.rejects(bus.js.consumers.get(Streams.delivery, 'deliverers').then((c) => c.next({ expires: 1000 })), `${user}: pulling deliveries is refused`);
    }
    assert.ok(await jsPublish(await as('scanner'), Subjects.rescan('x'), '{}'), 'the scanner cannot ask for a rescan');
    assert.equal(await (await admin.kvm.open(Buckets.delivery)).get('done.forged'), null, 'no forged done record');
    assert.equal(await count(Streams.delivery), delivery);
    // The config service: the listing, retry-now (a delivery job) and delete (the records).
    const config = await as('config');
    assert.equal(await jsPublish(config, Subjects.delivery('okbbbbbbbb'), '{}'), undefined);
    assert.ok(await jsPublish(config, Subjects.job('x')), 'config publishes no job');
    const fromReassembler = await DeliveryRecords.open(reassembler.kvm);
    const job = { ref: 'okcccccccc', route: 'inbound' as const, mailFrom: 'a@example.org', rcptTo: ['b@example.test'], key: 'msg/okcccccccc/raw.eml', size: 1, keys: [], receivedAt: new Date().toISOString() };
    await fromReassembler.create(DeliveryRecords.initialState(job));
    const asConfig = await DeliveryRecords.open(config.kvm);
    assert.deepEqual((await asConfig.queued()).map((q) => q.job.ref), ['okcccccccc'], 'config lists the queue');
    const read = (await asConfig.load('okcccccccc'))!;
    await asConfig.update({ ...read.state, copy: 'now' }, read.revision);
    await asConfig.finish({ ref: 'okcccccccc', finishedAt: new Date().toISOString(), outcome: 'deleted', delivered: [], failed: [], attemptCount: 0 });
    assert.equal((await fromReassembler.done('okcccccccc'))?.outcome, 'deleted');
  });

  it('only the pop3 gateway reads and writes the delivered sizes (mw-pop3-sizes), one key at a time', async () => {
    const key = 'a'.repeat(64);
    const pop3 = await DeliveredSizeRecords.open((await as('pop3-gateway')).kvm);
    await pop3.put(key, 1234);
    assert.equal(await pop3.get(key), 1234, 'the pop3 gateway reads back what it wrote');
    assert.equal(await pop3.get('b'.repeat(64)), undefined, 'an unknown key is no size');
    const sizes = await admin.kvm.open(Buckets.pop3Sizes);
    assert.equal((await sizes.get(key))?.string(), '1234');
    // It may not list the bucket (no consumer on it) nor touch any other bucket's keys.
    const pop3Bus = await as('pop3-gateway');
    await assert.rejects(async () => {
      for await (const k of await (await new Kvm(pop3Bus.js).create(Buckets.pop3Sizes, { history: 1, ttl: 30 * 24 * 3600 * 1000 })).keys()) void k;
    }, 'listing the keys is refused');
    await corePublish(pop3Bus, `$KV.${Buckets.delivery}.done.forged-by-pop3`, '{}');
    assert.equal(await (await admin.kvm.open(Buckets.delivery)).get('done.forged-by-pop3'), null);
    // No other service reads or writes it.
    for (const user of ['scanner', 'reassembler', 'smtp-gateway', 'config'] as const) {
      await assert.rejects(DeliveredSizeRecords.open((await as(user)).kvm).then((r) => r.get(key)), `${user}: reading a size is refused`);
      await corePublish(await as(user), `$KV.${Buckets.pop3Sizes}.${'c'.repeat(64)}`, '1');
    }
    assert.equal(await sizes.get('c'.repeat(64)), null, 'no size written by another service');
  });

  it('only the config service (and init) may write the policy; every service reads it', async () => {
    const config = await PolicyStore.open((await as('config')).kvm);
    const current = await config.get();
    const updated = await config.put(current.policy, { expectedVersion: current.version, changedBy: 'auth-test' });
    assert.ok(updated.version > current.version);
    for (const user of ['smtp-gateway', 'pop3-gateway', 'reassembler'] as const) {
      const store = await PolicyStore.open((await as(user)).kvm);
      await assert.rejects(store.put(current.policy), `${user} may not write the policy`);
      assert.equal((await store.read())?.version, updated.version, `${user} reads the policy`);
    }
  });

  it('no user can read another user\'s replies (inboxes are per user)', async () => {
    const scanner = await as('scanner');
    const errors: unknown[] = [];
    const sub = scanner.nc.subscribe('_INBOX_smtp-gateway.>', {
      callback: (err) => {
        if (err) errors.push(err);
      },
    });
    await scanner.nc.flush();
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(sub.isClosed() || errors.length > 0, 'the subscription was refused');
  });

  it('a service started before mailwarden-init waits for the streams instead of failing', async () => {
    const fresh = await startNats({ stateDir: join(dir, 'fresh') });
    try {
      const creds = fresh.users!.scanner;
      const bus = await connectBus({ url: fresh.url, user: creds.user, password: creds.password, name: 'early-scanner' });
      open.push(bus);
      let done = false;
      const waiting = waitForStreams(bus.jsm, STREAMS_NEEDED.scanner, { intervalMs: 100 }).then(() => (done = true));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(done, false, 'still waiting: nothing there and no right to create it');
      await runNatsInit(fresh, { stateDir: join(dir, 'fresh') });
      await waiting;
      assert.ok(await bus.jsm.consumers.info(Streams.jobs, 'scanners'));
    } finally {
      await fresh.stop();
    }
  });
});
