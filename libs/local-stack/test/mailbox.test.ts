/**
 * The local upstream mailbox end to end: Python's smtplib → dev mailbox (SMTP) → maildir →
 * Dovecot → Python's poplib, byte for byte; recipients refused at RCPT; STLS and pop3s.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDevMailbox, type DevMailbox } from '@mailwarden/dev-mailbox';
import { MAIL_UID, startDovecot, type RunningDovecot } from '../src/dovecot.js';
import { hostPort, needBinaries, needRoot, python, tempStateDir, PYTHON } from './helpers.js';

const SEND = String.raw`
import json, smtplib, sys
host, port, sender, *rcpts = sys.argv[1:]
msg = sys.stdin.buffer.read()
out = {}
try:
    with smtplib.SMTP(host, int(port), timeout=20) as s:
        refused = s.sendmail(sender, rcpts, msg)
        out = {"ok": True, "refused": {k: [v[0], v[1].decode()] for k, v in refused.items()}}
except smtplib.SMTPRecipientsRefused as e:
    out = {"ok": False, "refused": {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}}
print(json.dumps(out))
`;

const RETRIEVE = String.raw`
import base64, json, poplib, ssl, sys
host, port, user, password, mode, cafile = sys.argv[1:]
ctx = None
if mode != "plain":
    ctx = ssl.create_default_context(cafile=cafile)
if mode == "ssl":
    p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=20)
else:
    p = poplib.POP3(host, int(port), timeout=20)
    if mode == "stls":
        p.stls(ctx)
try:
    p.user(user)
    p.pass_(password)
except poplib.error_proto as e:
    print(json.dumps({"error": e.args[0].decode()}))
    sys.exit(0)
count, size = p.stat()
msgs = []
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    msgs.append(base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode())
p.quit()
print(json.dumps({"count": count, "messages": msgs}))
`;

interface SendResult {
  ok: boolean;
  refused: Record<string, [number, string]>;
}

describe('dev mailbox + Dovecot POP3', () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let dovecot: RunningDovecot | undefined;
  let mailbox: DevMailbox | undefined;
  let mailRoot: string;

  before(async () => {
    state = await tempStateDir();
    mailRoot = join(state.dir, 'mail');
  });
  after(async () => {
    await mailbox?.stop();
    await dovecot?.stop();
    await state.cleanup();
  });

  async function ready(t: import('node:test').TestContext): Promise<boolean> {
    if (!needRoot(t) || !needBinaries(t, '/usr/sbin/dovecot', '/usr/lib/dovecot/pop3', PYTHON, '/usr/bin/openssl')) return false;
    dovecot ??= await startDovecot({ stateDir: state.dir, mailRoot });
    mailbox ??= await startDevMailbox({ listen: '127.0.0.1:0', mailRoot });
    return true;
  }

  async function send(from: string, to: string[], message: Buffer): Promise<SendResult> {
    const [host, port] = hostPort(mailbox!.address);
    const r = await python(SEND, [host, port, from, ...to], message);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.toString()) as SendResult;
  }

  async function retrieve(user: string, opts: { password?: string; mode?: 'plain' | 'stls' | 'ssl' } = {}) {
    const mode = opts.mode ?? 'plain';
    const address = mode === 'ssl' ? dovecot!.pop3sAddress! : dovecot!.address;
    const [host, port] = hostPort(address);
    const r = await python(RETRIEVE, [host, port, user, opts.password ?? 'password', mode, dovecot!.certFile ?? '']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.toString()) as { error?: string; count?: number; messages?: string[] };
    return { ...out, messages: (out.messages ?? []).map((m) => Buffer.from(m, 'base64')) };
  }

  function message(subject: string, body: string): Buffer {
    return Buffer.from(
      [
        'From: Sender <sender@example.test>',
        'To: User <user@example.test>',
        `Subject: ${subject}`,
        `Message-ID: <${randomBytes(8).toString('hex')}@example.test>`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        body,
        '',
      ].join('\r\n'),
    );
  }

  it('delivers a message to each recipient maildir and serves it over POP3 byte-identical', async (t) => {
    if (!(await ready(t))) return;
    // Dot lines exercise SMTP and POP3 dot-stuffing; 8-bit text the 8BITMIME path.
    const msg = message('round trip', 'Hello,\r\n.\r\n..leading dots\r\n.\r\nGrüße — ünïcödé\r\nbye');
    const res = await send('sender@example.test', ['user@example.test', 'Alice@Example.test'], msg);
    assert.deepEqual(res, { ok: true, refused: {} });

    for (const user of ['user', 'alice']) {
      const files = await readdir(join(mailRoot, user, 'new'));
      assert.equal(files.length, 1, `${user}: one file in new/`);
      const path = join(mailRoot, user, 'new', files[0]!);
      assert.deepEqual(await readFile(path), msg, `${user}: maildir file is the message as sent`);
      assert.equal((await stat(path)).uid, MAIL_UID, 'mail belongs to uid 65534 (Dovecot refuses root-owned mail)');
    }
    const user = await retrieve('user');
    assert.equal(user.count, 1);
    assert.deepEqual(user.messages[0], msg);
    // Any user name logs in with the default password; the domain part is ignored.
    const alice = await retrieve('alice@example.test');
    assert.deepEqual(alice.messages, [msg]);
  });

  it('streams a 3 MB message through unchanged', async (t) => {
    if (!(await ready(t))) return;
    const lines: string[] = [];
    for (let n = 0; n < 3 * 1024 * 1024; n += 78) lines.push(randomBytes(57).toString('base64'));
    const msg = message('big', lines.join('\r\n'));
    const res = await send('sender@example.test', ['big@example.test'], msg);
    assert.equal(res.ok, true);
    const got = await retrieve('big');
    assert.equal(got.count, 1);
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    assert.equal(digest(got.messages[0]!), digest(msg));
  });

  it('refuses reject… recipients at RCPT with 550 5.1.1, and still delivers to the others', async (t) => {
    if (!(await ready(t))) return;
    const msg = message('partly refused', 'hello');
    const only = await send('sender@example.test', ['reject@example.test'], msg);
    assert.equal(only.ok, false);
    assert.deepEqual(only.refused['reject@example.test'], [550, '5.1.1 <reject@example.test>: Recipient address rejected: User unknown']);

    const mixed = await send('sender@example.test', ['rejected.user@example.test', 'bob@example.test'], msg);
    assert.equal(mixed.ok, true);
    assert.deepEqual(Object.keys(mixed.refused), ['rejected.user@example.test']);
    assert.equal(mixed.refused['rejected.user@example.test']![0], 550);
    assert.deepEqual((await retrieve('bob')).messages, [msg]);
  });

  it('offers STLS and pop3s with its self-signed certificate', async (t) => {
    if (!(await ready(t))) return;
    assert.ok(dovecot!.pop3sAddress && dovecot!.certFile);
    const msg = message('tls', 'over TLS');
    await send('sender@example.test', ['tls@example.test'], msg);
    assert.deepEqual((await retrieve('tls', { mode: 'stls' })).messages, [msg]);
    assert.deepEqual((await retrieve('tls', { mode: 'ssl' })).messages, [msg]);
  });

  it('refuses a wrong password', async (t) => {
    if (!(await ready(t))) return;
    const r = await retrieve('user', { password: 'wrong' });
    assert.match(r.error ?? '', /^-ERR \[AUTH\]/);
  });
});
