import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { DEFAULT_POLICY } from '@mailwarden/contracts';
import { Pop3Proxy } from '../src/pop3-proxy.js';
import { MemoryMessageScanner, NOTICE } from './memory-message-scanner.js';
import { Pop3TestClient } from './pop3-test-client.js';
import { CLEAN, INFECTED, harness, log, message, waitUntil } from './proxy-harness.js';

test('greeting is upstream’s, timestamp included (APOP needs it)', async (t) => {
  const h = await harness(t);
  const { client, greeting } = await Pop3TestClient.connect(h.port);
  t.after(() => client.close());
  assert.equal(greeting, `+OK fake POP3 ready ${h.upstream.timestamp}`);
  const digest = createHash('md5').update(h.upstream.timestamp + 'password').digest('hex');
  assert.match(await client.command(`APOP alice ${digest}`), /^\+OK/);
  assert.match(await client.command('STAT'), /^\+OK 2 /);
});

test('upstream down at connect: -ERR [SYS/TEMP] upstream unavailable, then close', async (t) => {
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const proxy = new Pop3Proxy({ upstream: { host: '127.0.0.1', port }, scanner: new MemoryMessageScanner(), policy: () => DEFAULT_POLICY, log });
  const { port: listen } = await proxy.listen(0, '127.0.0.1');
  t.after(() => proxy.close(100));
  const { client, greeting } = await Pop3TestClient.connect(listen);
  assert.match(greeting, /^-ERR \[SYS\/TEMP\] upstream unavailable.*\(ref [a-z0-9]+\)$/);
  await client.closedByServer();
});

test('upstream that accepts but never greets: -ERR [SYS/TEMP] within the reply deadline', async (t) => {
  const held: Socket[] = [];
  const mute = createServer((s) => void held.push(s));
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of held) s.destroy();
    mute.close();
  });
  const port = (mute.address() as AddressInfo).port;
  const proxy = new Pop3Proxy({ upstream: { host: '127.0.0.1', port }, scanner: new MemoryMessageScanner(), policy: () => DEFAULT_POLICY, log, replyTimeoutMs: 200 });
  const { port: listen } = await proxy.listen(0, '127.0.0.1');
  t.after(() => proxy.close(100));
  const started = Date.now();
  const { client, greeting } = await Pop3TestClient.connect(listen);
  assert.match(greeting, /^-ERR \[SYS\/TEMP\] upstream unavailable/);
  assert.ok(Date.now() - started < 3000);
  await client.closedByServer();
});

test('USER/PASS are relayed, upstream’s refusal passes through, states are checked before upstream', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  assert.match(await c.command('STAT'), /^-ERR STAT not valid in the AUTHORIZATION state/);
  assert.equal(h.upstream.count('STAT'), 0);
  assert.equal(await c.command('USER alice'), '+OK');
  assert.equal(await c.command('PASS wrong'), '-ERR [AUTH] Authentication failed.');
  assert.equal(await c.command('USER alice'), '+OK');
  assert.equal(await c.command('PASS password'), '+OK Logged in.');
  assert.match(await c.command('USER bob'), /^-ERR USER not valid in the TRANSACTION state/);
  assert.match(await c.command('XTND XMIT'), /^-ERR Unknown command/);
  assert.equal(await c.command('NOOP'), '+OK');
});

test('a password with spaces reaches upstream as sent', async (t) => {
  const h = await harness(t, { fake: { password: 'pass with  spaces' } });
  const c = await h.connect();
  await c.command('USER alice');
  assert.equal(await c.command('PASS pass with  spaces'), '+OK Logged in.');
});

test('AUTH PLAIN: the SASL continuation and the client’s response are relayed', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  const listing = await c.multi('AUTH');
  assert.equal(listing.body?.toString(), 'PLAIN\r\n');
  assert.equal(await c.command('AUTH PLAIN'), '+ ');
  assert.equal(await c.command(Buffer.from('\0alice\0password').toString('base64')), '+OK Logged in.');
  assert.match(await c.command('STAT'), /^\+OK 2 /);
  await c.multi('RETR 1');
  assert.deepEqual(h.scanner.scans[0]?.rcptTo, ['alice']);
});

test('CAPA is upstream’s list filtered to what the proxy handles; STLS is refused', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  const capa = await c.multi('CAPA');
  assert.equal(capa.status, '+OK Capability list follows');
  assert.deepEqual(capa.body!.toString().trim().split('\r\n'), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN']);
  assert.match(await c.command('STLS'), /^-ERR/);
  assert.equal(h.upstream.count('STLS'), 0);
});

test('size look-ahead off: LIST, UIDL, STAT are relayed (multi-line and single)', async (t) => {
  const h = await harness(t, { proxy: { sizeLookaheadMs: 0 } });
  const c = await h.connect();
  await c.login();
  assert.equal((await c.multi('LIST')).body!.toString(), `1 ${CLEAN.length}\r\n2 ${INFECTED.length}\r\n`);
  assert.equal((await c.multi('UIDL')).body!.toString(), '1 uid1\r\n2 uid2\r\n');
  assert.equal(await c.command('LIST 2'), `+OK 2 ${INFECTED.length}`);
  assert.equal(await c.command('UIDL 1'), '+OK 1 uid1');
  assert.equal(await c.command('LIST 9'), '-ERR There is no message');
});

test('size look-ahead off: LIST and STAT give the delivered size of a message this session retrieved; others keep upstream’s', async (t) => {
  const h = await harness(t, { proxy: { sizeLookaheadMs: 0 } });
  const c = await h.connect();
  await c.login();
  const rebuilt = (await c.multi('RETR 2')).body!;
  assert.notEqual(rebuilt.length, INFECTED.length, 'the rebuilt message has another size');
  assert.equal((await c.multi('LIST')).body!.toString(), `1 ${CLEAN.length}\r\n2 ${rebuilt.length}\r\n`);
  assert.equal(await c.command('LIST 2'), `+OK 2 ${rebuilt.length}`);
  assert.equal(await c.command('LIST 1'), `+OK 1 ${CLEAN.length}`);
  assert.equal(await c.command('STAT'), `+OK 2 ${CLEAN.length + rebuilt.length}`);
  // A deleted message is upstream's business again: STAT no longer counts it.
  assert.equal(await c.command('DELE 2'), '+OK Marked to be deleted.');
  assert.equal(await c.command('STAT'), `+OK 1 ${CLEAN.length}`);
  assert.equal(await c.command('RSET'), '+OK');
  assert.equal(await c.command('STAT'), `+OK 2 ${CLEAN.length + rebuilt.length}`);
});

test('RETR of a clean message: exact bytes (dot-stuffing undone and redone), size of the stored copy', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  const r = await c.multi('RETR 1');
  assert.equal(r.status, `+OK ${CLEAN.length} octets`);
  assert.deepEqual(r.body, CLEAN);
  assert.equal(h.scanner.scans.length, 1);
  assert.deepEqual(h.scanner.scans[0], { protocol: 'pop3', direction: 'inbound', mailFrom: '', rcptTo: ['alice'] });
});

test('RETR of an infected message: the rebuilt message, with its own size', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  const r = await c.multi('RETR 2');
  const rebuilt = Buffer.from(INFECTED.toString('latin1').replace('INFECTED', NOTICE), 'latin1');
  assert.equal(r.status, `+OK ${rebuilt.length} octets`);
  assert.deepEqual(r.body, rebuilt);
});

test('bodies arriving in 1-byte chunks are unstuffed correctly', async (t) => {
  const h = await harness(t, { fake: { chunkSize: 1 } });
  const c = await h.connect();
  await c.login();
  assert.deepEqual((await c.multi('RETR 1')).body, CLEAN);
  assert.equal(await c.command('NOOP'), '+OK');
});

test('a message retrieved twice, or RETR then TOP, is scanned once; copies are discarded at session end', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  const first = await c.multi('RETR 2');
  const second = await c.multi('RETR 2');
  assert.deepEqual(second, first);
  const top = await c.multi('TOP 2 1');
  assert.equal(h.scanner.scans.length, 1);
  assert.equal(h.upstream.count('RETR'), 1);
  assert.equal(h.upstream.count('TOP'), 0);
  assert.match(top.body!.toString(), /^From: a@example.org\r\nTo: alice@example.test\r\nSubject: infected\r\n\r\nline 1\r\n$/);
  assert.equal(await c.command('QUIT'), '+OK Logging out.');
  await c.closedByServer();
  await waitUntil('discard', () => h.scanner.live.size === 0);
  assert.equal(h.scanner.discarded.length, 1);
});

test('TOP is served from the scanned message, never from upstream’s copy', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  const top = await c.multi('TOP 2 5');
  assert.equal(h.upstream.count('TOP'), 0);
  assert.equal(h.upstream.count('RETR'), 1);
  assert.ok(!top.body!.includes('INFECTED'));
  assert.ok(top.body!.includes(NOTICE));
  const zero = await c.multi('TOP 2 0');
  assert.match(zero.body!.toString(), /Subject: infected\r\n\r\n$/);
  assert.match(await c.command('TOP 2'), /^-ERR/);
  assert.match(await c.command('TOP x 1'), /^-ERR/);
  assert.equal(h.scanner.scans.length, 1);
});

test('DELE/RSET: a deleted message is not served from the copy; QUIT commits deletions', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  await c.multi('RETR 1');
  assert.match(await c.command('DELE 1'), /^\+OK/);
  assert.equal(await c.command('RETR 1'), '-ERR There is no message');
  assert.equal(await c.command('TOP 1 0'), '-ERR There is no message');
  assert.equal(await c.command('RSET'), '+OK');
  assert.deepEqual((await c.multi('RETR 1')).body, CLEAN);
  assert.equal(h.scanner.scans.length, 1);
  assert.match(await c.command('DELE 2'), /^\+OK/);
  assert.equal(await c.command('QUIT'), '+OK Logging out.');
  await c.closedByServer();
  await waitUntil('expunge', () => h.upstream.expunged.length > 0);
  assert.deepEqual(h.upstream.expunged, [2]);
});

test('a dropped client connection deletes nothing (no QUIT reaches upstream)', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  assert.match(await c.command('DELE 1'), /^\+OK/);
  c.close();
  await waitUntil('session end', () => h.proxy.activeSessions === 0);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.upstream.count('QUIT'), 0);
  assert.deepEqual(h.upstream.expunged, []);
});

test('scan failure: -ERR [SYS/TEMP] with a ref, nothing deleted, the session stays usable', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  h.scanner.faults.push('after-read');
  assert.match(await c.command('RETR 2'), /^-ERR \[SYS\/TEMP\] .*\(ref [a-z0-9]+\)$/);
  h.scanner.faults.push('mid-read');
  assert.match(await c.command('RETR 2'), /^-ERR \[SYS\/TEMP\] /);

  assert.match(await c.command('STAT'), /^\+OK 2 /);
  assert.ok(!(await c.multi('RETR 2')).body!.includes('INFECTED'));
  assert.equal(h.upstream.count('DELE'), 0);
  assert.equal(await c.command('QUIT'), '+OK Logging out.');
  await waitUntil('quit', () => h.upstream.count('QUIT') === 1);
  assert.deepEqual(h.upstream.expunged, []);
});

test('a scanner that destroys the message stream with an error mid-way does not crash the gateway', async (t) => {
  const big = message('big', 'y'.repeat(70) + '\n'.repeat(1) + 'z\n'.repeat(200_000));
  const h = await harness(t, { messages: [big], fake: { chunkSize: 4096 } });
  const c = await h.connect();
  await c.login();
  h.scanner.faults.push('destroy-with-error');
  assert.match(await c.command('RETR 1'), /^-ERR \[SYS\/TEMP\] /);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await c.command('NOOP'), '+OK');
  assert.equal((await c.multi('RETR 1')).body!.length, big.length);
});

test('a scanner that never answers: -ERR [SYS/TEMP] within the retrieval deadline, session usable', async (t) => {
  const h = await harness(t, { proxy: { retrieveTimeoutMs: 300 } });
  const c = await h.connect();
  await c.login();
  h.scanner.faults.push('hang');
  const started = Date.now();
  assert.match(await c.command('RETR 1'), /^-ERR \[SYS\/TEMP\] /);
  assert.ok(Date.now() - started < 3000);
  assert.deepEqual((await c.multi('RETR 1')).body, CLEAN);
});

test('stored copy unreadable: -ERR [SYS/TEMP] before any +OK; a body failing after +OK cuts the connection', async (t) => {
  const big = message('big', 'x'.repeat(100) + '\n'.repeat(1) + 'y'.repeat(200_000) + '\n');
  const h = await harness(t, { messages: [CLEAN, big] });
  const c = await h.connect();
  await c.login();
  h.scanner.faults.push('open');
  assert.match(await c.command('RETR 1'), /^-ERR \[SYS\/TEMP\] /);
  assert.match(await c.command('NOOP'), /^\+OK/);
  h.scanner.faults.push('stream');
  assert.match(await c.command('RETR 2'), /^\+OK \d+ octets$/);
  await c.closedByServer();
  await waitUntil('session end', () => h.proxy.activeSessions === 0);
  assert.equal(h.upstream.count('QUIT'), 0);
});

test('upstream stalls in the middle of a body: -ERR [SYS/TEMP], session closed, nothing deleted', async (t) => {
  const h = await harness(t, {
    proxy: { replyTimeoutMs: 300 },
    fake: {
      onRetr: (n, socket, m) => {
        if (n !== 2) return false;
        socket.write(`+OK ${m.length} octets\r\n`);
        socket.write(m.subarray(0, 20));
        return true;
      },
    },
  });
  const c = await h.connect();
  await c.login();
  await c.command('DELE 1');
  const started = Date.now();
  assert.match(await c.command('RETR 2'), /^-ERR \[SYS\/TEMP\] Upstream mail server connection lost/);
  assert.ok(Date.now() - started < 3000);
  await c.closedByServer();
  assert.equal(h.upstream.count('QUIT'), 0);
  assert.deepEqual(h.upstream.expunged, []);
});

test('upstream closes in the middle of a body: -ERR [SYS/TEMP], session closed', async (t) => {
  const h = await harness(t, {
    fake: {
      onRetr: (_n, socket, m) => {
        socket.end(Buffer.concat([Buffer.from(`+OK ${m.length} octets\r\n`), m.subarray(0, 20)]));
        return true;
      },
    },
  });
  const c = await h.connect();
  await c.login();
  assert.match(await c.command('RETR 1'), /^-ERR \[SYS\/TEMP\] /);
  await c.closedByServer();
});

test('POP3 scanning off by policy: RETR and TOP relayed unscanned; the change applies live', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  h.policy = { ...h.policy, antivirus: { ...h.policy.antivirus, pop3: false } };
  const raw = await c.multi('RETR 2');
  assert.equal(raw.status, `+OK ${INFECTED.length} octets`);
  assert.deepEqual(raw.body, INFECTED);
  const top = await c.multi('TOP 2 2');
  assert.ok(top.body!.includes('INFECTED'));
  assert.equal(h.scanner.scans.length, 0);
  h.policy = { ...h.policy, antivirus: { ...h.policy.antivirus, pop3: true } };
  assert.ok(!(await c.multi('RETR 2')).body!.includes('INFECTED'));
  assert.equal(h.scanner.scans.length, 1);
  h.policy = { ...h.policy, antivirus: { ...h.policy.antivirus, enabled: false } };
  assert.deepEqual((await c.multi('RETR 2')).body, INFECTED);
});

test('RETR argument errors are answered locally', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  assert.match(await c.command('RETR'), /^-ERR/);
  assert.match(await c.command('RETR 0'), /^-ERR/);
  assert.match(await c.command('RETR 1 2'), /^-ERR/);
  assert.equal(h.upstream.count('RETR'), 0);
  assert.equal(await c.command('RETR 7'), '-ERR There is no message');
});

test('commands with CR or NUL inside are refused, over-long lines end the session', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  c.socket.write('USER a\rPASS b\r\n');
  assert.match(await c.line(), /^-ERR Invalid characters/);
  assert.equal(h.upstream.count('USER'), 0);
  c.socket.write('USER ' + 'a'.repeat(10_000) + '\r\n');
  assert.equal(await c.line(), '-ERR Line too long');
  await c.closedByServer();
});

test('a silent client is logged out (no UPDATE upstream)', async (t) => {
  const h = await harness(t, { proxy: { idleTimeoutMs: 200 } });
  const c = await h.connect();
  await c.login();
  await c.command('DELE 1');
  await c.closedByServer(3000);
  await waitUntil('session end', () => h.proxy.activeSessions === 0);
  assert.deepEqual(h.upstream.expunged, []);
});

test('a client reading slowly gets the whole message (backpressure to the stored copy)', async (t) => {
  const body = Array.from({ length: 40_000 }, (_, i) => `${i % 7 === 0 ? '.' : ''}line ${i} ${'z'.repeat(40)}`).join('\n') + '\n';
  const big = message('big', body);
  const h = await harness(t, { messages: [big] });
  const c = await h.connect();
  await c.login();
  c.socket.pause();
  c.socket.write('RETR 1\r\n');
  await new Promise((r) => setTimeout(r, 300));
  c.socket.resume();
  const status = await c.line();
  assert.equal(status, `+OK ${big.length} octets`);
  const lines: string[] = [];
  for (;;) {
    const l = await c.line();
    if (l === '.') break;
    lines.push(l.startsWith('.') ? l.slice(1) : l);
  }
  assert.equal(Buffer.from(lines.join('\r\n') + '\r\n').length, big.length);
});

test('SIGTERM-style close: idle sessions are closed without QUIT upstream', async (t) => {
  const h = await harness(t);
  const c = await h.connect();
  await c.login();
  await c.command('DELE 1');
  await h.proxy.close(1000);
  await c.closedByServer();
  assert.deepEqual(h.upstream.expunged, []);
});
