/**
 * The quarantine API over real components: NATS (audit events on MW_EVENTS), s3rver (the entries,
 * written the way the reassembler writes them), clamd with the project's signatures (rescan) and a
 * real SMTP server (smtp-server) receiving releases. 401, 400 naming the field, 404 included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { ObjectKeys, type QuarantineEntry } from '@mailwarden/contracts';
import { parseClamdAddresses, startClamd, ClamdClient } from '@mailwarden/clamd';
import { startS3 } from '@mailwarden/local-stack';
import { createLogger } from '@mailwarden/log';
import { deliverMessage } from '@mailwarden/smtp-client';
import { MinioStore } from '@mailwarden/storage';
import { EICAR, composeMessage, waitFor } from '@mailwarden/testkit';
import { ActivityLog, EventFeed, Quarantine, clamdRescan } from '../src/index.js';
import { TOKEN, auth, build } from './harness.js';

const log = createLogger('quarantine-test', 'silent');

interface Received {
  from: string;
  to: string[];
  data: Buffer;
}

async function startSink(t: { after(fn: () => Promise<void>): void }): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('nobody@')) return cb(Object.assign(new Error('no such user'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks) });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.server.address() as AddressInfo).port, received };
}

async function putEntry(store: MinioStore, entry: QuarantineEntry, raw: Buffer): Promise<void> {
  await store.put(ObjectKeys.quarantineRaw(entry.ref), Readable.from([raw]), raw.length);
  const meta = Buffer.from(JSON.stringify(entry));
  await store.put(ObjectKeys.quarantineMeta(entry.ref), Readable.from([meta]), meta.length);
}

function entryFor(ref: string, raw: Buffer, over: Partial<QuarantineEntry> = {}): QuarantineEntry {
  return {
    ref,
    messageRef: ref,
    time: new Date().toISOString(),
    protocol: 'smtp',
    direction: 'inbound',
    sender: 'billing@supplier.example',
    recipients: ['anna@example.test'],
    subject: 'Invoice',
    size: raw.length,
    sha256: createHash('sha256').update(raw).digest('hex'),
    parts: [{ path: '2', filename: 'eicar.com', contentType: 'application/octet-stream', size: EICAR.length, sha256: createHash('sha256').update(EICAR).digest('hex'), verdict: 'infected', signature: 'Eicar-Test-Signature' }],
    releases: [],
    ...over,
  };
}

test('quarantine API: list with filters and paging, get, original, release, rescan, delete, sweep; 401/400/404; audit events', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mw-quarantine-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s3 = await startS3({ stateDir: dir, buckets: ['mailwarden'] });
  t.after(() => s3.stop());
  const clamd = await startClamd({ stateDir: join(dir, 'clamd') });
  t.after(() => clamd.stop());
  const sink = await startSink(t);
  const store = new MinioStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: 'mailwarden' });
  t.after(() => store.close());

  let retention = 30;
  const harness = await build(t);
  const { bus } = harness;
  const quarantine = new Quarantine({
    store,
    deliver: (d) => deliverMessage({ host: '127.0.0.1', port: sink.port, connectTimeoutMs: 5000, commandTimeoutMs: 10_000 }, { ...d, helloName: 'test.local' }),
    rescan: clamdRescan(new ClamdClient({ addresses: parseClamdAddresses(clamd.address), connectTimeoutMs: 2000, scanTimeoutMs: 30_000 })),
    audit: async (event) => {
      await bus.js.publish(`mw.event.${event.kind}`, JSON.stringify(event));
    },
    retentionDays: () => retention,
    log,
  });
  const { buildApp } = await import('../src/index.js');
  const activity = new ActivityLog();
  const app = await buildApp({ policyStore: harness.store, activity, engine: { status: async () => ({ reachable: true, checkedAt: '', engines: [] }) }, adminToken: TOKEN, quarantine: { quarantine, retentionDays: () => retention } });
  t.after(() => app.close());
  const stop = new AbortController();
  t.after(() => stop.abort());
  await EventFeed.start({ js: bus.js, jsm: bus.jsm, activity, log, signal: stop.signal });

  const eicarMail = composeMessage({ to: 'anna@example.test', subject: 'Invoice', attachments: [{ filename: 'eicar.com', data: EICAR }] });
  const zipMail = composeMessage({ to: 'bob@example.test', subject: 'Contract', attachments: [{ filename: 'contract.zip', data: Buffer.from('not really a zip') }] });
  const day = 86_400_000;
  await putEntry(store, entryFor('q1aaaaaaaaaa', eicarMail, { time: new Date(Date.now() - 3 * day).toISOString() }), eicarMail);
  await putEntry(
    store,
    entryFor('q2bbbbbbbbbb', zipMail, {
      time: new Date(Date.now() - day).toISOString(),
      sender: 'legal@partner.example',
      recipients: ['bob@example.test'],
      subject: 'Contract',
      parts: [{ path: '2', filename: 'contract.zip', contentType: 'application/zip', size: 16, sha256: '0'.repeat(64), verdict: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.Zip' }],
    }),
    zipMail,
  );
  await putEntry(store, entryFor('q3cccccccccc', eicarMail, { time: new Date(Date.now() - 60_000).toISOString(), recipients: ['carol@example.test'] }), eicarMail);

  const get = (url: string, headers: Record<string, string> = auth) => app.inject({ method: 'GET', url, headers });

  // Auth: no token and a wrong token are refused on every route.
  for (const [method, url] of [
    ['GET', '/api/v1/quarantine'],
    ['GET', '/api/v1/quarantine/q1aaaaaaaaaa'],
    ['GET', '/api/v1/quarantine/q1aaaaaaaaaa/original'],
    ['POST', '/api/v1/quarantine/q1aaaaaaaaaa/release'],
    ['POST', '/api/v1/quarantine/q1aaaaaaaaaa/rescan'],
    ['DELETE', '/api/v1/quarantine/q1aaaaaaaaaa'],
  ] as const) {
    assert.equal((await app.inject({ method, url })).statusCode, 401, `${method} ${url} without a token`);
    assert.equal((await app.inject({ method, url, headers: { authorization: 'Bearer wrong-token' } })).statusCode, 401, `${method} ${url} with a wrong token`);
  }

  // List: newest first, filters, paging.
  const all = (await get('/api/v1/quarantine')).json<{ entries: QuarantineEntry[]; total: number; retentionDays: number }>();
  assert.deepEqual(all.entries.map((e) => e.ref), ['q3cccccccccc', 'q2bbbbbbbbbb', 'q1aaaaaaaaaa']);
  assert.equal(all.total, 3);
  assert.equal(all.retentionDays, 30);
  const refs = async (query: string) => (await get(`/api/v1/quarantine?${query}`)).json<{ entries: QuarantineEntry[] }>().entries.map((e) => e.ref);
  assert.deepEqual(await refs('reason=encrypted'), ['q2bbbbbbbbbb']);
  assert.deepEqual(await refs('reason=infected'), ['q3cccccccccc', 'q1aaaaaaaaaa']);
  assert.deepEqual(await refs('signature=eicar'), ['q3cccccccccc', 'q1aaaaaaaaaa']);
  assert.deepEqual(await refs('recipient=CAROL'), ['q3cccccccccc']);
  assert.deepEqual(await refs('sender=partner.example'), ['q2bbbbbbbbbb']);
  assert.deepEqual(await refs('ref=q1'), ['q1aaaaaaaaaa']);
  assert.deepEqual(await refs(`from=${new Date(Date.now() - 2 * day).toISOString()}`), ['q3cccccccccc', 'q2bbbbbbbbbb']);
  assert.deepEqual(await refs(`to=${new Date(Date.now() - 2 * day).toISOString()}`), ['q1aaaaaaaaaa']);
  const page1 = (await get('/api/v1/quarantine?limit=2')).json<{ entries: QuarantineEntry[]; nextOffset?: number }>();
  assert.deepEqual(page1.entries.map((e) => e.ref), ['q3cccccccccc', 'q2bbbbbbbbbb']);
  assert.equal(page1.nextOffset, 2);
  const page2 = (await get('/api/v1/quarantine?limit=2&offset=2')).json<{ entries: QuarantineEntry[]; nextOffset?: number }>();
  assert.deepEqual(page2.entries.map((e) => e.ref), ['q1aaaaaaaaaa']);
  assert.equal(page2.nextOffset, undefined);

  // 400 names the field.
  for (const [url, field] of [
    ['/api/v1/quarantine?limit=0', 'limit'],
    ['/api/v1/quarantine?reason=virus', 'reason'],
    ['/api/v1/quarantine?from=yesterday', 'from'],
    ['/api/v1/quarantine/NOT-A-REF', 'ref'],
  ] as const) {
    const r = await get(url);
    assert.equal(r.statusCode, 400, url);
    assert.equal(r.json<{ field: string }>().field, field, url);
  }
  const badRelease = await app.inject({ method: 'POST', url: '/api/v1/quarantine/q1aaaaaaaaaa/release', headers: auth, payload: { recipients: ['not an address'] } });
  assert.equal(badRelease.statusCode, 400);
  assert.equal(badRelease.json<{ field: string }>().field, 'recipients.0');
  const unknownField = await app.inject({ method: 'POST', url: '/api/v1/quarantine/q1aaaaaaaaaa/release', headers: auth, payload: { to: ['x@example.test'] } });
  assert.equal(unknownField.statusCode, 400);
  assert.equal(unknownField.json<{ field: string }>().field, 'to');

  // 404 for an unknown ref, on every route.
  for (const [method, url] of [
    ['GET', '/api/v1/quarantine/zzzzzzzzzzzz'],
    ['GET', '/api/v1/quarantine/zzzzzzzzzzzz/original'],
    ['POST', '/api/v1/quarantine/zzzzzzzzzzzz/release'],
    ['POST', '/api/v1/quarantine/zzzzzzzzzzzz/rescan'],
    ['DELETE', '/api/v1/quarantine/zzzzzzzzzzzz'],
  ] as const) {
    const r = await app.inject({ method, url, headers: auth });
    assert.equal(r.statusCode, 404, `${method} ${url}: ${r.body}`);
    assert.equal(r.json<{ error: string }>().error, 'not_found');
  }

  // Metadata and the original bytes.
  const one = (await get('/api/v1/quarantine/q1aaaaaaaaaa')).json<QuarantineEntry>();
  assert.equal(one.parts[0]!.filename, 'eicar.com');
  const original = await get('/api/v1/quarantine/q1aaaaaaaaaa/original');
  assert.equal(original.statusCode, 200);
  assert.equal(original.headers['content-type'], 'message/rfc822');
  assert.equal(original.headers['content-disposition'], 'attachment; filename="q1aaaaaaaaaa.eml"');
  assert.ok(original.rawPayload.equals(eicarMail), 'download returns the original bytes');

  // Release: unchanged to the original recipients, then with the header to a given one.
  const released = await app.inject({ method: 'POST', url: '/api/v1/quarantine/q1aaaaaaaaaa/release', headers: auth });
  assert.equal(released.statusCode, 200, released.body);
  assert.equal(sink.received.length, 1);
  assert.deepEqual(sink.received[0]!.to, ['anna@example.test']);
  assert.equal(sink.received[0]!.from, 'billing@supplier.example');
  assert.ok(sink.received[0]!.data.equals(eicarMail), 'released unchanged');
  const withHeader = await app.inject({ method: 'POST', url: '/api/v1/quarantine/q1aaaaaaaaaa/release', headers: auth, payload: { recipients: ['helpdesk@example.test'], addHeader: true } });
  assert.equal(withHeader.statusCode, 200, withHeader.body);
  const second = sink.received[1]!;
  assert.deepEqual(second.to, ['helpdesk@example.test']);
  assert.match(second.data.toString('latin1'), /^X-Mailwarden-Released: admin \d{4}-\d\d-\d\dT\S+ \(q1aaaaaaaaaa\)\r\n/);
  assert.ok(second.data.subarray(second.data.indexOf('\r\n') + 2).equals(eicarMail));
  const afterRelease = withHeader.json<QuarantineEntry>();
  assert.equal(afterRelease.releases.length, 2);
  assert.match(afterRelease.releases[0]!.by, /^admin \(127\.0\.0\.1\)$/);
  assert.deepEqual(afterRelease.releases[1]!.recipients, ['helpdesk@example.test']);
  assert.equal(afterRelease.releases[1]!.headerAdded, true);
  assert.equal((await get('/api/v1/quarantine/q1aaaaaaaaaa')).json<QuarantineEntry>().releases.length, 2, 'recorded in the metadata');
  const refused = await app.inject({ method: 'POST', url: '/api/v1/quarantine/q1aaaaaaaaaa/release', headers: auth, payload: { recipients: ['nobody@example.test'] } });
  assert.equal(refused.statusCode, 502);

  // Rescan with today's signatures: EICAR is still infected; the fake zip is clean now.
  const rescanned = await app.inject({ method: 'POST', url: '/api/v1/quarantine/q1aaaaaaaaaa/rescan', headers: auth });
  assert.equal(rescanned.statusCode, 200, rescanned.body);
  const rescan = rescanned.json<QuarantineEntry>().lastRescan!;
  assert.equal(rescan.verdict, 'infected');
  assert.equal(rescan.findings[0]!.filename, 'eicar.com');
  assert.match(rescan.findings[0]!.signature ?? '', /Eicar/i);
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/quarantine/q2bbbbbbbbbb/rescan', headers: auth })).json<QuarantineEntry>().lastRescan!.verdict, 'clean');

  // Delete.
  assert.equal((await app.inject({ method: 'DELETE', url: '/api/v1/quarantine/q3cccccccccc', headers: auth })).statusCode, 204);
  assert.equal((await get('/api/v1/quarantine/q3cccccccccc')).statusCode, 404);
  assert.deepEqual((await store.list('quarantine/q3cccccccccc/')).map((o) => o.key), []);

  // Every action is in the activity feed, with who did it.
  await waitFor(() => activity.actions(50).length === 6, 'audit events folded', 5000);
  const actions = (await get('/api/v1/audit?limit=50')).json<{ actions: { kind: string; ref: string; by: string; client: string }[] }>().actions;
  assert.deepEqual(
    actions.map((a) => `${a.kind} ${a.ref}`),
    [
      'quarantine-deleted q3cccccccccc',
      'quarantine-rescanned q2bbbbbbbbbb',
      'quarantine-rescanned q1aaaaaaaaaa',
      'quarantine-released q1aaaaaaaaaa',
      'quarantine-released q1aaaaaaaaaa',
      'quarantine-downloaded q1aaaaaaaaaa',
    ],
    'newest first; a refused release is no release',
  );
  assert.ok(actions.every((a) => a.by === 'admin' && a.client === '127.0.0.1'));
  assert.equal((await get('/api/v1/stats')).json<{ quarantine: { released: number } }>().quarantine.released, 2);

  // The sweep: entries past the retention go (q1 is 3 days old, q2 one day); retention 0 keeps nothing.
  retention = 2;
  const swept = await quarantine.sweep();
  assert.deepEqual(swept.deleted, ['q1aaaaaaaaaa']);
  assert.equal(swept.entries, 1);
  retention = 0;
  assert.deepEqual((await quarantine.sweep()).deleted, ['q2bbbbbbbbbb']);
  assert.equal((await get('/api/v1/quarantine')).json<{ total: number }>().total, 0);

  // The OpenAPI document describes the quarantine routes.
  const spec = (await get('/docs/json')).json<{ paths: Record<string, unknown> }>();
  for (const p of ['/api/v1/quarantine', '/api/v1/quarantine/{ref}', '/api/v1/quarantine/{ref}/original', '/api/v1/quarantine/{ref}/release', '/api/v1/quarantine/{ref}/rescan']) assert.ok(spec.paths[p], p);
});
