// The SMTP session object on its own (issue 11): no sockets, no smtp-server. A fake upstream leg
// and the in-memory scanner stand in for upstream and for NATS/S3/clamd; the test plays the part
// of smtp-server, which fills in the envelope and calls one method per verb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { DEFAULT_POLICY, type Policy } from '@mailwarden/contracts';
import { TempFailError } from '@mailwarden/pipeline';
import { UpstreamError } from '@mailwarden/smtp-client';
import { SmtpSession } from '../src/smtp-session.js';
import { UpstreamRoute } from '../src/upstream-route.js';
import { SmtpReplyError } from '../src/smtp-reply.js';
import { ClientGoneError } from '../src/client-gone.js';
import { FakeUpstreamLeg } from './fake-upstream-leg.js';
import { MemoryMessageScanner } from './memory-message-scanner.js';

const log = pino({ level: 'silent' });
const MESSAGE = 'From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n';

interface Setup {
  session: SmtpSession;
  conn: SMTPServerSession & { disabledCommands?: string[] };
  leg: FakeUpstreamLeg;
  scanner: MemoryMessageScanner;
  policy: Policy;
}

function setup(tlsMode: Policy['tls']['smtp'] = 'strip'): Setup {
  const leg = new FakeUpstreamLeg();
  const scanner = new MemoryMessageScanner();
  const policy = structuredClone(DEFAULT_POLICY);
  const conn = {
    id: 'session-1',
    remoteAddress: '192.0.2.10',
    remotePort: 40000,
    clientHostname: 'client.example.org',
    hostNameAppearsAs: '',
    envelope: { mailFrom: false, rcptTo: [] },
  } as unknown as Setup['conn'];
  const route = new UpstreamRoute(leg, { scanner, direction: 'inbound', log, sessionId: conn.id });
  const session = new SmtpSession(conn, { direction: 'inbound', policy: () => policy, log, tlsMode, route });
  return { session, conn, leg, scanner, policy };
}

const address = (a: string): SMTPServerAddress => ({ address: a, args: false });

/** MAIL as smtp-server calls it: the envelope is filled in first. */
async function mail(s: Setup, from: string): Promise<void> {
  s.conn.envelope.mailFrom = address(from);
  await s.session.mailFrom(address(from));
}

/** RCPT as smtp-server calls it: the recipient joins the envelope once accepted. */
async function rcpt(s: Setup, to: string): Promise<void> {
  await s.session.rcptTo(address(to));
  s.conn.envelope.rcptTo.push(address(to));
}

function dataStream(): SMTPServerDataStream & PassThrough {
  return Object.assign(new PassThrough(), { sizeExceeded: false, byteLength: 0 }) as unknown as SMTPServerDataStream & PassThrough;
}

async function inTransaction(s: Setup): Promise<void> {
  await s.session.connect();
  await mail(s, 'sender@example.org');
  await rcpt(s, 'user@example.com');
}

const replyOf = (code: number, pattern?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof SmtpReplyError, `expected an SmtpReplyError, got ${String(err)}`);
  assert.equal(err.responseCode, code, err.message);
  if (pattern) assert.match(err.message, pattern);
  return true;
};

test('a transaction walks connecting → ready → mail → rcpt → data → ready, mirrored upstream', async () => {
  const s = setup();
  assert.equal(s.session.state, 'connecting');
  await s.session.connect();
  assert.equal(s.session.state, 'ready');
  assert.deepEqual(s.conn.disabledCommands, ['AUTH', 'STARTTLS'], 'strip: no STARTTLS offered');
  await mail(s, 'sender@example.org');
  assert.equal(s.session.state, 'mail');
  await rcpt(s, 'a@example.com');
  await rcpt(s, 'b@example.com');
  assert.equal(s.session.state, 'rcpt');
  const stream = dataStream();
  stream.end(MESSAGE);
  assert.equal(await s.session.data(stream), '2.0.0 Ok: queued as UP123');
  assert.equal(s.session.state, 'ready');
  assert.deepEqual(s.leg.calls, ['open', 'MAIL sender@example.org', 'RCPT a@example.com', 'RCPT b@example.com', 'DATA', '.']);
});

test('verbs out of order get 503 and never reach upstream; RSET starts over', async () => {
  const s = setup();
  await assert.rejects(s.session.mailFrom(address('early@example.org')), replyOf(503), 'MAIL before the greeting');
  await s.session.connect();
  await assert.rejects(s.session.connect(), replyOf(503), 'a second connect');
  await assert.rejects(s.session.rcptTo(address('user@example.com')), replyOf(503), 'RCPT before MAIL');
  const early = dataStream();
  early.end(MESSAGE);
  await assert.rejects(s.session.data(early), replyOf(503), 'DATA before MAIL');
  assert.ok(early.readableEnded, 'a refused DATA is still read to its end');
  await mail(s, 'sender@example.org');
  const noRcpt = dataStream();
  noRcpt.end(MESSAGE);
  await assert.rejects(s.session.data(noRcpt), replyOf(503), 'DATA before RCPT');
  await assert.rejects(s.session.mailFrom(address('nested@example.org')), replyOf(503), 'MAIL inside a transaction');
  s.session.reset();
  assert.equal(s.session.state, 'ready');
  await mail(s, 'again@example.org');
  assert.deepEqual(s.leg.calls, ['open', 'MAIL sender@example.org', 'MAIL again@example.org']);
  assert.equal(s.scanner.requests.length, 0);
  s.session.close();
  await assert.rejects(s.session.rcptTo(address('late@example.com')), replyOf(503), 'RCPT after the client left');
  assert.throws(() => s.session.reset(), replyOf(503), 'RSET after the client left');
});

test('control characters in an address are refused with 501 before anything goes upstream', async () => {
  const s = setup();
  await s.session.connect();
  await assert.rejects(s.session.mailFrom(address('a\r\nRCPT TO:<x@example.com>')), replyOf(501, /5\.5\.4/));
  assert.deepEqual(s.leg.calls, ['open']);
});

test("MAIL and RCPT replies are upstream's: refusals relayed as they came, the state unchanged", async () => {
  const s = setup();
  await s.session.connect();
  s.leg.replies.mail = { code: 550, lines: ['5.7.1 Sender rejected'] };
  await assert.rejects(mail(s, 'spammer@example.org'), replyOf(550, /^5\.7\.1 Sender rejected$/));
  assert.equal(s.session.state, 'ready');
  s.leg.replies.mail = { code: 250, lines: ['2.1.0 Ok'] };
  await mail(s, 'sender@example.org');
  s.leg.replies.rcpt = { code: 450, lines: ['Mailbox busy'] };
  await assert.rejects(rcpt(s, 'busy@example.com'), replyOf(450, /^4\.0\.0 Mailbox busy$/), 'an enhanced code is added when upstream gave none');
  assert.equal(s.session.state, 'mail');
  s.leg.replies.rcpt = { code: 251, lines: ['2.1.5 User not local; will forward'] };
  await rcpt(s, 'moved@example.com');
  assert.equal(s.session.state, 'rcpt');
});

test('upstream down at connect: 421 4.4.1 with a reference, the session is over', async () => {
  const s = setup();
  s.leg.openError = new UpstreamError('upstream 127.0.0.1:1: connect ECONNREFUSED');
  await assert.rejects(s.session.connect(), replyOf(421, /^4\.4\.1 Upstream mail server unavailable.*\(ref [^)]+\)$/));
  assert.equal(s.session.state, 'closed');
});

test("upstream's own refusal at connect (its EHLO) is relayed as it came", async () => {
  const s = setup();
  s.leg.openError = new SmtpReplyError(554, '5.7.1', 'No service for you');
  await assert.rejects(s.session.connect(), replyOf(554, /^5\.7\.1 No service for you$/));
});

test('an upstream connection that breaks at RCPT: 451 4.4.1 with a reference', async () => {
  const s = setup();
  await s.session.connect();
  await mail(s, 'sender@example.org');
  s.leg.rcptError = new UpstreamError('upstream closed the connection');
  await assert.rejects(rcpt(s, 'user@example.com'), replyOf(451, /^4\.4\.1 .*\(ref [^)]+\)$/));
  assert.equal(s.session.state, 'mail');
});

test('DATA in proxy mode: the scanner gets the envelope, its copy is delivered over the upstream leg', async () => {
  const s = setup();
  s.scanner.rebuild = (raw) => Buffer.from(raw.toString().replace('Subject: hello', 'Subject: [scanned] hello'));
  await inTransaction(s);
  const stream = dataStream();
  stream.end('From: a@example.org\nSubject: hello\n\nbody\n');
  assert.equal(await s.session.data(stream), '2.0.0 Ok: queued as UP123');
  assert.deepEqual(s.scanner.requests, [{ protocol: 'smtp', direction: 'inbound', mailFrom: 'sender@example.org', rcptTo: ['user@example.com'], scan: true }]);
  assert.deepEqual(s.leg.delivered, ['From: a@example.org\r\nSubject: [scanned] hello\r\n\r\nbody\r\n'], 'the stored copy, bare LF made CRLF');
  assert.equal(s.scanner.discarded, 1, 'the stored copy is removed once delivered');
  assert.equal(s.session.state, 'ready');
});

test("upstream's refusal of the message is the client's final reply", async () => {
  const s = setup();
  await inTransaction(s);
  s.leg.replies.data = { code: 552, lines: ['5.2.2 Mailbox full'] };
  const stream = dataStream();
  stream.end(MESSAGE);
  await assert.rejects(s.session.data(stream), replyOf(552, /^5\.2\.2 Mailbox full$/));
  assert.equal(s.session.state, 'ready');
});

test('a scanner failure is 451 4.3.0 carrying its reference; nothing goes upstream, the session goes on', async () => {
  const s = setup();
  await inTransaction(s);
  s.scanner.failWith = new TempFailError('no verdict within the scan timeout', 'REF-42');
  const stream = dataStream();
  stream.end(MESSAGE);
  await assert.rejects(s.session.data(stream), replyOf(451, /^4\.3\.0 .*\(ref REF-42\)$/));
  assert.ok(!s.leg.calls.includes('DATA'));
  assert.equal(s.session.state, 'ready');
  assert.ok(!s.leg.closed, 'the upstream leg is kept for the next transaction');
});

test('the client leaves while the upstream leg is still connecting: the leg is closed, also once it opens', async () => {
  const s = setup();
  let greet!: () => void;
  s.leg.greeting = new Promise((r) => (greet = r));
  const connecting = s.session.connect();
  assert.equal(s.session.state, 'connecting');
  s.session.close();
  assert.equal(s.session.state, 'closed');
  assert.ok(s.leg.closed, 'closed at once');
  greet();
  await assert.rejects(connecting, ClientGoneError);
  assert.deepEqual(s.leg.calls, ['open', 'close', 'close'], 'closed again once open: nothing was left open');
});

for (const state of ['ready', 'mail', 'rcpt'] as const) {
  test(`the client leaves in state ${state}: the upstream leg is closed, once`, async () => {
    const s = setup();
    await s.session.connect();
    if (state !== 'ready') await mail(s, 'sender@example.org');
    if (state === 'rcpt') await rcpt(s, 'user@example.com');
    assert.equal(s.session.state, state);
    s.session.close();
    s.session.close();
    assert.equal(s.session.state, 'closed');
    assert.equal(s.leg.calls.filter((c) => c.startsWith('close')).length, 1);
    assert.ok(s.leg.closed);
  });
}

test('the client leaves while its message is being received: not delivered, 451, the leg closed', async () => {
  const s = setup();
  await inTransaction(s);
  const stream = dataStream();
  stream.write('From: a@example.org\r\nSubject: half\r\n\r\nthe first half');
  const receiving = s.session.data(stream);
  assert.equal(s.session.state, 'data');
  // smtp-server destroys the DATA stream when the client disconnects mid-message, then closes the session.
  stream.destroy();
  s.session.close();
  await assert.rejects(receiving, replyOf(451, /Connection closed before the message was delivered/));
  assert.deepEqual(s.leg.calls, ['open', 'MAIL sender@example.org', 'RCPT user@example.com', 'close']);
  assert.equal(s.session.state, 'closed');
});

test('the client leaves while its message is being sent upstream: the leg is closed without a command inside DATA', async () => {
  const s = setup();
  await inTransaction(s);
  let dot!: () => void;
  s.leg.finalDot = new Promise((r) => (dot = r));
  const sending = s.leg.sendingMessage();
  const stream = dataStream();
  stream.end(MESSAGE);
  const delivering = s.session.data(stream);
  await sending;
  s.session.close();
  dot();
  await assert.rejects(delivering, replyOf(451, /Upstream mail server failed to take the message/));
  assert.deepEqual(s.leg.calls.slice(s.leg.calls.indexOf('DATA')), ['DATA', 'close (mid-DATA)'], 'no final dot, no command after DATA');
  assert.deepEqual(s.leg.delivered, []);
  assert.equal(s.session.state, 'closed');
});

test('passthrough: STARTTLS is offered only when upstream offers it', async () => {
  const withTls = setup('passthrough');
  withTls.leg.capabilities.add('STARTTLS');
  await withTls.session.connect();
  assert.deepEqual(withTls.conn.disabledCommands, ['AUTH']);
  withTls.session.close();
  const without = setup('passthrough');
  await without.session.connect();
  assert.deepEqual(without.conn.disabledCommands, ['AUTH', 'STARTTLS']);
  without.session.close();
});
