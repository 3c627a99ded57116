/**
 * The quarantine API over real components: NATS (audit events on MW_EVENTS), s3rver (the entries,
 * written the way the reassembler writes them), clamd with the project's signatures (rescan) and a
 * real SMTP server (smtp-server) receiving releases. 401, 400 naming the field, 404 included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { QuarantineEntry } from '@mailwarden/contracts';
import { waitFor } from '@mailwarden/testkit';
import { auth } from './harness.js';
import { startQuarantineFixture } from './quarantine-fixture.js';

test('quarantine API: list with filters and paging, get, original, release, rescan, delete, sweep; 401/400/404; audit events', { timeout: 120_000 }, async (t) => {
  const { app, store, quarantine, activity, sink, eicarMail, setRetention } = await startQuarantineFixture(t);
  const day = 86_400_000;
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
  setRetention(2);
  const swept = await quarantine.sweep();
  assert.deepEqual(swept.deleted, ['q1aaaaaaaaaa']);
  assert.equal(swept.entries, 1);
  setRetention(0);
  assert.deepEqual((await quarantine.sweep()).deleted, ['q2bbbbbbbbbb']);
  assert.equal((await get('/api/v1/quarantine')).json<{ total: number }>().total, 0);

  // The OpenAPI document describes the quarantine routes.
  const spec = (await get('/docs/json')).json<{ paths: Record<string, unknown> }>();
  for (const p of ['/api/v1/quarantine', '/api/v1/quarantine/{ref}', '/api/v1/quarantine/{ref}/original', '/api/v1/quarantine/{ref}/release', '/api/v1/quarantine/{ref}/rescan']) assert.ok(spec.paths[p], p);
});
