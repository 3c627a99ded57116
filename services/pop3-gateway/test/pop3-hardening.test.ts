// Issue 11 for POP3: a connection limit per listener, and an upstream leg that silently stays in
// the clear in terminate mode made a choice (POP3_REQUIRE_UPSTREAM_TLS). Real sockets, fake upstream.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_POLICY, type TlsMode } from '@mailwarden/contracts';
import { TlsMaterial, ensureSelfSigned } from '@mailwarden/tls';
import { Pop3Proxy, type Pop3ProxyOptions } from '../src/pop3-proxy.js';
import { FakePop3Server, type FakePop3Options } from './fake-pop3-server.js';
import { MemoryMessageScanner } from './memory-message-scanner.js';
import { Pop3TestClient } from './pop3-test-client.js';

const MESSAGE = Buffer.from('From: a@example.org\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nHello\r\n', 'latin1');
const CAPA_WITHOUT_STLS = ['TOP', 'UIDL', 'USER', 'SASL PLAIN'];

async function harness(t: TestContext, opts: { mode?: TlsMode; fake?: Partial<FakePop3Options>; proxy?: Partial<Pop3ProxyOptions> } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'mw-pop3-hardening-'));
  const files = await ensureSelfSigned(join(dir, 'gateway'), 'gateway.example.test');
  const tls = await TlsMaterial.load({ ...files, stateDir: dir, hostname: 'unused' });
  const up = await ensureSelfSigned(join(dir, 'upstream'), 'upstream.example.test');
  const upstream = await FakePop3Server.start({ messages: [MESSAGE], tls: { key: await readFile(up.key), cert: await readFile(up.cert) }, ...opts.fake });
  const policy = structuredClone(DEFAULT_POLICY);
  policy.tls.pop3 = opts.mode ?? 'strip';
  const events: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) events.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const proxy = new Pop3Proxy({ upstream: upstream.address, scanner: new MemoryMessageScanner(), policy: () => policy, log: pino({ level: 'debug' }, sink), tls, ...opts.proxy });
  const { port } = await proxy.listen(0, '127.0.0.1');
  const clients: Pop3TestClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await proxy.close(500);
    await upstream.stop();
    tls.close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    upstream,
    events,
    async connect(): Promise<{ client: Pop3TestClient; greeting: string }> {
      const r = await Pop3TestClient.connect(port);
      clients.push(r.client);
      return r;
    },
  };
}

test('over POP3_MAX_CONNECTIONS: -ERR [SYS/TEMP] too many connections, closed, no upstream session', async (t) => {
  const h = await harness(t, { proxy: { maxConnections: 2 } });
  const a = await h.connect();
  assert.match(a.greeting, /^\+OK/);
  assert.match((await h.connect()).greeting, /^\+OK/);
  const third = await h.connect();
  assert.equal(third.greeting, '-ERR [SYS/TEMP] too many connections');
  await third.client.closedByServer();
  assert.equal(h.upstream.sockets.size, 2);
  a.client.close();
  const until = Date.now() + 5000;
  for (;;) {
    const next = await h.connect();
    if (next.greeting.startsWith('+OK')) break;
    assert.ok(Date.now() < until, 'a slot frees up when a session ends');
    await new Promise((r) => setTimeout(r, 50));
  }
});

test('terminate, upstream without STLS, POP3_REQUIRE_UPSTREAM_TLS=true: -ERR [SYS/TEMP] and closed before any password', async (t) => {
  const h = await harness(t, { mode: 'terminate', fake: { capabilities: CAPA_WITHOUT_STLS } , proxy: { requireUpstreamTls: true } });
  const { client, greeting } = await h.connect();
  assert.match(greeting, /^-ERR \[SYS\/TEMP\] .*\(ref [a-z0-9]+\)/);
  await client.closedByServer();
  assert.equal(h.upstream.commands.some((c) => /^(USER|PASS|AUTH)/.test(c)), false);
  assert.ok(h.events.some((e) => e.event === 'pop3.upstream_plaintext_refused'));
});

test('terminate, upstream without STLS, POP3_REQUIRE_UPSTREAM_TLS=false (default): goes on in the clear with a warning', async (t) => {
  const h = await harness(t, { mode: 'terminate', fake: { capabilities: CAPA_WITHOUT_STLS } });
  const { client, greeting } = await h.connect();
  assert.match(greeting, /^\+OK/);
  await client.login();
  const warning = h.events.find((e) => e.event === 'pop3.upstream_plaintext');
  assert.ok(warning, 'pop3.upstream_plaintext logged');
  assert.equal(warning.level, 40, 'as a warning');
});

test('terminate, upstream with STLS, POP3_REQUIRE_UPSTREAM_TLS=true: the session goes on encrypted', async (t) => {
  const h = await harness(t, { mode: 'terminate', proxy: { requireUpstreamTls: true } });
  const { client, greeting } = await h.connect();
  assert.match(greeting, /^\+OK/);
  await client.login();
  assert.ok(h.upstream.secureCommands.includes('PASS password'));
});
