/**
 * The scan cache with two real clamd engines on different signature databases (same VERSION
 * reply, "ClamAV 1.4.6", since both are custom databases) and a real nats-server. Engine A's
 * database lacks the signature of apt's clamav-testfiles clam.exe; engine B's has it. CLAMD
 * failover order [A, B]: while A is up it scans and its "clean" is cached; when A is down, B must
 * scan (not be served A's "clean") and its "infected" is cached under B's identity; when A is
 * back, A's identity gets A's verdict again (same database, so that is correct).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { CLAMAV_DEPLOY_DIR, ClamdClient, regenerateDatabaseProbe, startClamd, type RunningClamd } from '@mailwarden/clamd';
import { createLogger } from '@mailwarden/log';
import { startNats, type RunningNats } from '@mailwarden/local-stack';
import { ScanCache, engineToken, type EngineOutcome } from '../src/scan-cache.js';

const CLAM_EXE = '/usr/share/clamav-testfiles/clam.exe';
const log = createLogger('scan-cache-engines-test', 'silent');

describe('scan cache across two clamd engines with different databases', { skip: existsSync(CLAM_EXE) ? false : `${CLAM_EXE} missing (apt-get install clamav-testfiles)` }, () => {
  let dir: string;
  let nats: RunningNats;
  let nc: NatsConnection;
  let kvm: Kvm;
  let a: RunningClamd;
  let b: RunningClamd;
  let dbA: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-scan-cache-engines-'));
    // A: the project database without clam.exe's hash signatures, with its own probe.
    dbA = join(dir, 'db-a');
    await mkdir(dbA);
    for (const f of ['mailwarden.hdb', 'mailwarden.hsb', 'mailwarden.ndb']) {
      const lines = (await readFile(join(CLAMAV_DEPLOY_DIR, f), 'utf8')).split('\n');
      await writeFile(join(dbA, f), lines.filter((l) => !l.endsWith(':Mailwarden.TestFile.clam.exe')).join('\n'));
    }
    await regenerateDatabaseProbe(dbA);
    [nats, a, b] = await Promise.all([
      startNats({ stateDir: join(dir, 'nats'), auth: false }),
      startClamd({ stateDir: join(dir, 'clamd-a'), databaseDir: dbA }),
      startClamd({ stateDir: join(dir, 'clamd-b') }), // the full project database
    ]);
    nc = await connect({ servers: nats.url, timeout: 5000 });
    kvm = new Kvm(jetstream(nc, { timeout: 5000 }));
  });
  after(async () => {
    await nc?.close();
    await Promise.all([nats?.stop(), a?.stop(), b?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('a failover never serves the other database its verdict; each verdict is filed under its engine', async () => {
    const exe = await readFile(CLAM_EXE);
    const sha256 = createHash('sha256').update(exe).digest('hex');
    // answeredWithinMs 0: A is stopped right after it answered; the test wants the very next lookup to notice
    const clamd = new ClamdClient({ addresses: [a.tcp, b.tcp], connectTimeoutMs: 500, scanTimeoutMs: 15000, answeredWithinMs: 0 });
    const cache = await ScanCache.open({ kvm, clamd, log, bucket: 'engines-test' });
    const scanX = (): Promise<EngineOutcome> => clamd.scan(async () => Readable.from([exe]));
    const keys = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const k of await (await kvm.open('engines-test')).keys()) out.push(k);
      return out.sort();
    };
    const identityA = await clamd.engineIdentity(a.tcp);
    const identityB = await clamd.engineIdentity(b.tcp);
    const versionOf = async (e: RunningClamd): Promise<string> => (await new ClamdClient({ addresses: [e.tcp] }).version()).raw;
    assert.equal(await versionOf(a), await versionOf(b), 'VERSION alone cannot tell them apart');
    assert.notEqual(identityA, identityB);

    // A is up: A scans, clean, cached under A.
    const first = await cache.scan(sha256, scanX);
    assert.deepEqual(first, { outcome: { kind: 'clean', engine: identityA, address: a.address }, source: 'scan' });
    await cache.flush();
    assert.deepEqual(await keys(), [`${engineToken(identityA)}.${sha256}`]);
    assert.equal((await cache.scan(sha256, scanX)).source, 'kv');

    // A is down: B would scan, so A's "clean" must not be served; B finds it.
    await a.stop();
    const second = await cache.scan(sha256, scanX);
    assert.equal(second.source, 'scan');
    assert.equal(second.outcome.kind, 'infected');
    assert.equal(second.outcome.kind === 'infected' && second.outcome.signature, 'Mailwarden.TestFile.clam.exe.UNOFFICIAL');
    assert.equal(second.outcome.engine, identityB);
    assert.equal(second.outcome.address, b.address);
    await cache.flush();
    assert.deepEqual(await keys(), [`${engineToken(identityA)}.${sha256}`, `${engineToken(identityB)}.${sha256}`].sort());
    const third = await cache.scan(sha256, scanX);
    assert.equal(third.source, 'kv');
    assert.equal(third.outcome.kind, 'infected');
    assert.equal(third.outcome.engine, identityB);

    // A is back (same database, same port): A's identity gets A's cached verdict again.
    a = await startClamd({ stateDir: join(dir, 'clamd-a'), databaseDir: dbA, port: a.tcp.port });
    const fourth = await cache.scan(sha256, scanX);
    assert.deepEqual(fourth, { outcome: { kind: 'clean', engine: identityA, address: a.address }, source: 'kv' });
    assert.deepEqual(cache.stats, { hits: 3, coalesced: 0, misses: 2, stored: 2, notCached: 0, kvErrors: 0 });
    cache.close();
  });
});
