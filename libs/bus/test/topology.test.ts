import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RetentionPolicy } from '@nats-io/jetstream';
import { startNats, type RunningNats } from '@mailwarden/local-stack';
import { DEFAULT_POLICY, Streams } from '@mailwarden/contracts';
import { PolicyConflictError, PolicyStore, connectBus, ensureTopology, type Bus } from '../src/index.js';

let dir: string;
let nats: RunningNats;
let bus: Bus;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-bus-'));
  nats = await startNats({ stateDir: dir, auth: false });
  bus = await connectBus({ url: nats.url, name: 'bus-test' });
});
after(async () => {
  await bus?.nc.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('ensureTopology is idempotent and brings a stream from an older version up to date', async () => {
  // As an earlier version created it: no direct get.
  await bus.jsm.streams.add({ name: Streams.results, subjects: ['mw.result.>'], retention: RetentionPolicy.Limits });
  await ensureTopology(bus.jsm, bus.kvm);
  await ensureTopology(bus.jsm, bus.kvm);
  const info = await bus.jsm.streams.info(Streams.results);
  assert.equal(info.config.allow_direct, true);
  for (const s of Object.values(Streams)) assert.ok(await bus.jsm.streams.info(s));
});

test('the policy is seeded once; a write with a stale version is refused', async () => {
  const store = await PolicyStore.open(bus.kvm);
  await store.seedDefaults();
  await store.seedDefaults();
  const first = await store.get();
  assert.deepEqual(first.policy, DEFAULT_POLICY);
  const changed = structuredClone(first.policy);
  changed.subjectPrefix.enabled = true;
  const second = await store.put(changed, { expectedVersion: first.version });
  assert.ok(second.version > first.version);
  await assert.rejects(store.put(first.policy, { expectedVersion: first.version }), PolicyConflictError);
  const history = await store.history();
  assert.deepEqual(
    history.map((h) => h.policy.subjectPrefix.enabled),
    [false, true],
  );
});
