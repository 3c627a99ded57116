import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY, type Policy, type PolicyDocument } from '@mailwarden/contracts';
import { TOKEN, auth, build } from './harness.js';

const withPrefix = (text = '[VIRUS]'): Policy => ({ ...structuredClone(DEFAULT_POLICY), subjectPrefix: { enabled: true, text } });

test('GET /api/v1/policy returns the seeded defaults with the version as ETag', async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: 'GET', url: '/api/v1/policy', headers: auth });
  assert.equal(res.statusCode, 200);
  const doc = res.json<PolicyDocument>();
  assert.deepEqual(doc.policy, DEFAULT_POLICY);
  assert.ok(doc.version >= 1);
  assert.equal(res.headers.etag, `"${doc.version}"`);
  assert.equal(res.headers['cache-control'], 'no-store');
});

test('PUT with If-Match saves the policy, returns the new document and it reads back', async (t) => {
  const { app, store } = await build(t);
  const before = await app.inject({ method: 'GET', url: '/api/v1/policy', headers: auth });
  const put = await app.inject({
    method: 'PUT',
    url: '/api/v1/policy',
    headers: { ...auth, 'if-match': before.headers.etag as string },
    payload: withPrefix('[VIRUS REMOVED]'),
  });
  assert.equal(put.statusCode, 200, put.body);
  const doc = put.json<PolicyDocument>();
  assert.equal(doc.version, before.json<PolicyDocument>().version + 1);
  assert.equal(put.headers.etag, `"${doc.version}"`);
  assert.deepEqual(doc.policy.subjectPrefix, { enabled: true, text: '[VIRUS REMOVED]' });
  assert.deepEqual((await store.get()).policy, doc.policy, 'the bus sees what the API saved');
});

test('two administrators saving over the same version: one 200, one 412, nothing lost silently', async (t) => {
  const { app, store } = await build(t);
  const { version } = await store.get();
  const put = (text: string) =>
    app.inject({ method: 'PUT', url: '/api/v1/policy', headers: { ...auth, 'if-match': `"${version}"` }, payload: withPrefix(text) });
  const results = await Promise.all([put('[ALICE]'), put('[BOB]')]);
  const codes = results.map((r) => r.statusCode).sort();
  assert.deepEqual(codes, [200, 412]);
  const winner = results.find((r) => r.statusCode === 200)!;
  const loser = results.find((r) => r.statusCode === 412)!;
  const body = loser.json<{ error: string; message: string; currentVersion: number }>();
  assert.equal(body.error, 'precondition_failed');
  assert.match(body.message, /changed by someone else/);
  assert.equal(body.currentVersion, version + 1);
  assert.deepEqual((await store.get()).policy, winner.json<PolicyDocument>().policy);
});

test('If-Match with an old or foreign ETag gets 412; W/ and bare numbers are understood', async (t) => {
  const { app, store } = await build(t);
  const { version } = await store.get();
  const stale = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: { ...auth, 'if-match': `"${version + 5}"` }, payload: withPrefix() });
  assert.equal(stale.statusCode, 412);
  const foreign = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: { ...auth, 'if-match': '"abc"' }, payload: withPrefix() });
  assert.equal(foreign.statusCode, 412);
  const weak = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: { ...auth, 'if-match': `W/"${version}"` }, payload: withPrefix() });
  assert.equal(weak.statusCode, 200);
  const bare = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: { ...auth, 'if-match': String(version + 1) }, payload: withPrefix('[X]') });
  assert.equal(bare.statusCode, 200);
});

test('PUT without If-Match is allowed and still versioned', async (t) => {
  const { app, store } = await build(t);
  const { version } = await store.get();
  const res = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: auth, payload: withPrefix() });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json<PolicyDocument>().version, version + 1);
});

test('invalid bodies get 400 naming the field, and nothing is written', async (t) => {
  const { app, store } = await build(t);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests poke arbitrary (also invalid) fields
  const p = (mutate: (p: Record<string, any>) => void) => {
    const body = structuredClone(DEFAULT_POLICY) as unknown as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    mutate(body);
    return body;
  };
  const cases: [string, unknown, string, RegExp?][] = [
    ['empty prefix text', p((b) => (b.subjectPrefix.text = '')), 'subjectPrefix.text', /must not be empty/],
    ['prefix with a line break', p((b) => (b.subjectPrefix.text = 'a\r\nBcc: x@y')), 'subjectPrefix.text', /single line/],
    ['unknown TLS mode', p((b) => (b.tls.smtp = 'maybe')), 'tls.smtp', /must be one of "passthrough", "strip", "terminate"/],
    ['unknown unscannable action', p((b) => (b.unscannable.action = 'quarantine')), 'unscannable.action', /"remove", "deliver"/],
    ['string for a boolean (no coercion)', p((b) => (b.antivirus.enabled = 'true')), 'antivirus.enabled', /must be true or false/],
    ['missing field', p((b) => delete b.antivirus.pop3), 'antivirus.pop3', /is required/],
    ['unknown field', p((b) => (b.antivirus.heuristics = true)), 'antivirus.heuristics', /unknown field/],
    ['size under the minimum', p((b) => (b.limits.maxMessageBytes = 10)), 'limits.maxMessageBytes', /must be at least 1024/],
    ['fractional size', p((b) => (b.limits.maxMessageBytes = 1024.5)), 'limits.maxMessageBytes', /whole number/],
    ['missing section', p((b) => delete b.notice), 'notice'],
    ['empty notice template', p((b) => (b.notice.template = '')), 'notice.template'],
    ['negative retention', p((b) => (b.quarantine = { retentionDays: -1 })), 'quarantine.retentionDays', /must be at least 0/],
    ['retention as text', p((b) => (b.quarantine = { retentionDays: '30' })), 'quarantine.retentionDays', /must be a number/],
  ];
  for (const [name, payload, field, message] of cases) {
    const res = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: auth, payload: payload as object });
    assert.equal(res.statusCode, 400, name);
    const body = res.json<{ error: string; field: string; message: string; errors: { field: string }[] }>();
    assert.equal(body.error, 'invalid_request', name);
    assert.equal(body.field, field, `${name}: ${res.body}`);
    assert.ok(body.message.startsWith(`${field}: `), `${name}: message names the field: ${body.message}`);
    if (message) assert.match(body.message, message, name);
    assert.ok(body.errors.some((e) => e.field === field), name);
  }
  const notJson = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"antivirus": ' });
  assert.equal(notJson.statusCode, 400);
  assert.equal(notJson.json<{ error: string }>().error, 'invalid_request');
  const several = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: auth, payload: { antivirus: 1 } });
  assert.equal(several.statusCode, 400);
  assert.deepEqual(
    several.json<{ errors: { field: string }[] }>().errors.map((e) => e.field),
    ['antivirus', 'subjectPrefix', 'unscannable', 'tls', 'notice', 'limits'],
    'every bad field, in the order of the policy document',
  );
  // A policy stored before `quarantine` existed is still valid (30 days apply).
  const old = p((b) => delete b.quarantine);
  const oldPut = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: auth, payload: old as object });
  assert.equal(oldPut.statusCode, 200, oldPut.body);
  const version = (await store.get()).version;
  const array = await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: auth, payload: [] as unknown as object });
  assert.equal(array.statusCode, 400);
  assert.equal((await store.get()).version, version, 'no invalid write reached the store');
});

test('a missing or wrong token gets 401 with a JSON body and a Bearer challenge', async (t) => {
  const { app } = await build(t);
  const cases: [string, Record<string, string>, RegExp][] = [
    ['no header', {}, /^Bearer realm="mailwarden"$/],
    ['wrong token', { authorization: `Bearer ${TOKEN}x` }, /error="invalid_token"/],
    ['prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, 10)}` }, /error="invalid_token"/],
    ['basic auth', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }, /^Bearer realm/],
    ['empty bearer', { authorization: 'Bearer ' }, /^Bearer realm/],
  ];
  for (const [name, headers, challenge] of cases) {
    for (const [method, url] of [
      ['GET', '/api/v1/policy'],
      ['PUT', '/api/v1/policy'],
      ['GET', '/api/v1/policy/history'],
      ['GET', '/api/v1/stats'],
      ['GET', '/api/v1/events?limit=5'],
      ['GET', '/api/v1/engine'],
    ] as const) {
      const res = await app.inject({ method, url, headers, ...(method === 'PUT' ? { payload: DEFAULT_POLICY } : {}) });
      assert.equal(res.statusCode, 401, `${name} ${method} ${url}`);
      assert.match(res.headers['content-type'] as string, /application\/json/);
      assert.equal(res.json<{ error: string }>().error, 'unauthorized');
      assert.match(res.headers['www-authenticate'] as string, challenge, name);
    }
  }
  const lower = await app.inject({ method: 'GET', url: '/api/v1/policy', headers: { authorization: `bearer ${TOKEN}` } });
  assert.equal(lower.statusCode, 200, 'the scheme name is case-insensitive');
});

test('history lists each version with who changed what, newest first', async (t) => {
  const { app, store } = await build(t);
  const { version } = await store.get();
  const first = await app.inject({
    method: 'PUT',
    url: '/api/v1/policy',
    headers: { ...auth, 'if-match': `"${version}"`, 'x-changed-by': 'alice' },
    payload: withPrefix('[VIRUS]'),
  });
  assert.equal(first.statusCode, 200);
  const second = { ...withPrefix('[VIRUS]'), tls: { smtp: 'passthrough', pop3: 'strip' } };
  assert.equal((await app.inject({ method: 'PUT', url: '/api/v1/policy', headers: auth, payload: second })).statusCode, 200);

  const res = await app.inject({ method: 'GET', url: '/api/v1/policy/history', headers: auth });
  assert.equal(res.statusCode, 200);
  const { entries } = res.json<{ entries: { version: number; time: string; changedBy?: string; previousVersion: number | null; changes: { path: string; old?: unknown; new?: unknown }[] }[] }>();
  assert.deepEqual(
    entries.map((e) => e.version),
    [version + 2, version + 1, version],
  );
  assert.deepEqual(entries[0]!.changes, [{ path: 'tls.smtp', old: 'strip', new: 'passthrough' }]);
  assert.match(entries[0]!.changedBy!, /^api \(/);
  assert.deepEqual(entries[1]!.changes, [
    { path: 'subjectPrefix.enabled', old: false, new: true },
    { path: 'subjectPrefix.text', old: '[VIRUS REMOVED]', new: '[VIRUS]' },
  ]);
  assert.match(entries[1]!.changedBy!, /^alice \(/);
  assert.equal(entries[1]!.previousVersion, version);
  assert.ok(!Number.isNaN(Date.parse(entries[1]!.time)));
  // The oldest kept version has nothing to compare with: its fields are listed as set.
  assert.equal(entries[2]!.previousVersion, null);
  assert.ok(entries[2]!.changes.some((c) => c.path === 'antivirus.enabled' && c.new === true && !('old' in c)));
});

test('healthz needs no token; unknown routes get a JSON 404', async (t) => {
  const { app } = await build(t, { health: () => ({ ok: true, checks: { nats: 'connected' } }) });
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 200);
  assert.deepEqual(health.json(), { status: 'ok', checks: { nats: 'connected' } });
  const missing = await app.inject({ method: 'GET', url: '/api/v1/nope', headers: auth });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json<{ error: string }>().error, 'not_found');
});

test('healthz says 503 when NATS is gone', async (t) => {
  const { app } = await build(t, { health: () => ({ ok: false, checks: { nats: 'disconnected' } }) });
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json<{ status: string }>().status, 'unavailable');
});

test('the OpenAPI document describes the API and Swagger UI is served at /docs', async (t) => {
  const { app } = await build(t);
  const spec = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(spec.statusCode, 200);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walking a JSON document
  const doc = spec.json<{ openapi: string; paths: Record<string, Record<string, any>>; components: any }>();
  assert.match(doc.openapi, /^3\./);
  for (const p of ['/api/v1/policy', '/api/v1/policy/history', '/api/v1/stats', '/api/v1/events', '/api/v1/engine', '/healthz']) assert.ok(doc.paths[p], p);
  const putBody = doc.paths['/api/v1/policy']!.put.requestBody.content['application/json'].schema;
  assert.ok(putBody.properties.subjectPrefix, 'PUT body is the Policy schema');
  assert.ok(doc.components.securitySchemes.bearerAuth);
  assert.deepEqual(doc.paths['/healthz']!.get.security, []);
  const ui = await app.inject({ method: 'GET', url: '/docs' });
  assert.equal(ui.statusCode, 200);
  assert.match(ui.body, /swagger-ui/i);
});

test('the admin UI is served at / with a strict content security policy', async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: 'GET', url: '/' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /text\/html/);
  assert.match(res.body, /Mailwarden/);
  assert.match(res.headers['content-security-policy'] as string, /script-src 'self'/);
  for (const f of ['/app.js', '/app.css']) assert.equal((await app.inject({ method: 'GET', url: f })).statusCode, 200, f);
});
