/**
 * The scan cache against a real nats-server (KV bucket) and a fake clamd (to count scans and
 * inject errors, hangs and version changes).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { ClamdClient } from '@mailwarden/clamd';
import { createLogger } from '@mailwarden/log';
import { startNats, type RunningNats } from '@mailwarden/local-stack';
import { ScanCache, openScanCache, versionToken, type EngineOutcome } from '../src/scan-cache.js';
import { startFakeClamd, type FakeClamd } from './fake-clamd.js';

const log = createLogger('scan-cache-test', 'silent');
const sha = (content: Buffer): string => createHash('sha256').update(content).digest('hex');

describe('ScanCache', () => {
  let dir: string;
  let nats: RunningNats;
  let nc: NatsConnection;
  let kvm: Kvm;
  let fake: FakeClamd;
  let clamd: ClamdClient;
  let bucketNo = 0;
  let bucket: string;
  const caches: ScanCache[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-scan-cache-'));
    nats = await startNats({ stateDir: dir });
    nc = await connect({ servers: nats.url, timeout: 5000 });
    kvm = new Kvm(jetstream(nc, { timeout: 5000 }));
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    fake = await startFakeClamd();
    clamd = new ClamdClient({ addresses: [fake.address], connectTimeoutMs: 1000, scanTimeoutMs: 300, commandTimeoutMs: 1000 });
    bucket = `scan-cache-test-${++bucketNo}`; // a fresh bucket per test
  });
  afterEach(async () => {
    for (const c of caches.splice(0)) c.close();
    await fake.close();
  });

  const open = async (opts: { ttlMs?: number; epoch?: string } = {}): Promise<ScanCache> => {
    const cache = await ScanCache.open({ kvm, clamd, log, bucket, versionCheckMs: 3_600_000, ...opts });
    caches.push(cache);
    return cache;
  };
  const scanOf = (content: Buffer) => (): Promise<EngineOutcome> => clamd.scan(async () => Readable.from([content]));
  const keys = async (): Promise<string[]> => {
    const out: string[] = [];
    for await (const k of await (await kvm.open(bucket)).keys()) out.push(k);
    return out.sort();
  };

  it('scans identical content once and answers later scans from the bucket', async () => {
    const cache = await open();
    const content = Buffer.from('the same attachment, sent to many recipients');
    const first = await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    const second = await cache.scan(sha(content), scanOf(content));
    assert.deepEqual(first, { outcome: { kind: 'clean', engine: `127.0.0.1:${fake.address.port}` }, source: 'scan' });
    assert.deepEqual(second, { outcome: first.outcome, source: 'kv' });
    assert.equal(fake.scans, 1);
    assert.deepEqual(await keys(), [`ClamAV_1_4_6.${sha(content)}`]);
    assert.deepEqual(cache.stats, { hits: 1, coalesced: 0, misses: 1, stored: 1, kvErrors: 0 });

    // Another scanner process (a second cache on the same bucket) finds it too.
    const other = await open();
    assert.equal((await other.scan(sha(content), scanOf(content))).source, 'kv');
    assert.equal(fake.scans, 1);
  });

  it('coalesces concurrent scans of the same content into one', async () => {
    const cache = await open();
    const content = Buffer.from('burst of a mass mailing');
    const results = await Promise.all(Array.from({ length: 8 }, () => cache.scan(sha(content), scanOf(content))));
    assert.equal(fake.scans, 1);
    assert.deepEqual(results.map((r) => r.source).sort(), ['inflight', 'inflight', 'inflight', 'inflight', 'inflight', 'inflight', 'inflight', 'scan']);
    assert.ok(results.every((r) => r.outcome.kind === 'clean'));
  });

  it('keeps infected and unscannable verdicts with their names', async () => {
    const cache = await open();
    fake.reply = (c) => (c.includes('VIRUS') ? { found: 'Mailwarden.Test.EICAR.UNOFFICIAL' } : { found: 'Heuristics.Encrypted.Zip' });
    const infected = Buffer.from('a VIRUS inside');
    const encrypted = Buffer.from('an encrypted zip');
    for (let round = 0; round < 2; round++) {
      const a = await cache.scan(sha(infected), scanOf(infected));
      const b = await cache.scan(sha(encrypted), scanOf(encrypted));
      await cache.flush();
      assert.deepEqual(a.outcome, { kind: 'infected', signature: 'Mailwarden.Test.EICAR.UNOFFICIAL', engine: `127.0.0.1:${fake.address.port}` });
      assert.deepEqual(b.outcome, { kind: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.Zip', engine: `127.0.0.1:${fake.address.port}` });
      assert.equal(a.source, round === 0 ? 'scan' : 'kv');
      assert.equal(b.source, round === 0 ? 'scan' : 'kv');
    }
    assert.equal(fake.scans, 2);
  });

  it('never caches an engine error or a timeout', async () => {
    const cache = await open();
    const content = Buffer.from('unlucky part');
    fake.reply = () => 'ERROR';
    await assert.rejects(cache.scan(sha(content), scanOf(content)), { name: 'ClamdError' });
    fake.reply = () => 'HANG';
    await assert.rejects(cache.scan(sha(content), scanOf(content)), /no verdict within 300 ms/);
    await cache.flush();
    assert.deepEqual(await keys(), []);
    fake.reply = () => 'OK';
    const ok = await cache.scan(sha(content), scanOf(content));
    assert.equal(ok.source, 'scan');
    assert.equal(ok.outcome.kind, 'clean');
    assert.equal(fake.scans, 3);
  });

  it('a failed scan is not shared: a waiting job scans on its own', async () => {
    const cache = await open();
    const content = Buffer.from('first attempt fails');
    let n = 0;
    fake.reply = () => (++n === 1 ? 'ERROR' : 'OK');
    const [first, second] = await Promise.allSettled([cache.scan(sha(content), scanOf(content)), cache.scan(sha(content), scanOf(content))]);
    assert.equal(first.status, 'rejected');
    assert.equal(second.status, 'fulfilled');
    assert.equal(second.status === 'fulfilled' && second.value.outcome.kind, 'clean');
    assert.equal(fake.scans, 2);
  });

  it('a new signature version (or epoch) invalidates every entry', async () => {
    const cache = await open();
    const content = Buffer.from('scanned before the signature update');
    await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    fake.version = 'ClamAV 1.4.6/27001/Tue Nov 25 09:00:00 2026';
    await cache.refreshVersion();
    assert.equal(cache.version, 'ClamAV_1_4_6-27001');
    const again = await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    assert.equal(again.source, 'scan');
    assert.equal(fake.scans, 2);
    assert.deepEqual(await keys(), [`ClamAV_1_4_6-27001.${sha(content)}`, `ClamAV_1_4_6.${sha(content)}`]);

    const bumped = await open({ epoch: '2026-11-27' });
    assert.equal(bumped.version, 'ClamAV_1_4_6-27001-2026-11-27');
    assert.equal((await bumped.scan(sha(content), scanOf(content))).source, 'scan');
    assert.equal(fake.scans, 3);
  });

  it('keeps the known version when clamd cannot tell it', async () => {
    const cache = await open();
    fake.version = undefined;
    await cache.refreshVersion();
    assert.equal(cache.version, 'ClamAV_1_4_6');
  });

  it('with the version unknown (clamd down at start) it scans and stores nothing', async () => {
    fake.version = undefined;
    const cache = await open();
    assert.equal(cache.version, undefined);
    const content = Buffer.from('no version, no cache');
    assert.equal((await cache.scan(sha(content), scanOf(content))).source, 'scan');
    await cache.flush();
    assert.equal((await cache.scan(sha(content), scanOf(content))).source, 'scan');
    assert.equal(fake.scans, 2);
    assert.deepEqual(await keys(), []);
  });

  it('creates its bucket with the TTL and ignores content that is not a sha256', async () => {
    const cache = await open({ ttlMs: 90_000 });
    const status = await (await kvm.open(bucket)).status();
    assert.equal(status.ttl, 90_000);
    assert.equal(status.history, 1);
    const content = Buffer.from('x');
    await cache.scan('not-a-hash', scanOf(content));
    await cache.scan('not-a-hash', scanOf(content));
    assert.equal(fake.scans, 2);
  });

  it('openScanCache reads its settings from the environment', async () => {
    assert.equal(await openScanCache({ kvm, clamd, log, bucket, env: { SCAN_CACHE: 'off' } }), undefined);
    await assert.rejects(openScanCache({ kvm, clamd, log, bucket, env: { SCAN_CACHE_TTL_MS: 'soon' } }), /SCAN_CACHE_TTL_MS/);
    const cache = await openScanCache({ kvm, clamd, log, bucket, env: { SCAN_CACHE_TTL_MS: '120000', SCAN_CACHE_EPOCH: 'e1' } });
    assert.ok(cache);
    caches.push(cache);
    assert.equal(cache.version, 'ClamAV_1_4_6-e1');
    assert.equal((await (await kvm.open(bucket)).status()).ttl, 120_000);
  });

  it('versionToken makes a KV-safe key prefix', () => {
    assert.equal(versionToken('ClamAV 1.4.6', ''), 'ClamAV_1_4_6');
    assert.equal(versionToken('ClamAV 1.4.6', '27000'), 'ClamAV_1_4_6-27000');
    assert.equal(versionToken('ClamAV 1.4.6', '27000', 'db v2'), 'ClamAV_1_4_6-27000-db_v2');
    assert.equal(versionToken('', ''), 'unknown');
  });
});
