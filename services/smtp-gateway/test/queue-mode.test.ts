// Queue mode in the SMTP proxy (issue 14), on real sockets: a raw test client, the proxy with an
// in-memory queue, and a fake upstream for the recipient checks. No session to upstream is held.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DEFAULT_POLICY } from '@mailwarden/contracts';
import { SmtpConnectionPool } from '@mailwarden/smtp-client';
import { createSmtpProxy } from '../src/smtp-proxy.js';
import { BackPressure } from '../src/back-pressure.js';
import { QueueAcceptance } from '../src/queue-acceptance.js';
import { RecipientVerifier } from '../src/recipient-verifier.js';
import { FakeSmtpUpstream } from './fake-smtp-upstream.js';
import { MemoryMessageQueue } from './memory-message-queue.js';
import { MemoryMessageScanner } from './memory-message-scanner.js';
import { SmtpTestClient } from './smtp-test-client.js';

const log = pino({ level: 'silent' });

async function harness(t: TestContext, opts: { depth?: () => Promise<number>; healthy?: () => Promise<boolean>; upstreamDown?: boolean } = {}) {
  const upstream = await FakeSmtpUpstream.start();
  if (opts.upstreamDown) await upstream.stop();
  const queue = new MemoryMessageQueue();
  const pool = new SmtpConnectionPool({ ...upstream.address, connectTimeoutMs: 2000, commandTimeoutMs: 2000, helloName: 'gateway.test', tls: { verify: false } });
  const acceptance = new QueueAcceptance({
    queue,
    verifier: new RecipientVerifier(pool, 60_000, log),
    backPressure: new BackPressure({ maxDepth: 10, depth: opts.depth ?? (async () => 0), healthy: opts.healthy ?? (async () => true), cacheMs: 0 }),
    direction: 'inbound',
    hostname: 'gateway.test',
    log,
  });
  const policy = structuredClone(DEFAULT_POLICY);
  const server = createSmtpProxy({ direction: 'inbound', hostname: 'gateway.test', upstream: upstream.address, scanner: new MemoryMessageScanner(), policy: () => policy, log, queue: acceptance });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  const clients: SmtpTestClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await pool.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await upstream.stop();
  });
  return {
    upstream,
    queue,
    policy,
    async connect() {
      const { client, greeting } = await SmtpTestClient.connect(port);
      clients.push(client);
      assert.equal(greeting.code, 220);
      assert.equal((await client.command('EHLO client.example.test')).code, 250);
      return client;
    },
  };
}

const message = Buffer.from('From: a@example.org\r\nTo: rcpt@example.test\r\nSubject: queued\r\n\r\nHello\nbare LF\r\n', 'latin1');

test('queue mode: 250 quoting the reference once the queue took the message; upstream only saw the recipient check', async (t) => {
  const h = await harness(t);
  const client = await h.connect();
  assert.equal((await client.command('MAIL FROM:<sender@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<rcpt@example.test>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.socket.write(message);
  const reply = await client.command('.');
  assert.equal(reply.code, 250, reply.text);
  const [queued] = h.queue.queued;
  assert.match(reply.text, new RegExp(`queued as ${queued!.ref}`));
  assert.deepEqual({ from: queued!.req.mailFrom, to: queued!.req.rcptTo, scan: queued!.req.scan }, { from: 'sender@example.org', to: ['rcpt@example.test'], scan: true });
  assert.ok(queued!.body.toString('latin1').includes('Hello\r\nbare LF\r\n'), 'bare LF canonicalised before it is stored');
  // The trace a relaying server adds (RFC 5321 4.4), then the message as sent.
  assert.match(queued!.body.toString('latin1'), /^Received: from client\.example\.test \((?:\S+ )?\[127\.0\.0\.1\]\)\r\n\tby gateway\.test \(Mailwarden\) with ESMTP id (\S+);\r\n\t[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} [\d:]{8} \+0000\r\nFrom: a@example\.org\r\n/);
  assert.equal(/ id (\S+);/.exec(queued!.body.toString('latin1'))?.[1], queued!.ref, 'the Received line quotes the queue reference');
  const commands = h.upstream.connections.flatMap((c) => c.commands);
  assert.ok(commands.includes('MAIL FROM:<>') && commands.includes('RCPT TO:<rcpt@example.test>'), commands.join(' | '));
  assert.ok(!commands.includes('DATA'), 'nothing is sent upstream by the gateway');
});

test('queue mode: with upstream down, the session and the recipients are still accepted', async (t) => {
  const h = await harness(t, { upstreamDown: true });
  const client = await h.connect();
  assert.equal((await client.command('MAIL FROM:<sender@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<rcpt@example.test>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.socket.write(message);
  assert.equal((await client.command('.')).code, 250);
  assert.equal(h.queue.queued.length, 1);
});

test('queue mode: back-pressure answers 451 at MAIL when the queue is too deep or S3/NATS is unhealthy', async (t) => {
  let depth = 50;
  let healthy = true;
  const h = await harness(t, { depth: async () => depth, healthy: async () => healthy });
  const client = await h.connect();
  const full = await client.command('MAIL FROM:<sender@example.org>');
  assert.equal(full.code, 451);
  assert.match(full.text, /4\.3\.2/);
  depth = 0;
  healthy = false;
  assert.equal((await client.command('MAIL FROM:<sender@example.org>')).code, 451);
  healthy = true;
  assert.equal((await client.command('MAIL FROM:<sender@example.org>')).code, 250);
});

test('queue mode: a failure before the message is durable is a 451 with a reference, and the session goes on', async (t) => {
  const h = await harness(t);
  h.queue.fail = true;
  const client = await h.connect();
  await client.command('MAIL FROM:<sender@example.org>');
  await client.command('RCPT TO:<rcpt@example.test>');
  await client.command('DATA');
  client.socket.write(message);
  const reply = await client.command('.');
  assert.equal(reply.code, 451);
  assert.match(reply.text, /4\.3\.0 .*\(ref [a-z0-9]+\)/);
  h.queue.fail = false;
  assert.equal((await client.command('MAIL FROM:<sender@example.org>')).code, 250);
});

test('queue mode: a NUL byte is refused with 550, nothing is queued', async (t) => {
  const h = await harness(t);
  const client = await h.connect();
  await client.command('MAIL FROM:<sender@example.org>');
  await client.command('RCPT TO:<rcpt@example.test>');
  await client.command('DATA');
  client.socket.write(Buffer.from('Subject: nul\r\n\r\nbad\0byte\r\n', 'latin1'));
  const reply = await client.command('.');
  assert.equal(reply.code, 550);
  assert.equal(h.queue.queued.length, 0);
});

test('queue mode: with scanning off in the policy the message is queued unscanned', async (t) => {
  const h = await harness(t);
  h.policy.antivirus.smtp = false;
  const client = await h.connect();
  await client.command('MAIL FROM:<sender@example.org>');
  await client.command('RCPT TO:<rcpt@example.test>');
  await client.command('DATA');
  client.socket.write(message);
  assert.equal((await client.command('.')).code, 250);
  assert.equal(h.queue.queued[0]!.req.scan, false);
});
