// TLS policy for POP3 with real TLS peers: Python poplib (STLS and POP3_SSL) and openssl s_client
// as clients, Dovecot (STLS and pop3s, its own self-signed certificate, CN=localhost) as upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { freePort, startDovecot, startStack, type LocalStack, type RunningService } from '@mailwarden/local-stack';
import { MaildirStore } from '@mailwarden/dev-mailbox';
import { ensureSelfSigned } from '@mailwarden/tls';
import { parseHostPort, type HostPort } from '@mailwarden/config';
import { PolicyStore, connectBus, type Bus } from '@mailwarden/bus';
import { Streams, Subjects, type TlsMode, type TlsUnscannedEvent } from '@mailwarden/contracts';
import { EICAR, composeMessage, poplibSession, runPoplib, waitFor, type Pop3Step, type PoplibSession } from '@mailwarden/testkit';
import { uniqueUser } from '../support/mailbox.js';
import { assertNoEicar } from '../support/assertions.js';

const run = promisify(execFile);
const NOTICE = 'Mailwarden removed the attachment';
let dir: string;
let stack: LocalStack;
let bus: Bus;
let policy: PolicyStore;
let gateway: RunningService;
let maildir: MaildirStore;
let pop3: HostPort;
let pop3s: HostPort;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-pop3-tls-e2e-'));
  stack = await startStack({ stateDir: dir, env: { SCAN_TIMEOUT_MS: '20000', SMTP_HOSTNAME: 'gateway.example.test' } });
  await Promise.all([stack.startService('scanner'), stack.startService('reassembler')]);
  const pop3sListen = `127.0.0.1:${await freePort()}`;
  gateway = await stack.startService('pop3-gateway', { POP3S_LISTEN: pop3sListen });
  pop3 = parseHostPort(stack.env.POP3_LISTEN);
  pop3s = parseHostPort(pop3sListen);
  bus = await connectBus({ ...stack.natsClient(), name: 'pop3-tls-test' });
  policy = await PolicyStore.open(bus.kvm);
  maildir = new MaildirStore(stack.env.DEV_MAILBOX_DIR);
});
after(async () => {
  await bus?.nc.close().catch(() => undefined);
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function setTls(mode: TlsMode): Promise<void> {
  const doc = await policy.get();
  doc.policy.tls.pop3 = mode;
  const next = await policy.put(doc.policy, { expectedVersion: doc.version });
  await waitFor(() => gateway.output().includes(`"event":"policy.applied","version":${next.version}`), 'gateway applied the policy', 5000);
}

/** A mailbox holding one message with an EICAR attachment; returns the user and the exact bytes. */
async function infectedMailbox(tag: string): Promise<{ user: string; message: Buffer }> {
  const user = uniqueUser(tag);
  const message = composeMessage({ to: `${user}@example.test`, attachments: [{ filename: 'eicar.com', data: EICAR }] });
  await maildir.deliver(Readable.from([message]), [user]);
  return { user, message };
}

const session = (at: HostPort, user: string, steps: Pop3Step[], tls: { stls?: boolean; ssl?: boolean } = {}): Promise<PoplibSession> =>
  poplibSession({ ...at, user, steps, timeoutS: 30, ...tls });
/** The results after USER and PASS, which must have succeeded. */
const afterLogin = (s: PoplibSession) => {
  assert.equal(s.error, undefined, s.error);
  assert.equal(s.results[1]?.error, undefined, `login failed: ${s.results[1]?.error}`);
  return s.results.slice(2);
};
const certSubject = (s: PoplibSession): string => new X509Certificate(Buffer.from(s.tls!.cert, 'base64')).subject;
/** Dovecot's login line for `user` (it says `TLS` when the gateway's upstream leg was encrypted). */
const dovecotLogin = (user: string) =>
  waitFor(async () => (await readFile(stack.dovecot.logFile, 'utf8')).split('\n').find((l) => l.includes(`Login: user=<${user.toLowerCase()}>`)), `Dovecot login of ${user}`);
const openssl = (args: string[]) =>
  run('openssl', ['s_client', '-brief', ...args], { timeout: 10_000 }).then(
    (r) => `${r.stdout}${r.stderr}`,
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
  );

describe('strip (default): STLS is never offered, all mail is scanned', () => {
  test('CAPA has no STLS, a forced STLS is refused, the session goes on in the clear and is scanned', async () => {
    const { user } = await infectedMailbox('strip');
    const s = await runPoplib({ ...pop3, steps: [{ cmd: 'capa' }, { cmd: 'stls', force: true }, { cmd: 'user', arg: user }, { cmd: 'pass', arg: 'password' }, { cmd: 'retr', n: 1 }, { cmd: 'quit' }] });
    const [capa, stls, , pass, retr] = s.results;
    assert.ok(!('STLS' in capa!.capa!), JSON.stringify(capa!.capa));
    assert.match(stls!.error!, /-ERR STLS not available/);
    assert.equal(s.tls, undefined);
    assert.equal(pass!.error, undefined);
    assert.ok(retr!.body!.toString().includes(NOTICE));
    assertNoEicar(retr!.body!);
  });
});

describe('terminate: the gateway does TLS on both legs and scans in between', () => {
  before(() => setTls('terminate'));

  test('poplib insisting on STLS still gets its EICAR attachment replaced; the certificate is the gateway’s; upstream leg encrypted', async () => {
    const { user } = await infectedMailbox('term');
    const s = await session(pop3, user, [{ cmd: 'capa' }, { cmd: 'retr', n: 1 }, { cmd: 'quit' }], { stls: true });
    const [capa, retr] = afterLogin(s);
    assert.match(s.tls!.version, /^TLSv1\.[23]$/);
    assert.match(certSubject(s), /CN=gateway\.example\.test/, 'the client talks TLS with the gateway');
    assert.ok(!('STLS' in capa!.capa!), 'not offered again inside TLS');
    assert.ok(retr!.body!.toString().includes(NOTICE));
    assertNoEicar(retr!.body!);
    assert.match(await dovecotLogin(user), /\bTLS\b/, 'the upstream leg must be encrypted too');
  });

  test('POP3S (implicit TLS) is scanned the same way', async () => {
    const { user } = await infectedMailbox('pop3s');
    const s = await session(pop3s, user, [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }], { ssl: true });
    const [retr] = afterLogin(s);
    assert.match(s.tls!.version, /^TLSv1\.[23]$/);
    assert.match(certSubject(s), /CN=gateway\.example\.test/);
    assert.ok(retr!.body!.toString().includes(NOTICE));
    assertNoEicar(retr!.body!);
  });

  test('openssl s_client negotiates TLS 1.2+ (STLS and POP3S); a TLS 1.1 client is refused', async () => {
    const stls = `${pop3.host}:${pop3.port}`;
    const implicit = `${pop3s.host}:${pop3s.port}`;
    assert.match(await openssl(['-connect', stls, '-starttls', 'pop3']), /Protocol version: TLSv1\.[23]/);
    assert.match(await openssl(['-connect', implicit]), /Protocol version: TLSv1\.[23]/);
    // The client really offers TLS 1.1 (its default security level alone would not): the gateway says no.
    for (const args of [['-connect', stls, '-starttls', 'pop3'], ['-connect', implicit]]) {
      const old = await openssl([...args, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
      assert.doesNotMatch(old, /Protocol version: TLSv1\.1/);
      assert.match(old, /alert protocol version/, old);
    }
  });

  test('a renewed certificate is served without a restart (STLS and POP3S)', async () => {
    const renewed = await ensureSelfSigned(join(dir, 'renewed'), 'renewed.example.test');
    const live = join(stack.env.MAILWARDEN_STATE_DIR, 'tls');
    await copyFile(renewed.key, join(live, 'gateway-key.pem'));
    await copyFile(renewed.cert, join(live, 'gateway-cert.pem'));
    for (const [at, tls] of [[pop3, { stls: true }], [pop3s, { ssl: true }]] as const) {
      await waitFor(
        async () => {
          const s = await runPoplib({ ...at, steps: [{ cmd: 'quit' }], ...tls });
          return s.tls && /renewed\.example\.test/.test(certSubject(s));
        },
        'the renewed certificate',
        15_000,
        300,
      );
    }
  });

  test('upstream over implicit TLS (POP3_UPSTREAM_TLS=implicit, certificate verified against UPSTREAM_TLS_CA)', async () => {
    const gw = await stack.startService('pop3-gateway', {
      POP3_LISTEN: `127.0.0.1:${await freePort()}`,
      POP3_UPSTREAM: stack.env.POP3S_UPSTREAM,
      POP3_UPSTREAM_TLS: 'implicit',
      UPSTREAM_TLS_CA: stack.env.POP3_UPSTREAM_CA,
    });
    try {
      const { user } = await infectedMailbox('implicit');
      const [retr] = afterLogin(await session(parseHostPort(gw.ready.listen as string), user, [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
      assertNoEicar(retr!.body!);
      assert.match(await dovecotLogin(user), /\bTLS\b/);
    } finally {
      await gw.stop();
    }
  });
});

describe('passthrough: encrypted end to end, relayed unscanned and counted', () => {
  before(() => setTls('passthrough'));

  test('STLS reaches Dovecot; the client sees Dovecot’s certificate; the attachment is untouched; the session is counted', async () => {
    const { user, message } = await infectedMailbox('pass');
    const since = Date.now();
    const s = await session(pop3, user, [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }], { stls: true });
    const [retr] = afterLogin(s);
    assert.match(certSubject(s), /CN=localhost/, 'the TLS session is with Dovecot itself');
    assert.deepEqual(retr!.body, message, 'relayed as stored: the gateway cannot see inside');
    const counted = await waitFor(async () => {
      const m = await bus.jsm.streams.getMessage(Streams.events, { last_by_subj: Subjects.event('tls-unscanned') }).catch(() => undefined);
      const e = m?.json<TlsUnscannedEvent>();
      return e && e.protocol === 'pop3' && Date.parse(e.time) >= since - 1000 ? e : undefined;
    }, 'tls-unscanned event');
    assert.equal(counted.reason, 'passthrough');
    assert.match(gateway.output(), /"event":"pop3\.tls_passthrough"/);
  });

  test('a client that does not ask for TLS is scanned', async () => {
    const { user } = await infectedMailbox('passplain');
    const s = await runPoplib({ ...pop3, steps: [{ cmd: 'capa' }, { cmd: 'user', arg: user }, { cmd: 'pass', arg: 'password' }, { cmd: 'retr', n: 1 }, { cmd: 'quit' }] });
    assert.ok('STLS' in s.results[0]!.capa!, 'offered: Dovecot has STLS');
    assert.ok(s.results[3]!.body!.toString().includes(NOTICE));
    assertNoEicar(s.results[3]!.body!);
  });

  test('when upstream lacks STLS, it is not offered and a forced STLS is refused', async () => {
    const plainDovecot = await startDovecot({ stateDir: join(dir, 'plain-dovecot'), mailRoot: join(dir, 'plain-mail'), tls: false });
    try {
      const gw = await stack.startService('pop3-gateway', { POP3_LISTEN: `127.0.0.1:${await freePort()}`, POP3_UPSTREAM: plainDovecot.address });
      try {
        const at = parseHostPort(gw.ready.listen as string);
        const upstreamCapa = (await runPoplib({ ...parseHostPort(plainDovecot.address), steps: [{ cmd: 'capa' }, { cmd: 'quit' }] })).results[0]!.capa!;
        assert.ok(!('STLS' in upstreamCapa), JSON.stringify(upstreamCapa));
        const s = await runPoplib({ ...at, steps: [{ cmd: 'capa' }, { cmd: 'stls', force: true }, { cmd: 'quit' }] });
        assert.ok(!('STLS' in s.results[0]!.capa!), JSON.stringify(s.results[0]!.capa));
        assert.match(s.results[1]!.error!, /-ERR/);
        assert.equal(s.tls, undefined);
        assert.match(s.results[2]!.resp!, /^\+OK/, 'the session goes on in the clear');
        const insisting = await runPoplib({ ...at, steps: [], stls: true });
        assert.match(insisting.error!, /STLS not supported/);
      } finally {
        await gw.stop();
      }
    } finally {
      await plainDovecot.stop();
    }
  });
});
