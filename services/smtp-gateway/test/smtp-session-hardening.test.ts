// Issue 11: never lose, never duplicate, never hang. The SMTP proxy on real sockets between a raw
// test client and a fake upstream MTA (the in-memory scanner stands in for NATS/S3/clamd).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { DEFAULT_POLICY, type Policy } from '@mailwarden/contracts';
import { metrics } from '@mailwarden/observability';
import { createSmtpProxy, type SmtpProxyOptions } from '../src/smtp-proxy.js';
import { passthroughSessions } from '../src/starttls-passthrough.js';
import { FakeSmtpUpstream, type FakeSmtpUpstreamOptions } from './fake-smtp-upstream.js';
import { MemoryMessageScanner } from './memory-message-scanner.js';
import { SmtpTestClient, bigMessage } from './smtp-test-client.js';

interface Harness {
  upstream: FakeSmtpUpstream;
  scanner: MemoryMessageScanner;
  port: number;
  policy: Policy;
  events: Record<string, unknown>[];
  connect(): Promise<SmtpTestClient>;
}

async function harness(t: TestContext, opts: { upstream?: FakeSmtpUpstreamOptions; proxy?: Partial<SmtpProxyOptions>; tls?: Policy['tls']['smtp'] } = {}): Promise<Harness> {
  const upstream = await FakeSmtpUpstream.start(opts.upstream);
  const scanner = new MemoryMessageScanner();
  const policy = structuredClone(DEFAULT_POLICY);
  policy.tls.smtp = opts.tls ?? 'strip';
  const events: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) events.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const server = createSmtpProxy({ direction: 'inbound', hostname: 'gateway.test', upstream: upstream.address, scanner, policy: () => policy, log, ...opts.proxy });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  const clients: SmtpTestClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await upstream.stop();
  });
  return {
    upstream,
    scanner,
    port,
    policy,
    events,
    async connect() {
      const { client, greeting } = await SmtpTestClient.connect(port);
      clients.push(client);
      assert.equal(greeting.code, 220, greeting.text);
      return client;
    },
  };
}

const waitUntil = async (what: string, probe: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => {
  const until = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const small = (subject: string) => Buffer.from(`From: a@example.org\r\nTo: rcpt@example.test\r\nSubject: ${subject}\r\n\r\nHello\r\n`, 'latin1');

async function send(client: SmtpTestClient, message: Buffer, rcpt?: string) {
  await client.begin('client.example.test', rcpt);
  client.socket.write(message);
  return client.command('.', 15_000);
}

const counted = async (outcome: string): Promise<number> =>
  (await metrics.messages.get()).values.find((v) => v.labels.protocol === 'smtp' && v.labels.outcome === outcome)?.value ?? 0;

test('a client that leaves while its message is forwarded: upstream gets no final dot and never a QUIT inside DATA', async (t) => {
  const h = await harness(t, { upstream: { dataChunkDelayMs: 30 } });
  const client = await h.connect();
  await client.begin();
  client.socket.write(bigMessage(4 * 1024 * 1024));
  client.socket.write('\r\n.\r\n');
  // The message is stored; the gateway streams it to the slow upstream; the client gives up.
  await waitUntil('forwarding started', () => (h.upstream.connections[0]?.dataBytes ?? 0) > 0);
  client.close();
  const conn = h.upstream.connections[0]!;
  await waitUntil('upstream connection closed', () => conn.closed || conn.completed > 0, 20_000);
  const received = Buffer.concat([...conn.data, ...conn.receiving]).toString('latin1');
  assert.equal(received.includes('QUIT'), false, 'QUIT was written into the message body');
  assert.equal(conn.completed, 0, 'upstream got a complete (final-dot) message the client was never told about');
  assert.ok(conn.closed);
});

test('a client that leaves while its message is scanned: nothing goes upstream (its retry is the only copy)', async (t) => {
  const h = await harness(t);
  h.scanner.delayMs = 500;
  const client = await h.connect();
  await client.begin();
  client.socket.write(small('scanned slowly'));
  client.socket.write('.\r\n');
  await waitUntil('the message was read', () => h.scanner.requests.length === 1);
  client.close();
  await waitUntil('the stored copy was discarded', () => h.scanner.discarded === 1, 5000);
  const conn = h.upstream.connections[0]!;
  await waitUntil('the upstream leg closed', () => conn.closed, 5000);
  assert.equal(conn.commands.includes('DATA'), false, conn.commands.join(' | '));
  assert.equal(conn.completed, 0);
});

test('clients that leave before the upstream greeting: the upstream legs opened late are closed', async (t) => {
  const h = await harness(t, { upstream: { greetingDelayMs: 300 } });
  const clients = Array.from({ length: 100 }, () => connect({ port: h.port, host: '127.0.0.1' }).on('error', () => undefined));
  await waitUntil('every client has an upstream leg on its way', () => h.upstream.connections.length === clients.length);
  for (const c of clients) c.destroy();
  await sleep(1000);
  assert.equal(h.upstream.open, 0, `${h.upstream.open} upstream connections left open`);
});

test('clients that leave before the upstream greeting: no upstream leg, no passthrough registration is left', async (t) => {
  const h = await harness(t, { upstream: { greetingDelayMs: 300, extensions: ['STARTTLS'] }, tls: 'passthrough' });
  const clients = Array.from({ length: 100 }, () => connect({ port: h.port, host: '127.0.0.1' }).on('error', () => undefined));
  await waitUntil('every client has an upstream leg on its way', () => h.upstream.connections.length === clients.length);
  for (const c of clients) c.destroy();
  await sleep(1000);
  assert.equal(h.upstream.open, 0, `${h.upstream.open} upstream connections left open`);
  assert.equal(passthroughSessions(), 0, 'passthrough registrations leaked');
});

test('over SMTP_MAX_CONNECTIONS: 421 4.7.0 too many connections, closed, no upstream leg', async (t) => {
  const h = await harness(t, { proxy: { maxConnections: 2 } });
  const a = await h.connect();
  await h.connect();
  const { client: third, greeting } = await SmtpTestClient.connect(h.port);
  assert.equal(greeting.code, 421);
  assert.match(greeting.text, /^4\.7\.0 too many connections/);
  await third.closed;
  assert.equal(h.upstream.connections.length, 2);
  // A slot frees up when a session ends.
  a.close();
  await waitUntil('a slot is free', async () => {
    const { client, greeting } = await SmtpTestClient.connect(h.port);
    client.close();
    return greeting.code === 220;
  });
});

test('a final reply slower than the command timeout but within SMTP_DATA_REPLY_TIMEOUT_MS is relayed, not 451', async (t) => {
  const h = await harness(t, { upstream: { finalReplyDelayMs: 1200 }, proxy: { commandTimeoutMs: 400, dataReplyTimeoutMs: 5000 } });
  const client = await h.connect();
  const reply = await send(client, small('slow filter'));
  assert.equal(reply.code, 250, reply.text);
  assert.equal(h.upstream.connections[0]!.completed, 1);
});

test('a final reply slower than SMTP_DATA_REPLY_TIMEOUT_MS is a 451', async (t) => {
  const h = await harness(t, { upstream: { finalReplyDelayMs: 1500 }, proxy: { commandTimeoutMs: 200, dataReplyTimeoutMs: 500 } });
  const client = await h.connect();
  const reply = await send(client, small('too slow'));
  assert.equal(reply.code, 451, reply.text);
});

test('a DATA aborted by the client finishes its handler: counted as tempfail, nothing left in flight', async (t) => {
  const h = await harness(t);
  const before = await counted('tempfail');
  const client = await h.connect();
  await client.begin();
  client.socket.write(bigMessage(256 * 1024).subarray(0, 100 * 1024));
  await waitUntil('the scanner is reading the message', () => h.scanner.inFlight === 1);
  client.close();
  await waitUntil('the scanner was released', () => h.scanner.inFlight === 0, 5000);
  await waitUntil('the aborted DATA was counted', async () => (await counted('tempfail')) === before + 1, 5000);
  assert.ok(h.events.some((e) => e.event === 'smtp.client_aborted'), 'an smtp.client_aborted event was logged');
  assert.equal(h.upstream.connections[0]!.commands.includes('DATA'), false, 'nothing was sent upstream');
});

test('XCLIENT: the client address, name, protocol and HELO reach an upstream that offers it, then EHLO again', async (t) => {
  const h = await harness(t, { upstream: { extensions: ['XCLIENT NAME ADDR PROTO HELO'] } });
  const client = await h.connect();
  assert.equal((await send(client, small('one'))).code, 250);
  assert.equal((await client.command('MAIL FROM:<b@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<rcpt@example.test>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.socket.write(small('two'));
  assert.equal((await client.command('.')).code, 250);
  const cmds = h.upstream.connections[0]!.commands;
  const xclients = cmds.filter((c) => c.startsWith('XCLIENT '));
  assert.equal(xclients.length, 1, cmds.join(' | '));
  assert.match(xclients[0]!, /^XCLIENT ADDR=127\.0\.0\.1 NAME=\S+ PROTO=ESMTP HELO=client\.example\.test$/);
  const i = cmds.indexOf(xclients[0]!);
  assert.match(cmds[i + 1]!, /^EHLO /, 'EHLO again after XCLIENT');
  assert.match(cmds[i + 2]!, /^MAIL FROM:/);
});

test('XFORWARD: the client attributes go upstream before every MAIL when upstream offers it', async (t) => {
  const h = await harness(t, { upstream: { extensions: ['XFORWARD NAME ADDR PROTO HELO'] } });
  const client = await h.connect();
  assert.equal((await send(client, small('one'))).code, 250);
  assert.equal((await client.command('MAIL FROM:<b@example.org>')).code, 250);
  const cmds = h.upstream.connections[0]!.commands;
  const mails = cmds.map((c, i) => [c, i] as const).filter(([c]) => c.startsWith('MAIL FROM:'));
  assert.equal(mails.length, 2);
  for (const [, i] of mails) assert.match(cmds[i - 1]!, /^XFORWARD ADDR=127\.0\.0\.1 NAME=\S+ PROTO=ESMTP HELO=client\.example\.test$/, cmds.join(' | '));
  assert.equal(cmds.some((c) => c.startsWith('XCLIENT')), false);
});

test('XCLIENT refused by upstream (gateway not authorized): the mail still goes, a warning names the setting', async (t) => {
  const h = await harness(t, { upstream: { extensions: ['XCLIENT NAME ADDR PROTO HELO'], xclientReply: '550 5.7.0 Error: insufficient authorization' } });
  const client = await h.connect();
  assert.equal((await send(client, small('one'))).code, 250);
  assert.equal((await client.command('MAIL FROM:<b@example.org>')).code, 250);
  assert.equal(h.upstream.connections[0]!.commands.filter((c) => c.startsWith('XCLIENT')).length, 1, 'not asked again');
  assert.ok(h.events.some((e) => e.event === 'smtp.client_identity_refused'));
});

test('SMTP_UPSTREAM_XCLIENT=off: neither XCLIENT nor XFORWARD is sent', async (t) => {
  const h = await harness(t, { upstream: { extensions: ['XCLIENT NAME ADDR PROTO HELO', 'XFORWARD NAME ADDR PROTO HELO'] }, proxy: { clientIdentity: 'off' } });
  const client = await h.connect();
  assert.equal((await send(client, small('one'))).code, 250);
  assert.equal(h.upstream.connections[0]!.commands.some((c) => /^X(CLIENT|FORWARD)/.test(c)), false);
});
