import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subjects } from '@mailwarden/contracts';
import type { Bus } from '@mailwarden/bus';
import { waitFor } from '@mailwarden/testkit';
import { ActivityLog, EventFeed, buildApp, type Detection, type Stats } from '../src/index.js';
import { TOKEN, auth, build, fixedEngine } from './harness.js';
import { createLogger } from '@mailwarden/log';

const silent = createLogger('config-test', 'silent');
const base = (ref: string, protocol: 'smtp' | 'pop3' = 'smtp') => ({
  ref,
  time: new Date().toISOString(),
  protocol,
  direction: 'inbound' as const,
  sender: 'sender@example.org',
  recipients: ['user@example.test'],
  subject: `message ${ref}`,
});

/** Publishes with JetStream (acknowledged), the way the stream stores them. */
async function publish(bus: Bus, kind: string, payload: object): Promise<void> {
  await bus.js.publish(Subjects.event(kind), JSON.stringify(payload));
}

async function seedHistory(bus: Bus): Promise<void> {
  await publish(bus, 'scanned', { kind: 'scanned', ...base('aaaaaaaa01'), parts: 2, outcome: 'deliver' });
  await publish(bus, 'infected', { kind: 'infected', ...base('aaaaaaaa01'), file: 'eicar.com', verdict: 'infected', detail: 'Eicar-Signature', action: 'removed' });
  // As the reassembler publishes today: no `kind` in the payload, the subject says it.
  await publish(bus, 'scanned', { ...base('aaaaaaaa02', 'pop3'), parts: 1, outcome: 'deliver' });
  await publish(bus, 'unscannable', { ...base('aaaaaaaa02', 'pop3'), file: 'secret.zip', verdict: 'unscannable', detail: 'Heuristics.Encrypted.Zip', reason: 'encrypted', action: 'delivered' });
  await publish(bus, 'scanned', { ...base('aaaaaaaa03'), parts: 1, outcome: 'tempfail' });
  await publish(bus, 'error', { ...base('aaaaaaaa03'), file: 'big.bin', verdict: 'error', detail: 'clamd timed out', action: 'tempfail' });
  await publish(bus, 'tls-unscanned', { kind: 'tls-unscanned', time: new Date().toISOString(), protocol: 'smtp', direction: 'inbound', client: '192.0.2.7:41000', reason: 'passthrough' });
  await publish(bus, 'infected', { garbage: true });
}

const expected = {
  messages: { scanned: 3, smtp: 2, pop3: 1, tempfailed: 1 },
  infected: 1,
  unscannable: { total: 1, encrypted: 1, corrupt: 0, limits: 0 },
  removedAttachments: 1,
  errors: 1,
  tlsUnscanned: { total: 1, smtp: 1, pop3: 0 },
  quarantine: { released: 0, deleted: 0, rescanned: 0, downloaded: 0 },
};

test('stats and detections are rebuilt from MW_EVENTS at start, so they survive a restart, then follow live', async (t) => {
  const { bus } = await build(t);
  await seedHistory(bus);

  // Two "service lifetimes" over the same stream: each replays it from the beginning.
  for (const life of [1, 2]) {
    const stop = new AbortController();
    const activity = new ActivityLog();
    const feed = await EventFeed.start({ js: bus.js, jsm: bus.jsm, activity, log: silent, signal: stop.signal });
    await feed.caughtUp;
    const app = await buildApp({ policyStore: { get: async () => { throw new Error('unused'); }, put: async () => { throw new Error('unused'); }, history: async () => [] }, activity, engine: fixedEngine(), adminToken: TOKEN });
    t.after(async () => {
      stop.abort();
      await app.close();
    });

    const stats = (await app.inject({ method: 'GET', url: '/api/v1/stats', headers: auth })).json<Stats>();
    assert.equal(stats.complete, true, `life ${life}`);
    const { since, lastEventAt, complete, ...counters } = stats;
    assert.ok(since && lastEventAt && complete);
    assert.deepEqual(counters, expected, `life ${life}`);

    const events = (await app.inject({ method: 'GET', url: '/api/v1/events?limit=10', headers: auth })).json<{ events: Detection[] }>().events;
    assert.deepEqual(
      events.map((e) => [e.verdict, e.file, e.action]),
      [
        ['error', 'big.bin', 'tempfail'],
        ['unscannable', 'secret.zip', 'delivered'],
        ['infected', 'eicar.com', 'removed'],
      ],
      'newest first',
    );
    const infected = events[2]!;
    assert.equal(infected.protocol, 'smtp');
    assert.equal(infected.direction, 'inbound');
    assert.equal(infected.sender, 'sender@example.org');
    assert.deepEqual(infected.recipients, ['user@example.test']);
    assert.equal(infected.subject, 'message aaaaaaaa01');
    assert.equal(infected.detail, 'Eicar-Signature');
    assert.equal(events[1]!.reason, 'encrypted');

    if (life === 2) {
      // Live: a new detection shows up without a restart.
      await publish(bus, 'infected', { kind: 'infected', ...base('aaaaaaaa04'), file: 'new.exe', verdict: 'infected', detail: 'Win.Test', action: 'removed' });
      const latest = await waitFor(async () => {
        const r = (await app.inject({ method: 'GET', url: '/api/v1/events?limit=1', headers: auth })).json<{ events: Detection[] }>().events;
        return r[0]?.file === 'new.exe' ? r : undefined;
      }, 'the live event');
      assert.equal(latest.length, 1);
      assert.equal(activity.stats().infected, 2);
      assert.equal(activity.stats().removedAttachments, 2);
    }
  }
});

test('an empty stream is caught up at once', async (t) => {
  const { bus } = await build(t);
  const stop = new AbortController();
  t.after(() => stop.abort());
  const activity = new ActivityLog();
  const feed = await EventFeed.start({ js: bus.js, jsm: bus.jsm, activity, log: silent, signal: stop.signal });
  await feed.caughtUp;
  assert.equal(activity.stats().complete, true);
  assert.equal(activity.stats().messages.scanned, 0);
  assert.equal(activity.stats().since, null);
});

test('events?limit is validated and bounded', async (t) => {
  const { app, activity } = await build(t);
  for (let i = 1; i <= 5; i++) {
    activity.record({ kind: 'infected', ...base(`bbbbbbbb0${i}`), file: `f${i}`, verdict: 'infected', action: 'removed' }, i);
  }
  const two = (await app.inject({ method: 'GET', url: '/api/v1/events?limit=2', headers: auth })).json<{ events: Detection[] }>();
  assert.deepEqual(
    two.events.map((e) => e.file),
    ['f5', 'f4'],
  );
  const dflt = (await app.inject({ method: 'GET', url: '/api/v1/events', headers: auth })).json<{ events: Detection[] }>();
  assert.equal(dflt.events.length, 5);
  for (const bad of ['0', '1001', 'abc', '2.5']) {
    const res = await app.inject({ method: 'GET', url: `/api/v1/events?limit=${bad}`, headers: auth });
    assert.equal(res.statusCode, 400, bad);
    assert.equal(res.json<{ field: string }>().field, 'limit', bad);
  }
});

test('a message finalised twice (same events published again) is counted once', () => {
  const log = new ActivityLog();
  const scanned = { kind: 'scanned' as const, ...base('dddddddd01'), parts: 2, outcome: 'deliver' as const };
  const infected = (part?: string, file = 'a.exe') => ({ kind: 'infected' as const, ...base('dddddddd01'), ...(part === undefined ? {} : { part }), file, verdict: 'infected' as const, detail: 'Eicar', action: 'removed' as const });
  let seq = 0;
  for (const e of [scanned, infected('1.1'), scanned, infected('1.1'), infected('1.2'), infected(undefined, 'b.exe'), infected(undefined, 'b.exe')]) log.record(e, ++seq);
  const s = log.stats();
  assert.equal(s.messages.scanned, 1);
  assert.equal(s.infected, 3, 'parts 1 and 2, and b.exe once');
  assert.equal(s.removedAttachments, 3);
  assert.equal(log.recent(10).length, 3);
  assert.equal(log.duplicatesDropped, 3);
});

test('the recent list is bounded; counters are not', () => {
  const log = new ActivityLog(10);
  for (let i = 1; i <= 100; i++) log.record({ kind: 'infected', ...base('cccccccc01'), part: `1.${i}`, verdict: 'infected', action: 'removed' }, i);
  assert.equal(log.recent(1000).length, 10);
  assert.equal(log.recent(1000)[0]!.id, 100);
  assert.equal(log.stats().infected, 100);
  // A replayed (already seen) sequence is not counted twice.
  log.record({ kind: 'infected', ...base('cccccccc01'), part: '1.1000', verdict: 'infected', action: 'removed' }, 50);
  assert.equal(log.stats().infected, 100);
});
