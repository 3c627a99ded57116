// Queue mode end to end on the real stack (issue 14): the gateway answers 250 once the message is
// durable (raw.eml in S3, job acked by JetStream); scanner, reassembler and its delivery worker do
// the rest behind the queue. The upstream is a dev mailbox of the test's own, so it can go down.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startDevMailbox, type DevMailbox } from '@mailwarden/dev-mailbox';
import { freePort, type RunningService } from '@mailwarden/local-stack';
import { DeliveryError, deliverMessage } from '@mailwarden/smtp-client';
import { DeliveryRecords } from '@mailwarden/bus';
import { EICAR, composeMessage, sendWithSmtplib, waitFor } from '@mailwarden/testkit';
import { startGatewayStack, type GatewayStack } from '../support/gateway-stack.js';
import { delivered, uniqueUser, waitForDelivery } from '../support/mailbox.js';
import { assertNoEicar, assertNotice } from '../support/assertions.js';

let gw: GatewayStack;
let upstream: DevMailbox | undefined;
let upstreamAddress: string;
let mailRoot: string;

const startUpstream = async () => {
  upstream = await startDevMailbox({ listen: upstreamAddress, mailRoot });
};
const stopUpstream = async () => {
  await upstream?.stop();
  upstream = undefined;
};

before(async () => {
  mailRoot = await mkdtemp(join(tmpdir(), 'mw-queue-upstream-'));
  upstreamAddress = `127.0.0.1:${await freePort()}`;
  await startUpstream();
  gw = await startGatewayStack({
    scanners: 1,
    reassemblers: 2,
    config: true,
    env: {
      SMTP_DELIVERY: 'queue',
      SMTP_UPSTREAM: upstreamAddress,
      // Retries within the test's patience (defaults: 1 min doubling to 1 h).
      QUEUE_RETRY_MIN_MS: '500',
      QUEUE_RETRY_MAX_MS: '2000',
      QUEUE_RCPT_VERIFY_CACHE_MS: '0',
    },
  });
});
after(async () => {
  if (process.env.MW_DEBUG_QUEUE) {
    const { readFile } = await import('node:fs/promises');
    for (const s of Object.values(gw.services).flat()) console.log(`==== ${s.name}\n${s.output().slice(-6000)}`);
    console.log((await readFile(join(gw.stack.stateDir, 'logs', 'nats.log'), 'utf8')).split('\n').filter((l) => /Violation|rror/.test(l)).slice(-30).join('\n'));
  }
  await gw?.stop();
  await stopUpstream();
  await rm(mailRoot, { recursive: true, force: true });
});

function send(to: string[], message: Buffer, from = 'sender@example.org') {
  return sendWithSmtplib({ ...gw.smtp, from, to, message });
}

const refOf = (reply: string | undefined) => /queued as ([a-z0-9]+)/.exec(reply ?? '')?.[1];

describe('queue mode', { concurrency: false }, () => {
  test('250 before the message is scanned; it arrives scanned and rebuilt', async () => {
    // No scanner: the 250 cannot have waited for a verdict.
    const [scanner] = gw.services.scanner!;
    await scanner!.stop();
    gw.services.scanner = [];
    const user = uniqueUser('qeicar');
    const message = composeMessage({ text: 'see attached\r\n', attachments: [{ filename: 'eicar.com', data: EICAR }] });
    const r = await send([`${user}@example.test`], message);
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    assert.ok(refOf(r.data?.[1]), `the 250 quotes the reference: ${r.data?.[1]}`);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal((await delivered(mailRoot, user)).length, 0, 'nothing is delivered before it is scanned');
    gw.services.scanner!.push(await gw.stack.startService('scanner'));
    const [got] = await waitForDelivery(mailRoot, user);
    assertNoEicar(got!);
    assertNotice(got!, 'eicar.com', /EICAR/);
    assert.ok(got!.toString().includes('see attached'));
    // The gateway accepted it for relaying: its trace line is first (RFC 5321 4.4).
    assert.match(got!.toString('latin1'), /^Received: from client\.example\.org \(.*\[127\.0\.0\.1\]\)\r\n\tby mailwarden\.local \(Mailwarden\) with ESMTP/);
  });

  test('an unknown recipient is refused at RCPT time (checked against upstream)', async () => {
    const r = await send([`reject-${uniqueUser('q')}@example.test`], composeMessage());
    assert.equal(r.rcpt[0]?.[0], 550, JSON.stringify(r));
    assert.equal(r.data, undefined);
  });

  test('upstream down: accepted, queued, delivered when it is back; a 550 then bounces with a DSN', async () => {
    await stopUpstream();
    const user = uniqueUser('qdown');
    const sender = uniqueUser('qsender');
    const unknown = `reject-${uniqueUser('q')}@example.test`;
    const messages = [0, 1, 2].map((i) => composeMessage({ subject: `queued ${i}`, text: `queued message ${i}\r\n` }));
    for (const m of messages) {
      const r = await send([`${user}@example.test`], m);
      assert.equal(r.data?.[0], 250, JSON.stringify(r));
    }
    // Accepted unverified while upstream is down; upstream's 550 comes at delivery.
    const mixed = await send([`${user}@example.test`, unknown], composeMessage({ subject: 'to two' }), `${sender}@example.test`);
    assert.equal(mixed.data?.[0], 250, JSON.stringify(mixed));
    const ref = refOf(mixed.data?.[1])!;
    // Attempts fail and are deferred while upstream is away; the admin API shows the queue.
    await waitFor(() => gw.services.reassembler!.some((s) => s.output().includes('"event":"delivery.deferred"')), 'a deferred delivery', 60_000);
    const api = (path: string, method = 'GET') => fetch(`${gw.configUrl}/api/v1${path}`, { method, headers: { authorization: `Bearer ${gw.stack.env.ADMIN_TOKEN}` } });
    const queued = await waitFor(async () => {
      const q = (await (await api('/queue')).json()) as { count: number; upstreams: { route: string; failing: number; lastError?: string }[]; messages: { ref: string }[] };
      return q.count >= 4 && q.upstreams[0]?.failing ? q : undefined;
    }, 'the queue in the API', 30_000, 200);
    assert.equal(queued.upstreams[0]!.route, 'inbound');
    assert.match(queued.upstreams[0]!.lastError ?? '', /ECONNREFUSED|failed/);
    const entry = (await (await api(`/queue/${ref}`)).json()) as { status: string; attempts: unknown[] };
    assert.equal(entry.status, 'queued');
    assert.ok(entry.attempts.length >= 1, 'its attempts are listed');
    await startUpstream();
    // Retry now (or 409 if a deliverer holds it this very moment).
    assert.ok([202, 409].includes((await api(`/queue/${ref}/retry`, 'POST')).status));
    const got = await waitForDelivery(mailRoot, user, 4);
    assert.equal(got.length, 4);
    const [dsn] = await waitForDelivery(mailRoot, sender, 1);
    const text = dsn!.toString('latin1');
    assert.match(text, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(text, /Content-Type: message\/delivery-status/);
    assert.match(text, new RegExp(`Final-Recipient: rfc822; ${unknown}`));
    assert.match(text, /Action: failed/);
    assert.match(text, /Status: 5\.1\.1/);
    assert.match(text, /Diagnostic-Code: smtp; 550/);
    assert.match(text, new RegExp(`X-Mailwarden-Ref: ${ref}`));
    assert.match(text, /Subject: to two/, 'the original headers are quoted');
    assert.ok(!text.includes(`${user}@example.test>: `), 'the delivered recipient is not in the DSN');
  });

  test('killing workers during delivery neither loses nor duplicates a message', { timeout: 240_000 }, async () => {
    const user = uniqueUser('qload');
    const total = 300;
    const ids = Array.from({ length: total }, (_, i) => `load-${process.pid}-${i}`);
    const server = { ...gw.smtp, connectTimeoutMs: 10_000, commandTimeoutMs: 60_000 };
    let next = 0;
    let accepted = 0;
    const refs = new Map<string, string>();
    const sender = async () => {
      while (next < total) {
        const id = ids[next++]!;
        const message = Buffer.from(`From: load@example.org\r\nTo: ${user}@example.test\r\nSubject: ${id}\r\nX-Test-Id: ${id}\r\nMessage-ID: <${id}@example.org>\r\n\r\nbody of ${id}\r\n`);
        // Like an MTA: a 4xx or a lost connection is retried.
        for (let attempt = 0; ; attempt++) {
          try {
            const report = await deliverMessage(server, { from: 'load@example.org', to: [`${user}@example.test`], message: Readable.from([message]), helloName: 'load.example.org' });
            refs.set(id, refOf(report.reply)!);
            accepted++;
            break;
          } catch (err) {
            if (err instanceof DeliveryError && err.code >= 500) throw err;
            if (attempt > 20) throw err;
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      }
    };
    const sending = Promise.all(Array.from({ length: 6 }, sender));
    // Kill (-9) a delivery worker (reassembler) while it holds messages mid-delivery (their lease
    // names it), then the scanner and the other worker the same way, restarting each.
    const records = await DeliveryRecords.open(gw.bus.kvm);
    const killWhileDelivering = async (victim: RunningService) => {
      await waitFor(async () => (await records.queued()).some((q) => q.leaseBy?.endsWith(`/${victim.pid}`) && (q.leaseUntil ?? 0) > Date.now()) || undefined, `reassembler ${victim.pid} delivering`, 90_000, 5);
      await victim.kill();
      return gw.stack.startService('reassembler');
    };
    await waitFor(async () => (await delivered(mailRoot, user)).length >= 20 || undefined, 'deliveries under way', 60_000, 20);
    gw.services.reassembler!.push(await killWhileDelivering(gw.services.reassembler!.shift()!));
    await waitFor(async () => (await delivered(mailRoot, user)).length >= 100 || undefined, 'more deliveries', 90_000, 20);
    const scanner = gw.services.scanner!.shift()!;
    await scanner.kill();
    gw.services.scanner!.push(await gw.stack.startService('scanner'));
    gw.services.reassembler!.push(await killWhileDelivering(gw.services.reassembler!.shift()!));
    await sending;
    assert.equal(accepted, total);
    // Every id once: counting files would let a duplicate hide a message still on its way.
    const tally = async () => {
      const seen = new Map<string, number>();
      for (const m of await delivered(mailRoot, user)) {
        const id = /^X-Test-Id: (\S+)/m.exec(m.toString('latin1'))?.[1] ?? '?';
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      return seen;
    };
    await waitFor(async () => ((await tally()).size >= total ? true : undefined), `${total} distinct deliveries`, 120_000, 200).catch(() => undefined);
    // Give a duplicate the time to show up (a redelivery after the ack wait would come within it).
    await new Promise((r) => setTimeout(r, 3000));
    const seen = await tally();
    const missing = ids.filter((id) => !seen.has(id));
    for (const id of missing) {
      const ref = refs.get(id) ?? '';
      console.log(`missing ${id} (ref ${ref}): queued ${JSON.stringify((await records.load(ref))?.state)}, done ${JSON.stringify(await records.done(ref))}`);
    }
    // The one case SMTP cannot close (RFC 5321 6.1): a deliverer killed after DATA began and before
    // upstream's reply was recorded. The state says so (`interrupted`); any other copy is a bug.
    const unexplained: string[] = [];
    let inherent = 0;
    for (const [id, n] of seen) {
      if (n === 1) continue;
      const record = await records.done(refs.get(id) ?? '');
      if (record?.interrupted && n <= 1 + record.interrupted) inherent++;
      else unexplained.push(id);
    }
    if (inherent) console.log(`${inherent} message(s) delivered again after a deliverer was killed between DATA and recording upstream's reply (RFC 5321 6.1)`);
    assert.deepEqual({ missing, duplicated: unexplained }, { missing: [], duplicated: [] });
  });
});
