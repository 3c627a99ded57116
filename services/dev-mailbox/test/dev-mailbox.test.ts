import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startDevMailbox, type DeliveredMessage, type DevMailbox } from '../src/dev-mailbox.js';
import { MaildirStore, isValidMailboxName } from '../src/maildir.js';

/** A minimal SMTP client: sends lines, collects complete replies. */
class SmtpTalk {
  private buf = '';
  private waiters: Array<() => void> = [];
  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  static open(address: string): Promise<SmtpTalk> {
    const i = address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const s = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) }, () => resolve(new SmtpTalk(s)));
      s.once('error', reject);
    });
  }
  /** Next complete reply (last line has a space after the code). */
  async reply(): Promise<string> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const m = /^(?:\d{3}-.*\r\n)*\d{3} .*\r\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (Date.now() > deadline) throw new Error(`no SMTP reply; buffer: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
  async cmd(line: string): Promise<string> {
    this.sock.write(line + '\r\n');
    return this.reply();
  }
  write(data: string): void {
    this.sock.write(data);
  }
  close(): void {
    this.sock.destroy();
  }
}

describe('dev mailbox SMTP server', () => {
  let dir: string;
  let mailbox: DevMailbox;
  const delivered: DeliveredMessage[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-dev-mailbox-'));
    mailbox = await startDevMailbox({ listen: '127.0.0.1:0', mailRoot: join(dir, 'mail'), onMessage: (m) => delivered.push(m) });
  });
  after(async () => {
    await mailbox.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on a free port and advertises no AUTH and no STARTTLS', async () => {
    assert.match(mailbox.address, /^127\.0\.0\.1:\d+$/);
    const c = await SmtpTalk.open(mailbox.address);
    assert.match(await c.reply(), /^220 /);
    const ehlo = await c.cmd('EHLO test.example');
    assert.match(ehlo, /^250-/);
    assert.match(ehlo, /ENHANCEDSTATUSCODES/);
    assert.doesNotMatch(ehlo, /STARTTLS|AUTH/);
    c.close();
  });

  it('rejects reject… recipients at RCPT with 550 5.1.1, and unsafe mailbox names with 553', async () => {
    const c = await SmtpTalk.open(mailbox.address);
    await c.reply();
    await c.cmd('EHLO test.example');
    assert.match(await c.cmd('MAIL FROM:<a@example.test>'), /^250 /);
    assert.equal(await c.cmd('RCPT TO:<reject@example.test>'), '550 5.1.1 <reject@example.test>: Recipient address rejected: User unknown');
    assert.match(await c.cmd('RCPT TO:<Reject-Me@example.test>'), /^550 5\.1\.1 /);
    assert.match(await c.cmd('RCPT TO:<tempfail@example.test>'), /^450 4\.2\.1 /);
    assert.match(await c.cmd('RCPT TO:<a/b@example.test>'), /^553 /);
    assert.match(await c.cmd('RCPT TO:<rejected-not@example.test>'), /^550 /, 'any local part starting with reject');
    assert.match(await c.cmd('RCPT TO:<user@example.test>'), /^250 /);
    c.close();
  });

  it('writes each message, exactly as received, to new/ of every recipient (lower-cased local part)', async () => {
    const c = await SmtpTalk.open(mailbox.address);
    await c.reply();
    await c.cmd('EHLO test.example');
    await c.cmd('MAIL FROM:<sender@example.test>');
    await c.cmd('RCPT TO:<Carol@example.test>');
    await c.cmd('RCPT TO:<dave@other.test>');
    await c.cmd('RCPT TO:<carol@elsewhere.test>'); // same mailbox: delivered once
    assert.match(await c.cmd('DATA'), /^354 /);
    c.write('Subject: t\r\n\r\nline\r\n..dot-stuffed\r\n.\r\n');
    assert.match(await c.reply(), /^250 2\.6\.0 OK: queued as \S+/);
    c.close();
    const expected = 'Subject: t\r\n\r\nline\r\n.dot-stuffed\r\n';
    for (const user of ['carol', 'dave']) {
      const files = await readdir(join(dir, 'mail', user, 'new'));
      assert.equal(files.length, 1);
      assert.equal(await readFile(join(dir, 'mail', user, 'new', files[0]!), 'utf8'), expected);
      assert.deepEqual(await readdir(join(dir, 'mail', user, 'tmp')), [], 'nothing left in tmp/');
    }
    const last = delivered.at(-1)!;
    assert.equal(last.mailFrom, 'sender@example.test');
    assert.equal(last.size, Buffer.byteLength(expected));
    assert.equal(last.files.length, 2);
  });
});

describe('MaildirStore', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-maildir-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('accepts plain local parts and refuses path tricks', () => {
    for (const ok of ['user', 'a.b', 'x+tag', 'under_score', 'd-ash']) assert.ok(isValidMailboxName(ok), ok);
    for (const bad of ['', '.', '..', '../x', 'a/b', '.hidden', 'UPPER', 'sp ace', 'x'.repeat(200)]) assert.ok(!isValidMailboxName(bad), bad);
  });

  it('leaves nothing behind when the message stream fails midway', async () => {
    const store = new MaildirStore(join(dir, 'm'), null);
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024, 'a'));
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(store.deliver(failing, ['u']), /client went away/);
    assert.deepEqual(await readdir(join(dir, 'm', 'u', 'tmp')), []);
    assert.deepEqual(await readdir(join(dir, 'm', 'u', 'new')), []);
  });

  it('gives files to uid/gid 65534 when running as root', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('not root');
    const store = new MaildirStore(join(dir, 'owned'));
    const d = await store.deliver(Readable.from([Buffer.from('x\r\n')]), ['u']);
    assert.equal((await stat(d.files[0]!)).uid, 65534);
    assert.equal((await stat(join(dir, 'owned', 'u'))).uid, 65534);
  });
});
