// TLS policy of the POP3 proxy against a fake upstream that speaks STLS or POP3S, with Node's TLS
// client as the peer: strip, passthrough (splice), terminate (both legs), POP3S, TLS 1.2+ only,
// certificate reload. The real peers (Dovecot, poplib, openssl) are in test/e2e/pop3-tls.test.ts.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_POLICY, type Policy, type TlsMode } from '@mailwarden/contracts';
import { createLogger } from '@mailwarden/log';
import { TlsMaterial, ensureSelfSigned } from '@mailwarden/tls';
import { Pop3Proxy, type Pop3ProxyOptions } from '../src/pop3-proxy.js';
import { FakePop3Server, type FakePop3Options } from './fake-pop3-server.js';
import { MemoryMessageScanner, NOTICE } from './memory-message-scanner.js';
import { Pop3TestClient } from './pop3-test-client.js';

const log = createLogger('pop3-tls-test', process.env.TEST_LOG_LEVEL ?? 'silent');

const message = (subject: string, body: string): Buffer =>
  Buffer.from(`From: a@example.org\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`, 'latin1');
const CLEAN = message('clean', 'Hello\n');
const INFECTED = message('infected', 'line 1\nline 2 INFECTED payload\nline 3\n');
const REBUILT = Buffer.from(INFECTED.toString('latin1').replace('INFECTED', NOTICE), 'latin1');
const CAPA_WITHOUT_STLS = ['TOP', 'UIDL', 'USER', 'SASL PLAIN'];
/** TLS 1.1 from a client that really offers it (OpenSSL's default security level would refuse it client-side). */
const TLS11 = { minVersion: 'TLSv1' as const, maxVersion: 'TLSv1.1' as const, ciphers: 'DEFAULT@SECLEVEL=0' };

let dir: string;
let upstreamPair: { key: Buffer; cert: Buffer };
let gatewayFiles: { cert: string; key: string };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-pop3-tls-'));
  const up = await ensureSelfSigned(join(dir, 'upstream'), 'upstream.example.test');
  upstreamPair = { key: await readFile(up.key), cert: await readFile(up.cert) };
  gatewayFiles = await ensureSelfSigned(join(dir, 'gateway'), 'gateway.example.test');
});
after(() => rm(dir, { recursive: true, force: true }));

interface Harness {
  upstream: FakePop3Server;
  scanner: MemoryMessageScanner;
  proxy: Pop3Proxy;
  port: number;
  policy: Policy;
  tls: TlsMaterial;
  unscanned: { client: string }[];
  setTls(mode: TlsMode): void;
  connect(): Promise<Pop3TestClient>;
}

async function harness(
  t: TestContext,
  opts: { mode?: TlsMode; fake?: Partial<FakePop3Options>; proxy?: Partial<Pop3ProxyOptions>; tlsFiles?: { cert: string; key: string } } = {},
): Promise<Harness> {
  const upstream = await FakePop3Server.start({ messages: [CLEAN, INFECTED], tls: upstreamPair, ...opts.fake });
  const files = opts.tlsFiles ?? gatewayFiles;
  const tls = await TlsMaterial.load({ ...files, stateDir: dir, hostname: 'unused', watchIntervalMs: 50 });
  const scanner = new MemoryMessageScanner();
  const h = { policy: structuredClone(DEFAULT_POLICY), unscanned: [] as { client: string }[] } as Harness;
  h.policy.tls.pop3 = opts.mode ?? 'strip';
  const proxy = new Pop3Proxy({
    upstream: upstream.address,
    scanner,
    policy: () => h.policy,
    log,
    tls,
    onTlsUnscanned: (info) => h.unscanned.push(info),
    connectTimeoutMs: 3000,
    ...opts.proxy,
  });
  const { port } = await proxy.listen(0, '127.0.0.1');
  const clients: Pop3TestClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await proxy.close(500);
    await upstream.stop();
    tls.close();
  });
  return Object.assign(h, {
    upstream,
    scanner,
    proxy,
    port,
    tls,
    setTls(mode: TlsMode) {
      h.policy = { ...h.policy, tls: { ...h.policy.tls, pop3: mode } };
    },
    async connect() {
      const { client, greeting } = await Pop3TestClient.connect(port);
      assert.match(greeting, /^\+OK/);
      clients.push(client);
      return client;
    },
  });
}

const capa = async (c: Pop3TestClient): Promise<string[]> => (await c.multi('CAPA')).body!.toString().trim().split('\r\n');
const subject = (s: TLSSocket): string => s.getPeerX509Certificate()?.subject ?? '';
const waitUntil = async (what: string, probe: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const until = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('strip: STLS is not offered even when upstream has it; a forced STLS is refused and never reaches upstream', async (t) => {
  const h = await harness(t, { mode: 'strip' });
  const c = await h.connect();
  assert.ok(!(await capa(c)).includes('STLS'));
  assert.equal((await c.stls()).status, '-ERR STLS not available on this server');
  assert.equal(h.upstream.count('STLS'), 0);
  await c.login();
  assert.deepEqual((await c.multi('RETR 2')).body, REBUILT);
});

test('terminate: STLS with the gateway’s certificate (TLS 1.2+), scanned inside; pipelined plaintext is dropped', async (t) => {
  const h = await harness(t, { mode: 'terminate', fake: { tls: undefined, capabilities: CAPA_WITHOUT_STLS } });
  const c = await h.connect();
  assert.equal((await capa(c)).at(-1), 'STLS', 'offered with the gateway’s own certificate, whatever upstream has');
  const { status, tls } = await c.stls({ pipelined: 'USER mallory\r\nPASS injected\r\n' });
  assert.equal(status, '+OK Begin TLS negotiation');
  assert.match(subject(tls!), /CN=gateway\.example\.test/);
  assert.match(tls!.getProtocol()!, /^TLSv1\.[23]$/);
  assert.ok(!(await capa(c)).includes('STLS'), 'not offered again inside TLS');
  assert.match((await c.stls()).status, /^-ERR/);
  await c.login();
  assert.equal(h.upstream.commands.filter((l) => l.startsWith('USER')).join(), 'USER alice', 'the pipelined USER was never executed');
  const r = await c.multi('RETR 2');
  assert.deepEqual(r.body, REBUILT);
  assert.equal(h.scanner.scans.length, 1);
  assert.equal(h.unscanned.length, 0);
});

test('terminate: the upstream leg is upgraded with STLS before the client can authenticate', async (t) => {
  const h = await harness(t, { mode: 'terminate' });
  const c = await h.connect();
  assert.deepEqual(h.upstream.commands.slice(0, 2), ['CAPA', 'STLS'], 'before the greeting reached the client');
  const { tls } = await c.stls();
  assert.match(subject(tls!), /CN=gateway\.example\.test/, 'the client’s TLS is with the gateway, not upstream');
  await c.login();
  assert.deepEqual((await c.multi('RETR 2')).body, REBUILT);
  assert.ok(h.upstream.secureCommands.includes('USER alice') && h.upstream.secureCommands.includes('PASS password'), 'the password crossed upstream encrypted');
  assert.ok(h.upstream.secureCommands.includes('RETR 2'));

  // A plaintext client of the same gateway still gets an encrypted upstream leg.
  const plain = await h.connect();
  await plain.login();
  assert.equal(h.upstream.secureCommands.filter((l) => l === 'PASS password').length, 2);
});

test('terminate: an upstream TLS handshake that fails ends the session before any password is sent', async (t) => {
  const h = await harness(t, { mode: 'terminate', proxy: { upstreamTls: { verify: true } } });
  const { client, greeting } = await Pop3TestClient.connect(h.port);
  t.after(() => client.close());
  assert.match(greeting, /^-ERR \[SYS\/TEMP\] upstream unavailable/);
  await client.closedByServer();
  assert.equal(h.upstream.count('USER'), 0);
});

test('terminate: a TLS 1.1 client is refused by the gateway', async (t) => {
  const h = await harness(t, { mode: 'terminate' });
  const c = await h.connect();
  await assert.rejects(c.stls({ tls: TLS11 }), /alert protocol version/);
  await waitUntil('session end', () => h.proxy.activeSessions === 0);
});

test('passthrough: STLS relayed, sockets spliced, the client’s TLS is with upstream; unscanned and reported', async (t) => {
  const h = await harness(t, { mode: 'passthrough' });
  const c = await h.connect();
  assert.equal((await capa(c)).at(-1), 'STLS');
  const { status, tls } = await c.stls({ pipelined: 'NOOP\r\n' });
  assert.equal(status, '+OK Begin TLS negotiation now.', 'upstream’s own reply');
  assert.match(subject(tls!), /CN=upstream\.example\.test/);
  assert.equal(h.upstream.plaintextAfterStls, 0, 'the pipelined NOOP was dropped, not relayed');
  await c.login();
  const r = await c.multi('RETR 2');
  assert.deepEqual(r.body, INFECTED, 'relayed untouched: the gateway cannot see inside');
  assert.equal(h.scanner.scans.length, 0);
  assert.equal(h.upstream.count('NOOP'), 0);
  assert.equal(h.unscanned.length, 1);
  assert.match(h.unscanned[0]!.client, /^127\.0\.0\.1:\d+$/);
  assert.equal(h.proxy.activeSessions, 1);
  assert.equal(await c.command('QUIT'), '+OK Logging out.');
  await waitUntil('spliced session end', () => h.proxy.activeSessions === 0);
});

test('passthrough: not offered when upstream lacks STLS; a forced STLS gets upstream’s refusal and the session is scanned', async (t) => {
  const h = await harness(t, { mode: 'passthrough', fake: { tls: undefined, capabilities: CAPA_WITHOUT_STLS } });
  const c = await h.connect();
  assert.deepEqual(await capa(c), CAPA_WITHOUT_STLS);
  assert.match((await c.stls()).status, /^-ERR/);
  await c.login();
  assert.deepEqual((await c.multi('RETR 2')).body, REBUILT);
  assert.equal(h.unscanned.length, 0);
});

test('passthrough: a client that does not use STLS is scanned', async (t) => {
  const h = await harness(t, { mode: 'passthrough' });
  const c = await h.connect();
  await c.login();
  assert.deepEqual((await c.multi('RETR 2')).body, REBUILT);
  assert.equal(h.upstream.count('STLS'), 0);
});

test('the TLS policy is read per session: a change applies to new sessions', async (t) => {
  const h = await harness(t, { mode: 'strip' });
  const before = await h.connect();
  h.setTls('terminate');
  assert.ok(!(await capa(before)).includes('STLS'));
  const after = await h.connect();
  assert.ok((await capa(after)).includes('STLS'));
  assert.match((await before.stls()).status, /^-ERR/);
});

test('POP3S listener: TLS from the first byte with the gateway’s certificate, always terminate', async (t) => {
  const h = await harness(t, { mode: 'passthrough', proxy: { implicitTls: true } });
  const { client, greeting, tls } = await Pop3TestClient.connectTls(h.port);
  t.after(() => client.close());
  assert.match(greeting, /^\+OK/);
  assert.match(subject(tls), /CN=gateway\.example\.test/);
  assert.ok(!(await capa(client)).includes('STLS'));
  assert.match((await client.stls()).status, /^-ERR/);
  await client.login();
  assert.deepEqual((await client.multi('RETR 2')).body, REBUILT);
  assert.ok(h.upstream.secureCommands.includes('PASS password'), 'terminate: upstream leg upgraded too');
  await assert.rejects(Pop3TestClient.connectTls(h.port, TLS11), /alert protocol version/);
});

test('upstream over implicit TLS (POP3S upstream)', async (t) => {
  const h = await harness(t, { mode: 'terminate', fake: { implicitTls: true }, proxy: { upstreamImplicitTls: true } });
  const c = await h.connect();
  await c.login();
  assert.deepEqual((await c.multi('RETR 2')).body, REBUILT);
  assert.equal(h.upstream.count('STLS'), 0);
  assert.ok(h.upstream.secureCommands.includes('PASS password'));
  h.setTls('passthrough');
  const p = await h.connect();
  assert.ok(!(await capa(p)).includes('STLS'), 'nothing to pass through: the upstream leg is already the gateway’s TLS');
  assert.match((await p.stls()).status, /^-ERR/);
});

test('a renewed certificate is served without a restart (STLS and POP3S)', async (t) => {
  const live = join(dir, 'live');
  const first = await ensureSelfSigned(live, 'first.example.test');
  const h = await harness(t, { mode: 'terminate', tlsFiles: first });
  const pop3s = new Pop3Proxy({ upstream: h.upstream.address, scanner: h.scanner, policy: () => h.policy, log, tls: h.tls, implicitTls: true });
  const { port: pop3sPort } = await pop3s.listen(0, '127.0.0.1');
  t.after(() => pop3s.close(200));
  const stlsCert = async () => {
    const c = await h.connect();
    const { tls } = await c.stls();
    const name = subject(tls!);
    c.close();
    return name;
  };
  const implicitCert = async () => {
    const { client, tls } = await Pop3TestClient.connectTls(pop3sPort);
    const name = subject(tls);
    client.close();
    return name;
  };
  assert.match(await stlsCert(), /first\.example\.test/);
  assert.match(await implicitCert(), /first\.example\.test/);
  const renewed = await ensureSelfSigned(join(dir, 'renewed'), 'renewed.example.test');
  await copyFile(renewed.key, first.key);
  await copyFile(renewed.cert, first.cert);
  await waitUntil('the renewed certificate on STLS', async () => /renewed\.example\.test/.test(await stlsCert()));
  await waitUntil('the renewed certificate on POP3S', async () => /renewed\.example\.test/.test(await implicitCert()));
});

test('shutdown: encrypted and spliced sessions are closed within the grace period', async (t) => {
  const h = await harness(t, { mode: 'terminate' });
  const terminated = await h.connect();
  await terminated.stls();
  await terminated.login();
  h.setTls('passthrough');
  const spliced = await h.connect();
  await spliced.stls();
  await spliced.login();
  assert.equal(h.proxy.activeSessions, 2);
  const started = Date.now();
  await h.proxy.close(300);
  assert.ok(Date.now() - started < 3000);
  await terminated.closedByServer();
  await spliced.closedByServer();
  assert.deepEqual(h.upstream.expunged, []);
});
