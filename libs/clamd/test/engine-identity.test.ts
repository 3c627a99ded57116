/**
 * Engine identity on real clamd instances: VERSION plus the database probe tells two custom
 * databases apart (their VERSION replies are the same), is the same for the same database, and
 * falls back to VERSION alone for a database without the probe signature.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import {
  CLAMAV_DEPLOY_DIR,
  ClamdClient,
  DATABASE_PROBE,
  engineIdentity,
  freePort,
  regenerateDatabaseProbe,
  startClamd,
  type RunningClamd,
} from '../src/index.js';
import { bufferSource, fakeEngine, PROJECT_PROBE_NAME } from './helpers.js';

const TESTFILES = '/usr/share/clamav-testfiles';
const CLAM_EXE = join(TESTFILES, 'clam.exe');

/** A copy of the project database; `without` drops the hash signatures of that test file. */
async function database(dir: string, opts: { without?: string; probe: boolean }): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const f of ['mailwarden.hdb', 'mailwarden.hsb', 'mailwarden.ndb']) {
    const text = await readFile(join(CLAMAV_DEPLOY_DIR, f), 'utf8');
    const kept = opts.without === undefined ? text : text.split('\n').filter((l) => !l.endsWith(`:Mailwarden.TestFile.${opts.without}`)).join('\n');
    await writeFile(join(dir, f), kept);
  }
  if (opts.probe) await regenerateDatabaseProbe(dir);
  return dir;
}

describe('engine identity (VERSION + database probe) on real clamd', () => {
  let root: string;
  const engines: Record<'full' | 'fullAgain' | 'noClamExe' | 'noProbe', RunningClamd | undefined> = {
    full: undefined,
    fullAgain: undefined,
    noClamExe: undefined,
    noProbe: undefined,
  };
  const get = (k: keyof typeof engines): RunningClamd => engines[k] ?? assert.fail(`${k} not started`);

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mw-engine-id-'));
    const fullAgainDb = join(root, 'full-again-db');
    await mkdir(fullAgainDb);
    for (const f of ['mailwarden.hdb', 'mailwarden.hsb', 'mailwarden.ndb', 'mailwarden.probe.ndb']) await copyFile(join(CLAMAV_DEPLOY_DIR, f), join(fullAgainDb, f));
    const [full, fullAgain, noClamExe, noProbe] = await Promise.all([
      startClamd({ stateDir: join(root, 'full') }),
      startClamd({ stateDir: join(root, 'full-again'), databaseDir: fullAgainDb }),
      database(join(root, 'no-clam-exe-db'), { without: 'clam.exe', probe: true }).then((db) => startClamd({ stateDir: join(root, 'no-clam-exe'), databaseDir: db })),
      database(join(root, 'no-probe-db'), { probe: false }).then((db) => startClamd({ stateDir: join(root, 'no-probe'), databaseDir: db })),
    ]);
    Object.assign(engines, { full, fullAgain, noClamExe, noProbe });
  });
  after(async () => {
    await Promise.all(Object.values(engines).map((e) => e?.stop()));
    await rm(root, { recursive: true, force: true });
  });

  it('differs for two databases although their VERSION replies are equal, and is stable for one database', async () => {
    const c = new ClamdClient({ addresses: [get('full').tcp, get('fullAgain').tcp, get('noClamExe').tcp] });
    const version = (await c.version()).raw;
    assert.match(version, /^ClamAV [0-9.]+$/, 'a custom database only: no signature version in VERSION');
    for (const e of ['fullAgain', 'noClamExe'] as const) {
      assert.equal((await new ClamdClient({ addresses: [get(e).tcp] }).version()).raw, version);
    }
    const full = await c.engineIdentity(get('full').tcp);
    const fullAgain = await c.engineIdentity(get('fullAgain').tcp);
    const noClamExe = await c.engineIdentity(get('noClamExe').tcp);
    assert.equal(full, `${version}/${PROJECT_PROBE_NAME}`);
    assert.equal(fullAgain, full, 'the same database in another clamd: the same identity');
    assert.match(noClamExe, /^ClamAV [0-9.]+\/Mailwarden\.DbVersion\.[0-9a-f]{12}$/);
    assert.notEqual(noClamExe, full);
    // Learned again (a new client, a refresh interval of 0): the same.
    const again = new ClamdClient({ addresses: [get('full').tcp], identityRefreshMs: 0 });
    assert.equal(await again.engineIdentity(get('full').tcp), full);
    assert.equal(await again.engineIdentity(get('full').tcp), full);
  });

  it('scan results carry the identity of the engine that scanned, also after a failover', async () => {
    const refused = { kind: 'tcp' as const, host: '127.0.0.1', port: await freePort() };
    const c = new ClamdClient({ addresses: [refused, get('noClamExe').tcp, get('full').tcp], connectTimeoutMs: 500 });
    const r = await c.scan(bufferSource(Buffer.from('an ordinary text')));
    assert.equal(r.address, get('noClamExe').address);
    assert.equal(r.engine, await c.engineIdentity(get('noClamExe').tcp));
    assert.deepEqual(await c.preferredEngine(), { address: get('noClamExe').address, engine: r.engine });
  });

  it('the two databases really differ: clam.exe is found by one only', { skip: existsSync(CLAM_EXE) ? false : `${CLAM_EXE} missing (apt-get install clamav-testfiles)` }, async () => {
    const exe = await readFile(CLAM_EXE);
    const full = await new ClamdClient({ addresses: [get('full').tcp] }).scan(bufferSource(exe));
    const partial = await new ClamdClient({ addresses: [get('noClamExe').tcp] }).scan(bufferSource(exe));
    assert.equal(full.kind, 'infected');
    assert.equal(partial.kind, 'clean');
    assert.notEqual(full.engine, partial.engine);
  });

  it('a database without the probe signature (e.g. the official one): VERSION alone is the identity', async () => {
    const c = new ClamdClient({ addresses: [get('noProbe').tcp] });
    const probe = await c.scan(bufferSource(Buffer.from(DATABASE_PROBE)));
    assert.equal(probe.kind, 'clean');
    const version = (await c.version()).raw;
    assert.equal(await c.engineIdentity(get('noProbe').tcp), version);
    assert.equal(probe.engine, version);
  });

  it('engineIdentity() composes VERSION and the probe answer', () => {
    assert.equal(engineIdentity('ClamAV 1.4.6/27471/Tue Nov 26 09:35:03 2024', { kind: 'clean' }), 'ClamAV 1.4.6/27471/Tue Nov 26 09:35:03 2024');
    assert.equal(
      engineIdentity('ClamAV 1.4.6', { kind: 'infected', signature: 'Mailwarden.DbVersion.0123456789ab.UNOFFICIAL' }),
      'ClamAV 1.4.6/Mailwarden.DbVersion.0123456789ab',
    );
  });

  it('identity is learned once per refresh interval (one VERSION and one probe per address), not per scan', async () => {
    const fake = await fakeEngine((socket) => socket.end('stream: OK\0'), { probeReply: 'stream: Mailwarden.DbVersion.0123456789ab.UNOFFICIAL FOUND' });
    try {
      const c = new ClamdClient({ addresses: [fake.address], identityRefreshMs: 300 });
      const results = await Promise.all(Array.from({ length: 5 }, () => c.scan(bufferSource(Buffer.from('x')))));
      assert.deepEqual(fake.asked, { version: 1, probe: 1 }, 'concurrent scans share one learning');
      assert.ok(results.every((r) => r.engine === 'ClamAV 1.4.6/Mailwarden.DbVersion.0123456789ab'));
      await c.scan(bufferSource(Buffer.from('y')));
      await c.preferredEngine();
      assert.deepEqual(fake.asked, { version: 1, probe: 1 });
      await new Promise((r) => setTimeout(r, 350));
      await c.scan(bufferSource(Buffer.from('z')));
      assert.deepEqual(fake.asked, { version: 2, probe: 2 }, 'the first scan after the interval learns again');
    } finally {
      await fake.close();
    }
  });
});
