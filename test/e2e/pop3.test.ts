/**
 * The POP3 gateway against the real stack: Dovecot as upstream (over the dev mailbox's maildirs),
 * NATS, S3 (s3rver), clamd, the scanner and reassembler services, and Python's poplib as the
 * client. Messages go into the maildir directly (exact bytes, owned by uid 65534) or by SMTP to
 * the dev mailbox.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_POLICY, type Policy } from '@mailwarden/contracts';
import { PolicyStore, connectBus, type Bus } from '@mailwarden/bus';
import { MaildirStore } from '@mailwarden/dev-mailbox';
import { freePort, startStack, type LocalStack, type RunningService } from '@mailwarden/local-stack';
import {
  EICAR,
  buildZip,
  composeMessage,
  poplibSession,
  runPoplib,
  sendWithSmtplib,
  waitFor,
  type Pop3Step,
  type PoplibSession,
} from '@mailwarden/testkit';
import { waitForDelivery, uniqueUser } from '../support/mailbox.js';

const NOTICE = 'Mailwarden removed the attachment';
const hostPort = (a: string) => {
  const [host, port] = a.split(':');
  return { host: host!, port: Number(port) };
};

describe('pop3-gateway against Dovecot and the real pipeline', { timeout: 600_000 }, () => {
  let dir: string;
  let stack: LocalStack;
  let gateway: RunningService;
  let reassembler: RunningService;
  let bus: Bus;
  let policies: PolicyStore;
  let maildir: MaildirStore;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-pop3-e2e-'));
    stack = await startStack({ stateDir: dir });
    await stack.startService('scanner');
    reassembler = await stack.startService('reassembler');
    gateway = await stack.startService('pop3-gateway');
    bus = await connectBus({ ...stack.natsClient(), name: 'pop3-e2e' });
    policies = await PolicyStore.open(bus.kvm);
    maildir = new MaildirStore(stack.env.DEV_MAILBOX_DIR);
  });

  after(async () => {
    await bus?.nc.close();
    await stack?.stop();
    if (dir && !process.env.MW_KEEP_STATE) await rm(dir, { recursive: true, force: true });
  });

  const deliver = (user: string, message: Buffer) => maildir.deliver(Readable.from([message]), [user]);
  const viaGateway = (user: string, steps: Pop3Step[], password = 'password', gw = stack.env.POP3_LISTEN): Promise<PoplibSession> =>
    poplibSession({ ...hostPort(gw), user, password, steps });
  const direct = (user: string, steps: Pop3Step[]): Promise<PoplibSession> =>
    poplibSession({ ...hostPort(stack.env.POP3_UPSTREAM), user, steps });
  /** Results after USER and PASS. */
  const steps = (s: PoplibSession) => {
    assert.equal(s.error, undefined, s.error);
    assert.equal(s.results[1]?.error, undefined, `login failed: ${s.results[1]?.error}`);
    return s.results.slice(2);
  };

  /** The JSON lines the pop3 gateway (this stack's, this pid) logged so far. */
  async function gatewayLog(): Promise<Record<string, unknown>[]> {
    const lines = (await readFile(gateway.logFile, 'utf8')).split('\n').filter((l) => l.startsWith('{'));
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.pid === gateway.pid);
  }
  const gatewayEvents = async (event: string): Promise<number> => (await gatewayLog()).filter((e) => e.event === event).length;

  /** Sets the policy and waits until the reassembler and the gateway run it. */
  async function setPolicy(change: (p: Policy) => Policy): Promise<void> {
    const current = await policies.get();
    const doc = await policies.put(change(structuredClone(current.policy)), { changedBy: 'pop3-e2e' });
    for (const svc of [reassembler, gateway]) {
      await waitFor(async () => {
        const log = await readFile(svc.logFile, 'utf8');
        return log.split('\n').some((l) => l.includes('"event":"policy.applied"') && l.includes(`"version":${doc.version}`) && l.includes(`"pid":${svc.pid}`));
      }, `policy version ${doc.version} in ${svc.name}`);
    }
  }

  it('a clean message comes through byte-identical, with its exact size', async () => {
    const user = uniqueUser('clean');
    const message = composeMessage({
      to: `${user}@example.test`,
      text: 'Hello,\n.a line starting with a dot\n..and two\n',
      attachments: [{ filename: 'report.txt', contentType: 'text/plain', data: Buffer.from('quarterly numbers\n'.repeat(200)) }],
    });
    await deliver(user, message);
    const [retr, again, quit] = steps(await viaGateway(user, [{ cmd: 'retr', n: 1 }, { cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
    assert.equal(retr!.error, undefined);
    assert.equal(retr!.resp, `+OK ${message.length} octets`);
    assert.deepEqual(retr!.body, message);
    assert.deepEqual(again!.body, message);
    assert.match(quit!.resp!, /^\+OK/);
  });

  it('an EICAR attachment sent by SMTP is replaced by the notice; TOP never shows it', async () => {
    const user = uniqueUser('eicar');
    const message = composeMessage({ to: `${user}@example.test`, attachments: [{ filename: 'eicar.com', data: EICAR }] });
    const sent = await sendWithSmtplib({ ...hostPort(stack.env.SMTP_UPSTREAM), to: [`${user}@example.test`], message });
    assert.equal(sent.data?.[0], 250, JSON.stringify(sent));
    await waitForDelivery(stack.env.DEV_MAILBOX_DIR, user);
    const eicarB64 = EICAR.toString('base64').slice(0, 60);

    // Upstream's own TOP shows the attachment: the check below means something.
    const [upstreamTop] = steps(await direct(user, [{ cmd: 'top', n: 1, lines: 1000 }]));
    assert.ok(upstreamTop!.body!.toString('latin1').includes(eicarB64));

    const [top0, top5, topAll, retr] = steps(
      await viaGateway(user, [
        { cmd: 'top', n: 1, lines: 0 },
        { cmd: 'top', n: 1, lines: 5 },
        { cmd: 'top', n: 1, lines: 1000 },
        { cmd: 'retr', n: 1 },
        { cmd: 'quit' },
      ]),
    );
    for (const r of [top0, top5, topAll, retr]) {
      assert.equal(r!.error, undefined);
      const text = r!.body!.toString('latin1');
      assert.ok(!text.includes(eicarB64), 'EICAR (base64) must not be shown');
      assert.ok(!text.includes('EICAR-STANDARD'), 'EICAR must not be shown');
    }
    const rebuilt = retr!.body!;
    assert.equal(retr!.resp, `+OK ${rebuilt.length} octets`);
    assert.ok(rebuilt.toString().includes(NOTICE));
    assert.ok(rebuilt.toString().includes('eicar.com'));
    assert.ok(topAll!.body!.toString().includes(NOTICE));
    assert.match(top0!.body!.toString(), /\r\n\r\n$/);
    assert.ok(top0!.body!.toString().startsWith('From: sender@example.org\r\n'));
    // The message on the server is untouched.
    const [upstreamRetr] = steps(await direct(user, [{ cmd: 'retr', n: 1 }]));
    assert.deepEqual(upstreamRetr!.body, message);
  });

  it('STAT and LIST before RETR give the octets RETR delivers; a later session has them from the size memory, unscanned', async () => {
    const user = uniqueUser('sizes');
    const infected = composeMessage({ to: `${user}@example.test`, subject: 'infected', text: 'see attached\n', attachments: [{ filename: 'eicar.com', data: EICAR }] });
    const clean = composeMessage({ to: `${user}@example.test`, subject: 'clean', text: 'Hello,\n.a line starting with a dot\n' });
    await deliver(user, infected);
    await deliver(user, clean);
    const scannedBefore = await gatewayEvents('pop3.scanned');

    const [stat, list, list1, list2, retr1, retr2, quit] = steps(
      await viaGateway(user, [{ cmd: 'stat' }, { cmd: 'list' }, { cmd: 'list', n: 1 }, { cmd: 'list', n: 2 }, { cmd: 'retr', n: 1 }, { cmd: 'retr', n: 2 }, { cmd: 'quit' }]),
    );
    for (const r of [stat, list, list1, list2, retr1, retr2, quit]) assert.equal(r!.error, undefined, r!.error);
    const delivered = [retr1!.body!, retr2!.body!];
    assert.ok(delivered[0]!.toString().includes(NOTICE), 'message 1 was rebuilt');
    assert.ok(!delivered[0]!.toString().includes('EICAR-STANDARD'));
    assert.notEqual(delivered[0]!.length, infected.length, 'so its size changed');
    assert.deepEqual(delivered[1], clean);
    const octets = delivered.map((b) => b.length);
    assert.equal(stat!.count, 2);
    assert.equal(stat!.size, octets[0]! + octets[1]!, 'STAT: the octets RETR delivers');
    assert.deepEqual(list!.lines, [`1 ${octets[0]}`, `2 ${octets[1]}`], 'LIST');
    assert.equal(list1!.resp, `+OK 1 ${octets[0]}`, 'LIST 1');
    assert.equal(list2!.resp, `+OK 2 ${octets[1]}`, 'LIST 2');
    assert.equal(retr1!.resp, `+OK ${octets[0]} octets`);
    assert.equal((await gatewayEvents('pop3.scanned')) - scannedBefore, 2, 'each message scanned once: STAT scanned ahead, RETR used those copies');

    // Upstream still has the original, unseen (the look-ahead used TOP; the client's RETR reached upstream).
    const [upstreamList] = steps(await direct(user, [{ cmd: 'list' }, { cmd: 'quit' }]));
    assert.deepEqual(upstreamList!.lines, [`1 ${infected.length}`, `2 ${clean.length}`]);

    const scannedAfterFirst = await gatewayEvents('pop3.scanned');
    const [stat2, list2All, list2One] = steps(await viaGateway(user, [{ cmd: 'stat' }, { cmd: 'list' }, { cmd: 'list', n: 1 }, { cmd: 'quit' }]));
    assert.equal(stat2!.size, stat!.size);
    assert.deepEqual(list2All!.lines, list!.lines);
    assert.equal(list2One!.resp, list1!.resp);
    assert.equal(await gatewayEvents('pop3.scanned'), scannedAfterFirst, 'nothing scanned: the sizes came from mw-pop3-sizes');
    const learned = (await gatewayLog()).filter((e) => e.event === 'pop3.sizes_learned' && e.recalled === 2);
    assert.ok(learned.length >= 1, 'the second session recalled both sizes');
  });

  it('an encrypted zip follows the unscannable action: remove, then deliver', async () => {
    const zip = buildZip([{ name: 'secret.txt', data: Buffer.from('the plans\n'.repeat(50)), password: 'hunter2' }]);
    const user = uniqueUser('zip');
    const message = composeMessage({ to: `${user}@example.test`, attachments: [{ filename: 'secret.zip', contentType: 'application/zip', data: zip }] });
    await deliver(user, message);
    try {
      await setPolicy((p) => ({ ...p, unscannable: { action: 'remove' } }));
      const [removed] = steps(await viaGateway(user, [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
      assert.equal(removed!.error, undefined);
      assert.ok(removed!.body!.toString().includes(NOTICE));
      assert.ok(removed!.body!.toString().includes('secret.zip'));
      assert.ok(!removed!.body!.includes(zip.toString('base64').slice(0, 60)));

      await setPolicy((p) => ({ ...p, unscannable: { action: 'deliver' } }));
      const [delivered] = steps(await viaGateway(user, [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
      assert.equal(delivered!.error, undefined);
      assert.deepEqual(delivered!.body, message);
    } finally {
      await setPolicy((p) => ({ ...p, unscannable: { action: DEFAULT_POLICY.unscannable.action } }));
    }
  });

  it('DELE takes effect after QUIT, not after a dropped connection', async () => {
    const user = uniqueUser('dele');
    const first = composeMessage({ to: `${user}@example.test`, subject: 'first' });
    const second = composeMessage({ to: `${user}@example.test`, subject: 'second' });
    await deliver(user, first);
    await deliver(user, second);

    const [dele, dropped] = steps(await viaGateway(user, [{ cmd: 'dele', n: 1 }, { cmd: 'drop' }]));
    assert.match(dele!.resp!, /^\+OK/);
    assert.equal(dropped!.error, undefined);
    // Dovecot notices the dropped proxy leg on its own time; poll until the mailbox is free again.
    const stat = await waitFor(async () => {
      const [s] = (await viaGateway(user, [{ cmd: 'stat' }, { cmd: 'quit' }])).results.slice(2);
      return s?.count;
    }, 'a session after the dropped one');
    assert.equal(stat, 2);

    const [dele2, retrDeleted, list, quit] = steps(await viaGateway(user, [{ cmd: 'dele', n: 1 }, { cmd: 'retr', n: 1 }, { cmd: 'list' }, { cmd: 'quit' }]));
    assert.match(dele2!.resp!, /^\+OK/);
    assert.match(retrDeleted!.error!, /-ERR/);
    assert.deepEqual(list!.lines!.map((l) => l.split(' ')[0]), ['2']);
    assert.match(quit!.resp!, /^\+OK/);

    const [after, retr] = steps(await direct(user, [{ cmd: 'stat' }, { cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
    assert.equal(after!.count, 1);
    assert.deepEqual(retr!.body, second);
  });

  it('upstream authentication failure passes through; CAPA is filtered; STLS is refused', async () => {
    const user = uniqueUser('auth');
    const wrong = await viaGateway(user, [], 'not-the-password');
    const upstreamWrong = await poplibSession({ ...hostPort(stack.env.POP3_UPSTREAM), user, password: 'not-the-password', steps: [] });
    assert.match(wrong.results[1]!.error!, /-ERR/);
    assert.equal(wrong.results[1]!.error, upstreamWrong.results[1]!.error);

    const upstreamCapa = (await runPoplib({ ...hostPort(stack.env.POP3_UPSTREAM), steps: [{ cmd: 'capa' }, { cmd: 'quit' }] })).results[0]!.capa!;
    assert.ok('STLS' in upstreamCapa && 'PIPELINING' in upstreamCapa, JSON.stringify(upstreamCapa));
    const s = await runPoplib({ ...hostPort(stack.env.POP3_LISTEN), steps: [{ cmd: 'capa' }, { cmd: 'stls' }, { cmd: 'quit' }] });
    const upstreamWelcome = (await runPoplib({ ...hostPort(stack.env.POP3_UPSTREAM), steps: [{ cmd: 'quit' }] })).welcome;
    assert.equal(s.welcome?.replace(/<[^>]*>/, '<>'), upstreamWelcome?.replace(/<[^>]*>/, '<>'));
    const capa = s.results[0]!.capa!;
    assert.ok(!('STLS' in capa) && !('PIPELINING' in capa), JSON.stringify(capa));
    for (const tag of ['TOP', 'UIDL', 'USER', 'SASL']) assert.ok(tag in capa, `${tag} missing: ${JSON.stringify(capa)}`);
    assert.match(s.results[1]!.error!, /-ERR/);
  });

  it('AUTH PLAIN: the SASL exchange with Dovecot is relayed', async () => {
    const user = uniqueUser('sasl');
    await deliver(user, composeMessage({ to: `${user}@example.test` }));
    const replies = await lineExchange(hostPort(stack.env.POP3_LISTEN), [
      'AUTH PLAIN',
      Buffer.from(`\0${user}\0password`).toString('base64'),
      'STAT',
      'QUIT',
    ]);
    assert.match(replies[0]!, /^\+OK/); // greeting
    assert.match(replies[1]!, /^\+ ?$/); // SASL continuation
    assert.match(replies[2]!, /^\+OK/);
    assert.match(replies[3]!, /^\+OK 1 \d+$/);
  });

  it('POP3 scanning switched off by policy: RETR is relayed unscanned; switched on again: scanned (live)', async () => {
    const user = uniqueUser('nopop3');
    const message = composeMessage({ to: `${user}@example.test`, attachments: [{ filename: 'eicar.com', data: EICAR }] });
    await deliver(user, message);
    try {
      await setPolicy((p) => ({ ...p, antivirus: { ...p.antivirus, pop3: false } }));
      const [raw] = steps(await viaGateway(user, [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
      assert.equal(raw!.resp, `+OK ${message.length} octets`);
      assert.deepEqual(raw!.body, message);
    } finally {
      await setPolicy((p) => ({ ...p, antivirus: { ...p.antivirus, pop3: true } }));
    }
    const [scanned] = steps(await viaGateway(user, [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
    assert.ok(scanned!.body!.toString().includes(NOTICE));
  });

  it('a 20 MB message streams through with bounded gateway memory', async () => {
    const user = uniqueUser('big');
    const message = composeMessage({ to: `${user}@example.test`, attachments: [{ filename: 'big.bin', data: randomBytes(15 * 1024 * 1024) }] });
    assert.ok(message.length > 20 * 1024 * 1024);
    await deliver(user, message);
    const before = await memory(gateway.pid);
    const [retr] = steps(await viaGateway(user, [{ cmd: 'retr', n: 1, digest: true }, { cmd: 'quit' }]));
    const after = await memory(gateway.pid);
    assert.equal(retr!.error, undefined);
    assert.equal(retr!.resp, `+OK ${message.length} octets`);
    assert.equal(retr!.size, message.length);
    assert.equal(retr!.sha256, createHash('sha256').update(message).digest('hex'));
    // Measured here: streaming raises the peak by 50–90 MB (the S3 client's 5 MiB part buffers for
    // two uploads and a download, plus Buffers awaiting GC), the same for 20 or 40 MB; buffering the
    // whole message in the gateway raised it by ~170 MB. The bound sits between, generously.
    console.log(`pop3-gateway VmHWM ${before.hwm} → ${after.hwm} MB for a ${Math.round(message.length / 1048576)} MB message`);
    assert.ok(after.hwm - before.hwm < 120, `peak memory grew by ${after.hwm - before.hwm} MB`);
  });

  it('scanning down: -ERR [SYS/TEMP] within the deadline, the session stays usable, the message stays on the server', async () => {
    const user = uniqueUser('down');
    const message = composeMessage({ to: `${user}@example.test`, attachments: [{ filename: 'x.txt', data: Buffer.from('hello') }] });
    await deliver(user, message);
    const listen = `127.0.0.1:${await freePort()}`;
    await stack.startService('pop3-gateway', { POP3_LISTEN: listen, SCAN_TIMEOUT_MS: '3000' });
    await stack.services.find((s) => s.name === 'scanner')!.stop();

    const started = Date.now();
    const [retr, top, noop, stat, quit] = steps(
      await viaGateway(user, [{ cmd: 'retr', n: 1 }, { cmd: 'top', n: 1, lines: 0 }, { cmd: 'noop' }, { cmd: 'stat' }, { cmd: 'quit' }], 'password', listen),
    );
    const elapsed = Date.now() - started;
    assert.match(retr!.error!, /-ERR \[SYS\/TEMP\] .*\(ref [a-z0-9]+\)/);
    assert.match(top!.error!, /-ERR \[SYS\/TEMP\]/);
    assert.match(noop!.resp!, /^\+OK/);
    assert.equal(stat!.count, 1);
    assert.match(quit!.resp!, /^\+OK/);
    assert.ok(elapsed < 20_000, `took ${elapsed} ms`);

    const [after, original] = steps(await direct(user, [{ cmd: 'stat' }, { cmd: 'retr', n: 1 }, { cmd: 'quit' }]));
    assert.equal(after!.count, 1);
    assert.deepEqual(original!.body, message);
    const files = await readdir(join(stack.env.DEV_MAILBOX_DIR, user, 'cur')).catch(() => []);
    const fresh = await readdir(join(stack.env.DEV_MAILBOX_DIR, user, 'new')).catch(() => []);
    assert.equal(files.length + fresh.length, 1);
  });
});

/** Sends `lines` one at a time on a fresh connection; the greeting and one reply line per line sent. */
async function lineExchange(address: { host: string; port: number }, lines: string[]): Promise<string[]> {
  const socket = connect(address);
  socket.setTimeout(30_000, () => socket.destroy(new Error('no reply within 30 s')));
  const replies: string[] = [];
  let buffer = '';
  let wake: (() => void) | undefined;
  socket.on('data', (c: Buffer) => {
    buffer += c.toString('latin1');
    wake?.();
  });
  const closed = new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const nl = buffer.indexOf('\r\n');
      if (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        return line;
      }
      await Promise.race([new Promise<void>((r) => (wake = r)), closed.then(() => Promise.reject(new Error('connection closed')))]);
    }
  };
  replies.push(await nextLine());
  for (const line of lines) {
    socket.write(`${line}\r\n`);
    replies.push(await nextLine());
  }
  socket.destroy();
  return replies;
}

/** VmHWM (peak) and VmRSS of a process, in MB. */
async function memory(pid: number): Promise<{ hwm: number; rss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwm: Math.round(kb('VmHWM') / 1024), rss: Math.round(kb('VmRSS') / 1024) };
}
