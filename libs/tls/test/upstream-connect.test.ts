// connectUpstream on real sockets (port 0, loopback): TCP, implicit TLS, STARTTLS/STLS upgrade,
// and the deadlines that keep a silent server from hanging the caller.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket, createServer as createTlsServer, createSecureContext } from 'node:tls';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSigned } from '../src/self-signed.js';
import { connectUpstream } from '../src/upstream-connect.js';

class TestUpstreamError extends Error {
  override name = 'TestUpstreamError';
}
const fail = (message: string, cause?: Error) => new TestUpstreamError(message, cause ? { cause } : undefined);

async function listen(t: TestContext, server: Server): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

async function certificate(t: TestContext): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'upstream-connect-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const files = await ensureSelfSigned(dir, 'localhost');
  return { key: await readFile(files.key), cert: await readFile(files.cert) };
}

const received = (s: Socket): Promise<string> =>
  new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('end', () => resolve(text));
    s.on('close', () => resolve(text));
  });

test('TCP: a connected socket, or the caller’s own error naming the upstream', async (t) => {
  const port = await listen(t, createServer((s) => s.end('220 hi\r\n')));
  const s = await connectUpstream({ host: '127.0.0.1', port, timeoutMs: 5000, fail });
  assert.equal(await received(s), '220 hi\r\n');
  const gone = createServer();
  await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
  const free = (gone.address() as AddressInfo).port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  await assert.rejects(connectUpstream({ host: '127.0.0.1', port: free, timeoutMs: 5000, fail }), (err: Error) => {
    assert.ok(err instanceof TestUpstreamError);
    assert.match(err.message, new RegExp(`^upstream 127\\.0\\.0\\.1:${free}: .*ECONNREFUSED`));
    return true;
  });
});

test('implicit TLS: a server that accepts and never answers the handshake is a timeout, not a hang', async (t) => {
  const port = await listen(t, createServer(() => undefined));
  await assert.rejects(connectUpstream({ host: '127.0.0.1', port, timeoutMs: 200, tls: { verify: false }, fail }), /TLS handshake timed out after 200 ms/);
});

test('implicit TLS: the certificate is checked against the given CA when asked, refused otherwise', async (t) => {
  const pair = await certificate(t);
  const port = await listen(t, createTlsServer(pair, (s) => s.end('+OK ready\r\n')));
  const s = (await connectUpstream({ host: '127.0.0.1', port, timeoutMs: 5000, tls: { verify: true, ca: pair.cert }, fail })) as TLSSocket;
  assert.equal(s.encrypted, true);
  assert.equal(await received(s), '+OK ready\r\n');
  await assert.rejects(connectUpstream({ host: '127.0.0.1', port, timeoutMs: 5000, tls: { verify: true }, fail }), /TLS handshake failed: .*self[- ]signed/i);
});

test('STARTTLS/STLS: the handshake on a connected socket, then the session goes on encrypted', async (t) => {
  const context = createSecureContext(await certificate(t));
  const port = await listen(
    t,
    createServer((plain) => {
      plain.write('220 go ahead\r\n');
      plain.once('data', () => {
        // Wrapped before the 220 goes out: the client's next bytes are its handshake.
        const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
        secure.on('secure', () => secure.end('250 secret\r\n'));
        plain.write('220 ready to start TLS\r\n');
      });
    }),
  );
  const plain = connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => plain.once('data', resolve));
  plain.write('STARTTLS\r\n');
  await new Promise((resolve) => plain.once('data', resolve));
  const secure = (await connectUpstream({ host: '127.0.0.1', port, timeoutMs: 5000, tls: { verify: false }, socket: plain, fail })) as TLSSocket;
  assert.equal(secure.encrypted, true);
  assert.equal(await received(secure), '250 secret\r\n');
});

test('STARTTLS/STLS: a server that never starts the handshake is a timeout; the socket is closed', async (t) => {
  const port = await listen(t, createServer(() => undefined));
  const plain = connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => plain.once('connect', resolve));
  await assert.rejects(connectUpstream({ host: '127.0.0.1', port, timeoutMs: 200, tls: { verify: false }, socket: plain, fail }), /TLS handshake timed out after 200 ms/);
  assert.equal(plain.destroyed, true);
});
