// TLS policy for SMTP with real TLS peers: Python smtplib (STARTTLS and SMTPS), openssl s_client,
// and an upstream SMTP server that offers STARTTLS itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type LocalStack, type RunningService } from '@mailwarden/local-stack';
import { startDevMailbox, type DevMailbox, type DeliveredMessage } from '@mailwarden/dev-mailbox';
import { ensureSelfSigned } from '@mailwarden/tls';
import { freePort } from '@mailwarden/clamd';
import { parseHostPort } from '@mailwarden/config';
import { PolicyStore, connectBus, type Bus } from '@mailwarden/bus';
import { Streams, Subjects, type TlsMode } from '@mailwarden/contracts';
import { EICAR, composeMessage, sendWithSmtplib, waitFor } from '@mailwarden/testkit';
import { uniqueUser, waitForDelivery } from '../support/mailbox.js';
import { assertNoEicar } from '../support/assertions.js';
import { rawSession } from '../support/raw-smtp.js';

const run = promisify(execFile);
let dir: string;
let stack: LocalStack;
let tlsUpstream: DevMailbox;
let bus: Bus;
let policy: PolicyStore;
let gateway: RunningService;
let mailRoot: string;
const upstreamDeliveries: DeliveredMessage[] = [];
let smtp: { host: string; port: number };
let smtps: { host: string; port: number };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-tls-e2e-'));
  stack = await startStack({ stateDir: join(dir, 'stack'), env: { SCAN_TIMEOUT_MS: '20000' } });
  mailRoot = join(dir, 'tls-mail');
  const upstreamCert = await ensureSelfSigned(join(dir, 'upstream-tls'), 'upstream.example.test');
  tlsUpstream = await startDevMailbox({
    listen: '127.0.0.1:0',
    mailRoot,
    hostname: 'upstream.example.test',
    tls: { key: await readFile(upstreamCert.key), cert: await readFile(upstreamCert.cert) },
    onMessage: (m) => upstreamDeliveries.push(m),
  });
  await stack.startService('scanner');
  await stack.startService('reassembler');
  const smtpsListen = `127.0.0.1:${await freePort()}`;
  gateway = await stack.startService('smtp-gateway', { SMTP_UPSTREAM: tlsUpstream.address, SMTPS_LISTEN: smtpsListen, SMTP_HOSTNAME: 'gateway.example.test' });
  smtp = parseHostPort(stack.env.SMTP_LISTEN);
  smtps = parseHostPort(smtpsListen);
  bus = await connectBus({ ...stack.natsClient(), name: 'tls-test' });
  policy = await PolicyStore.open(bus.kvm);
});
after(async () => {
  await bus?.nc.close().catch(() => undefined);
  await tlsUpstream?.stop();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function setTls(mode: TlsMode): Promise<void> {
  const doc = await policy.get();
  doc.policy.tls.smtp = mode;
  const next = await policy.put(doc.policy, { expectedVersion: doc.version });
  await waitFor(() => gateway.output().includes(`"event":"policy.applied","version":${next.version}`), 'gateway applied the policy', 5000);
}

const certCN = (b64: string) => new X509Certificate(Buffer.from(b64, 'base64')).subject;
const infected = () => composeMessage({ attachments: [{ filename: 'eicar.com', data: EICAR }] });

describe('strip (default): STARTTLS is never offered, all mail is scanned', () => {
  test('EHLO has no STARTTLS and a forced STARTTLS is refused', async () => {
    const transcript = await rawSession(smtp, ['EHLO c.example.org\r\n', 'STARTTLS\r\n', 'QUIT\r\n']);
    assert.ok(!/STARTTLS/.test(transcript.split('\r\n').filter((l) => l.startsWith('250')).join('\n')), transcript);
    assert.match(transcript, /^5\d\d .*\r\n221/m);
  });

  test('mail is scanned', async () => {
    const user = uniqueUser('strip');
    const r = await sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message: infected() });
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    assertNoEicar((await waitForDelivery(mailRoot, user))[0]!);
  });
});

describe('terminate: the gateway does TLS on both legs and scans in between', () => {
  before(() => setTls('terminate'));

  test('a client that insists on STARTTLS still gets its infected attachment replaced; both legs encrypted', async () => {
    const user = uniqueUser('term');
    const r = await sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message: infected(), starttls: true });
    assert.equal(r.starttls?.[0], 220, JSON.stringify(r));
    assert.match(r.tls!.version, /^TLSv1\.[23]$/);
    assert.match(certCN(r.tls!.cert), /CN=gateway\.example\.test/, 'the client talks TLS with the gateway');
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    assertNoEicar((await waitForDelivery(mailRoot, user))[0]!);
    const leg = upstreamDeliveries.find((d) => d.rcptTo.includes(`${user}@example.test`));
    assert.equal(leg?.secure, true, 'the upstream leg must be encrypted too');
  });

  test('SMTPS (implicit TLS) is scanned the same way', async () => {
    const user = uniqueUser('smtps');
    const r = await sendWithSmtplib({ ...smtps, to: [`${user}@example.test`], message: infected(), ssl: true });
    assert.match(certCN(r.tls!.cert), /CN=gateway\.example\.test/);
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    assertNoEicar((await waitForDelivery(mailRoot, user))[0]!);
  });

  test('a renewed certificate is used without a restart', async () => {
    const renewed = await ensureSelfSigned(join(dir, 'renewed'), 'renewed.example.test');
    const live = join(stack.env.MAILWARDEN_STATE_DIR, 'tls');
    await copyFile(renewed.key, join(live, 'gateway-key.pem'));
    await copyFile(renewed.cert, join(live, 'gateway-cert.pem'));
    await waitFor(
      async () => {
        const r = await sendWithSmtplib({ ...smtp, to: [`${uniqueUser('renew')}@example.test`], message: composeMessage(), starttls: true });
        return r.tls && /renewed\.example\.test/.test(certCN(r.tls.cert));
      },
      'the renewed certificate',
      15_000,
      300,
    );
  });

  test('openssl s_client negotiates TLS 1.2+ and TLS 1.1 is refused', async () => {
    const ok = await run('openssl', ['s_client', '-connect', `${smtp.host}:${smtp.port}`, '-starttls', 'smtp', '-brief'], { timeout: 10_000 }).catch((e: { stdout: string; stderr: string }) => e);
    assert.match(`${ok.stdout}${ok.stderr}`, /Protocol version: TLSv1\.[23]/);
    const old = await run('openssl', ['s_client', '-connect', `${smtp.host}:${smtp.port}`, '-starttls', 'smtp', '-tls1_1', '-brief'], { timeout: 10_000 }).catch((e: { stdout: string; stderr: string }) => e);
    assert.doesNotMatch(`${old.stdout}${old.stderr}`, /Protocol version: TLSv1\.1/);
  });
});

describe('passthrough: encrypted end to end, relayed unscanned and counted', () => {
  before(() => setTls('passthrough'));

  test('STARTTLS reaches upstream; the attachment is delivered untouched; the session is counted', async () => {
    const user = uniqueUser('pass');
    const message = infected();
    const r = await sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message, starttls: true });
    assert.equal(r.starttls?.[0], 220, JSON.stringify(r));
    assert.match(certCN(r.tls!.cert), /CN=upstream\.example\.test/, 'the TLS session is with upstream itself');
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    const [got] = await waitForDelivery(mailRoot, user);
    assert.ok(got!.equals(message), 'relayed as sent: the gateway cannot see inside');
    const counted = await waitFor(
      () => bus.jsm.streams.getMessage(Streams.events, { last_by_subj: Subjects.event('tls-unscanned') }).catch(() => undefined),
      'tls-unscanned event',
    );
    assert.equal(counted!.json<{ reason: string }>().reason, 'passthrough');
  });

  test('a client that does not ask for TLS is scanned', async () => {
    const user = uniqueUser('passplain');
    const r = await sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message: infected() });
    assert.equal(r.data?.[0], 250);
    assertNoEicar((await waitForDelivery(mailRoot, user))[0]!);
  });

  test('when upstream lacks STARTTLS, it is not offered', async () => {
    const plain = await stack.startService('smtp-gateway', { SMTP_LISTEN: `127.0.0.1:${await freePort()}` });
    try {
      const listen = parseHostPort(String((plain.ready.listeners as string[])[0]).split('=')[1]!);
      const transcript = await rawSession(listen, ['EHLO c.example.org\r\n', 'QUIT\r\n']);
      assert.match(transcript, /^250[ -]/m);
      assert.ok(!transcript.includes('STARTTLS'), transcript);
    } finally {
      await plain.stop();
    }
  });
});
