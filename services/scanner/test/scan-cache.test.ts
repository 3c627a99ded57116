/**
 * The scan cache against a real nats-server (KV bucket) and a fake clamd (to count scans and
 * inject errors, hangs and identity changes). Two real clamd engines with different databases:
 * scan-cache-engines.test.ts.
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
import { ScanCache, engineToken, isCacheable, openScanCache, scanCacheIdentityRefreshMs, type EngineOutcome } from '../src/scan-cache.js';
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
    nats = await startNats({ stateDir: dir, auth: false });
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

  const open = async (opts: { ttlMs?: number; epoch?: string; client?: ClamdClient } = {}): Promise<ScanCache> => {
    const { client, ...rest } = opts;
    const cache = await ScanCache.open({ kvm, clamd: client ?? clamd, log, bucket, ...rest });
    caches.push(cache);
    return cache;
  };
  const scanOf =
    (content: Buffer, client?: ClamdClient) =>
    (): Promise<EngineOutcome> =>
      (client ?? clamd).scan(async () => Readable.from([content]));
  const address = (): string => `127.0.0.1:${fake.address.port}`;
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
    assert.deepEqual(first, { outcome: { kind: 'clean', engine: 'ClamAV 1.4.6', address: address() }, source: 'scan' });
    assert.deepEqual(second, { outcome: first.outcome, source: 'kv' });
    assert.equal(fake.scans, 1);
    assert.deepEqual(await keys(), [`ClamAV_1_4_6.${sha(content)}`]);
    assert.deepEqual(cache.stats, { hits: 1, coalesced: 0, misses: 1, stored: 1, notCached: 0, kvErrors: 0 });
    assert.equal(fake.probes, 1, 'the identity is learned once (VERSION + one probe), not per scan');

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
      assert.deepEqual(a.outcome, { kind: 'infected', signature: 'Mailwarden.Test.EICAR.UNOFFICIAL', engine: 'ClamAV 1.4.6', address: address() });
      assert.deepEqual(b.outcome, { kind: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.Zip', engine: 'ClamAV 1.4.6', address: address() });
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

  it('never caches a limits verdict (load- and configuration-dependent)', async () => {
    const cache = await open();
    const content = Buffer.from('took too long under load');
    fake.reply = () => ({ found: 'Heuristics.Limits.Exceeded.MaxScanTime' });
    for (let round = 0; round < 2; round++) {
      const r = await cache.scan(sha(content), scanOf(content));
      assert.equal(r.source, 'scan');
      assert.deepEqual(r.outcome, { kind: 'unscannable', reason: 'limits', signature: 'Heuristics.Limits.Exceeded.MaxScanTime', engine: 'ClamAV 1.4.6', address: address() });
    }
    // The INSTREAM size limit, from a scan function (as the worker passes one).
    const big = Buffer.from('over StreamMaxLength');
    const sizeLimit = async (): Promise<EngineOutcome> => ({ kind: 'unscannable', reason: 'limits', signature: 'INSTREAM size limit exceeded', engine: 'ClamAV 1.4.6', address: address() });
    assert.equal((await cache.scan(sha(big), sizeLimit)).source, 'scan');
    assert.equal((await cache.scan(sha(big), sizeLimit)).source, 'scan');
    await cache.flush();
    assert.deepEqual(await keys(), []);
    assert.equal(fake.scans, 2);
    assert.deepEqual(cache.stats, { hits: 0, coalesced: 0, misses: 4, stored: 0, notCached: 4, kvErrors: 0 });
    // Once the load is gone, the real verdict is cached as usual.
    fake.reply = () => 'OK';
    await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    assert.deepEqual(await keys(), [`ClamAV_1_4_6.${sha(content)}`]);
  });

  it('looks up under the engine that would scan, stores under the engine that did', async () => {
    const cache = await open();
    const content = Buffer.from('scanned elsewhere');
    const elsewhere = async (): Promise<EngineOutcome> => ({ kind: 'clean', engine: 'ClamAV 1.4.6/Mailwarden.DbVersion.000000000000', address: 'other:3310' });
    assert.equal((await cache.scan(sha(content), elsewhere)).source, 'scan');
    await cache.flush();
    assert.deepEqual(await keys(), [`ClamAV_1_4_6_Mailwarden_DbVersion_000000000000.${sha(content)}`]);
    // The fake (identity "ClamAV 1.4.6") would scan now: the other engine's verdict is not its.
    const again = await cache.scan(sha(content), scanOf(content));
    assert.equal(again.source, 'scan');
    assert.equal(again.outcome.engine, 'ClamAV 1.4.6');
    assert.equal(fake.scans, 1);
  });

  it('a new database (probe name) or VERSION changes the identity: every entry is invalidated', async () => {
    const client = new ClamdClient({ addresses: [fake.address], scanTimeoutMs: 1000, identityRefreshMs: 1 });
    const cache = await open({ client });
    const content = Buffer.from('scanned before the signature update');
    fake.probeName = 'Mailwarden.DbVersion.aaaaaaaaaaaa';
    await cache.scan(sha(content), scanOf(content, client));
    await cache.flush();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await cache.scan(sha(content), scanOf(content, client))).source, 'kv');

    fake.probeName = 'Mailwarden.DbVersion.bbbbbbbbbbbb'; // the custom database changed, VERSION did not
    await new Promise((r) => setTimeout(r, 5));
    const again = await cache.scan(sha(content), scanOf(content, client));
    assert.equal(again.source, 'scan');
    assert.equal(again.outcome.engine, 'ClamAV 1.4.6/Mailwarden.DbVersion.bbbbbbbbbbbb');

    fake.probeName = undefined; // an official database: VERSION carries its version
    fake.version = 'ClamAV 1.4.6/27001/Tue Nov 25 09:00:00 2026';
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await cache.scan(sha(content), scanOf(content, client))).source, 'scan');
    await cache.flush();
    assert.equal(fake.scans, 3);
    assert.deepEqual(await keys(), [
      `ClamAV_1_4_6_27001_Tue_Nov_25_09_00_00_2026.${sha(content)}`,
      `ClamAV_1_4_6_Mailwarden_DbVersion_aaaaaaaaaaaa.${sha(content)}`,
      `ClamAV_1_4_6_Mailwarden_DbVersion_bbbbbbbbbbbb.${sha(content)}`,
    ]);

    // The operator epoch still invalidates everything at once.
    const bumped = await open({ client, epoch: '2026-11-27' });
    assert.equal((await bumped.scan(sha(content), scanOf(content, client))).source, 'scan');
    assert.equal(fake.scans, 4);
  });

  it('an engine that cannot tell its identity is neither looked up nor used to scan', async () => {
    const cache = await open();
    const content = Buffer.from('no identity, no cache');
    await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    const fresh = new ClamdClient({ addresses: [fake.address], connectTimeoutMs: 1000, scanTimeoutMs: 300, commandTimeoutMs: 300 });
    const other = await open({ client: fresh });
    fake.version = undefined;
    await assert.rejects(other.scan(sha(content), scanOf(content, fresh)), { name: 'ClamdError' });
    assert.equal(fake.scans, 1, 'nothing served from the cache, nothing scanned on an unidentified engine');
    assert.deepEqual(other.stats, { hits: 0, coalesced: 0, misses: 1, stored: 0, notCached: 0, kvErrors: 0 });
  });

  it('with every clamd down it scans (and fails), never serving a cached verdict', async () => {
    const cache = await open();
    const content = Buffer.from('clamd is gone');
    await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    await fake.close();
    // an engine that answered within answeredWithinMs (1 s) still counts as up: past that, a PING decides
    await new Promise((r) => setTimeout(r, 1100));
    await assert.rejects(cache.scan(sha(content), scanOf(content)), { name: 'ClamdError' });
    assert.equal(cache.stats.hits, 0);
  });

  it('an engine that answered less than answeredWithinMs ago is taken as up without a PING', async () => {
    const cache = await open();
    const content = Buffer.from('recently seen');
    await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    const pings = fake.pings;
    assert.equal((await cache.scan(sha(content), scanOf(content))).source, 'kv');
    assert.equal(fake.pings, pings, 'no PING for a lookup right after a scan');
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
    const content = Buffer.from('with an epoch');
    await cache.scan(sha(content), scanOf(content));
    await cache.flush();
    assert.deepEqual(await keys(), [`ClamAV_1_4_6-e1.${sha(content)}`]);
    assert.equal((await (await kvm.open(bucket)).status()).ttl, 120_000);
    assert.equal(scanCacheIdentityRefreshMs({}), 60_000);
    assert.equal(scanCacheIdentityRefreshMs({ SCAN_CACHE_VERSION_CHECK_MS: '5000' }), 5000);
    assert.throws(() => scanCacheIdentityRefreshMs({ SCAN_CACHE_VERSION_CHECK_MS: '0' }), /SCAN_CACHE_VERSION_CHECK_MS/);
  });

  it('engineToken makes a KV-safe key prefix; isCacheable refuses limits', () => {
    assert.equal(engineToken('ClamAV 1.4.6'), 'ClamAV_1_4_6');
    assert.equal(engineToken('ClamAV 1.4.6/Mailwarden.DbVersion.fdbd2c06606d'), 'ClamAV_1_4_6_Mailwarden_DbVersion_fdbd2c06606d');
    assert.equal(engineToken('ClamAV 1.4.6/27000/Tue Nov 25 09:00:00 2026', 'db v2'), 'ClamAV_1_4_6_27000_Tue_Nov_25_09_00_00_2026-db_v2');
    assert.equal(engineToken(''), 'unknown');
    const e = { engine: 'ClamAV 1.4.6', address: 'a:1' };
    assert.equal(isCacheable({ kind: 'clean', ...e }), true);
    assert.equal(isCacheable({ kind: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.Zip', ...e }), true);
    assert.equal(isCacheable({ kind: 'unscannable', reason: 'limits', signature: 'Heuristics.Limits.Exceeded.MaxFileSize', ...e }), false);
    assert.equal(isCacheable({ kind: 'clean', engine: '', address: 'a:1' }), false);
  });
});
