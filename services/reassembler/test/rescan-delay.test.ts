import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Bus, DeliveryRecords } from '@mailwarden/bus';
import type { MessageVerdict } from '@mailwarden/contracts';
import type { ObjectStore } from '@mailwarden/storage';
import { RESCAN_MAX_MS, RESCAN_MIN_MS, RescanLater, handOff, rescanDelayMs } from '../src/delivery/index.js';

const at = (ms: number) => new Date(Date.parse('2026-12-05T10:00:00Z') + ms).toISOString();

test('a failed scan waits a tenth of the message age, between 5 s and 10 min', () => {
  assert.equal(rescanDelayMs(at(0), at(3_000)), RESCAN_MIN_MS);
  assert.equal(rescanDelayMs(at(0), at(3_600_000)), 360_000);
  assert.equal(rescanDelayMs(at(0), at(86_400_000)), RESCAN_MAX_MS);
});

function verdictOf(receivedAgoMs: number, failedAgoMs: number): MessageVerdict {
  const now = Date.now();
  return {
    envelope: { ref: 'rescanref01', protocol: 'smtp', direction: 'inbound', receivedAt: new Date(now - receivedAgoMs).toISOString(), mailFrom: 'a@example.org', rcptTo: ['b@example.test'], rawKey: 'msg/rescanref01/raw.eml', rawSize: 10, rawSha256: '0'.repeat(64), delivery: 'queue' },
    outcome: 'error',
    error: 'clamd down',
    rootHeader: { start: 0, end: 0 },
    parts: [],
    scans: 0,
    scannedAt: new Date(now - failedAgoMs).toISOString(),
  } as MessageVerdict;
}

test('the hand-off of a failed scan holds it until its rescan is due, then publishes the rescan job', async () => {
  const published: string[] = [];
  const bus = { js: { publish: async (subject: string) => void published.push(subject) } } as unknown as Bus;
  const deps = { bus, store: {} as ObjectStore, records: {} as DeliveryRecords, log: pino({ level: 'silent' }), hostname: 'mx.test', lifetimeMs: 5 * 86_400_000 };
  const result = { ref: 'rescanref01', outcome: 'tempfail' as const, removed: [], subjectPrefixed: false, error: 'clamd down' };
  // failed just now, one hour after it was received: 6 minutes to wait
  const early = await handOff(deps, verdictOf(3_600_000, 0), result).then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(early instanceof RescanLater);
  assert.ok(early.delayMs > 350_000 && early.delayMs <= 360_000, String(early.delayMs));
  assert.deepEqual(published, []);
  // the same failure seen again after its wait
  await handOff(deps, verdictOf(3_600_000 + 360_000, 360_000), result);
  assert.deepEqual(published, ['mw.job.rescan.rescanref01']);
});
