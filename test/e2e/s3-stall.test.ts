// A stalled object store (accepts connections, stops answering) must never wedge a session or a
// worker: every S3 call has a deadline, the gateway answers 451 within a bounded time whatever
// stalls, the workers give up on the stalled call and retry, and once S3 answers again the
// message goes through (on a worker's retry or the client's) exactly once.
//
// Each service reaches the real S3 server (s3rver) through its own StallProxy, so a drill stalls
// exactly one service's traffic at a chosen byte.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, startStallProxy, type LocalStack, type RunningService, type StallProxy } from '@mailwarden/local-stack';
import { parseHostPort } from '@mailwarden/config';
import { EICAR, composeMessage, sendWithSmtplib, waitFor, type SmtpExchange } from '@mailwarden/testkit';
import { freePort } from '@mailwarden/clamd';
import { connectBus, type Bus } from '@mailwarden/bus';
import { Consumers, Streams } from '@mailwarden/contracts';
import { delivered, uniqueUser, waitForDelivery } from '../support/mailbox.js';
import { assertNoEicar } from '../support/assertions.js';

const MiB = 1024 * 1024;
/** Short S3 deadlines for the drill (production defaults are 10 s and 30 s). */
const S3_REQUEST_TIMEOUT_MS = 2000;
const S3_IDLE_TIMEOUT_MS = 2000;
const SCAN_TIMEOUT_MS = 45_000;

let dir: string;
let stack: LocalStack;
const proxies: Record<'gateway' | 'scanner' | 'reassembler', StallProxy> = {} as never;
let scanner: RunningService;
let reassembler: RunningService;
let smtp: { host: string; port: number };
let bus: Bus;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-s3-stall-'));
  stack = await startStack({
    stateDir: dir,
    env: {
      S3_REQUEST_TIMEOUT_MS: String(S3_REQUEST_TIMEOUT_MS),
      S3_IDLE_TIMEOUT_MS: String(S3_IDLE_TIMEOUT_MS),
      SCAN_TIMEOUT_MS: String(SCAN_TIMEOUT_MS),
      // Larger messages are read by range: the drill stalls one of those reads.
      SCANNER_MEMORY_BYTES: String(MiB),
    },
  });
  const s3 = { host: stack.s3.host, port: stack.s3.port };
  for (const name of ['gateway', 'scanner', 'reassembler'] as const) proxies[name] = await startStallProxy(s3);
  scanner = await stack.startService('scanner', { S3_ENDPOINT: proxies.scanner.endpoint });
  reassembler = await stack.startService('reassembler', { S3_ENDPOINT: proxies.reassembler.endpoint });
  await stack.startService('smtp-gateway', { S3_ENDPOINT: proxies.gateway.endpoint });
  smtp = parseHostPort(stack.env.SMTP_LISTEN);
  bus = await connectBus({ ...stack.natsClient(), name: 's3-stall-test' });
});
after(async () => {
  await bus?.nc.close().catch(() => undefined);
  for (const p of Object.values(proxies)) await p.close();
  await stack?.stop();
  if (dir && !process.env.MW_KEEP_STATE) await rm(dir, { recursive: true, force: true });
});

// A failed drill must not leave the next one with a stalled S3.
afterEach(() => {
  for (const p of Object.values(proxies)) {
    p.resume();
    p.throttle(undefined);
  }
});

/** A ~12 MB message: three parts of a multipart upload (5 MiB parts). */
const large = (extra: { filename: string; data: Buffer }[] = []) => composeMessage({ attachments: [...extra, { filename: 'big.bin', data: randomBytes(9 * MiB) }] });

/** Log lines of `svc` with this event code (read from its log file: output() keeps only the tail). */
async function events(svc: RunningService, event: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(svc.logFile, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The client's retry: sends again (as an MTA would after a 451) until the message is accepted. */
async function sendUntilAccepted(to: string, message: Buffer, withinMs: number): Promise<SmtpExchange> {
  const until = Date.now() + withinMs;
  for (;;) {
    const r = await sendWithSmtplib({ ...smtp, to: [to], message, timeoutS: 90 });
    if (r.data?.[0] === 250 || Date.now() > until) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
}

describe('gateway: S3 stalls while raw.eml is uploaded', () => {
  for (const [where, at] of [
    ['in the first part, while the client is still sending', 1 * MiB],
    ['in the last part, after the end of DATA', 11 * MiB],
  ] as const) {
    test(`stall ${where}: 451 within the S3 deadline, nothing delivered; the client's retry goes through once`, async () => {
      const user = uniqueUser('gwstall');
      const message = large();
      assert.ok(message.length > 12 * 1000 * 1000);
      proxies.gateway.stallAfter({ up: at });
      const started = Date.now();
      const r = await sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message, timeoutS: 60 });
      const took = Date.now() - started;
      assert.ok(proxies.gateway.stalled, 'the drill stalled S3');
      assert.equal(r.data?.[0], 451, JSON.stringify(r));
      assert.match(r.data![1], /^4\.3\.0 .*\(ref [a-z0-9]+\)/);
      // Sending 12 MB over loopback takes a second or two; the stalled call gives up after S3_IDLE_TIMEOUT_MS.
      assert.ok(took < S3_IDLE_TIMEOUT_MS + 8000, `451 after ${took} ms`);
      assert.equal((await delivered(stack.env.DEV_MAILBOX_DIR, user)).length, 0);

      proxies.gateway.resume();
      const retry = await sendUntilAccepted(`${user}@example.test`, message, 30_000);
      assert.equal(retry.data?.[0], 250, JSON.stringify(retry));
      const got = await waitForDelivery(stack.env.DEV_MAILBOX_DIR, user);
      await new Promise((res) => setTimeout(res, 500));
      assert.equal((await delivered(stack.env.DEV_MAILBOX_DIR, user)).length, 1, 'delivered exactly once');
      assert.ok(got[0]!.includes(message.subarray(message.length - 2000)), 'the message arrived whole');
    });
  }

  test("the scan deadline covers the upload: S3's own deadlines longer than SCAN_TIMEOUT_MS still give 451 within SCAN_TIMEOUT_MS", async () => {
    const proxy = await startStallProxy({ host: stack.s3.host, port: stack.s3.port });
    const scanTimeoutMs = 5000;
    const listen = `127.0.0.1:${await freePort()}`;
    const svc = await stack.startService('smtp-gateway', {
      S3_ENDPOINT: proxy.endpoint,
      S3_REQUEST_TIMEOUT_MS: '120000',
      S3_IDLE_TIMEOUT_MS: '120000',
      SCAN_TIMEOUT_MS: String(scanTimeoutMs),
      SMTP_LISTEN: listen,
    });
    try {
      const user = uniqueUser('gwdeadline');
      proxy.stallAfter({ up: 11 * MiB });
      const started = Date.now();
      const r = await sendWithSmtplib({ ...parseHostPort(listen), to: [`${user}@example.test`], message: large(), timeoutS: 60 });
      const took = Date.now() - started;
      assert.ok(proxy.stalled, 'the drill stalled S3');
      assert.equal(r.data?.[0], 451, JSON.stringify(r));
      assert.ok(took < scanTimeoutMs + 5000, `451 after ${took} ms (SCAN_TIMEOUT_MS ${scanTimeoutMs})`);
      assert.equal((await delivered(stack.env.DEV_MAILBOX_DIR, user)).length, 0);
    } finally {
      await svc.stop();
      await proxy.close();
    }
  });
});

describe('scanner: S3 stalls while raw.eml is read by range', () => {
  test('the scanner gives up on the stalled read and retries; when S3 answers again the message is delivered once', async () => {
    const user = uniqueUser('scanstall');
    const message = composeMessage({ attachments: [{ filename: 'data.bin', data: randomBytes(2 * MiB) }] });
    assert.ok(message.length > 2 * MiB, 'larger than SCANNER_MEMORY_BYTES: read by range');
    const retriesBefore = (await events(scanner, 'message.retry')).length;
    proxies.scanner.stallAfter({ down: 1.5 * MiB });
    const started = Date.now();
    const sending = sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message, timeoutS: 90 });
    // The stalled ranged GET must fail on its deadline and the job be nak'ed, well before any ack wait.
    const retry = await waitFor(async () => (await events(scanner, 'message.retry')).slice(retriesBefore)[0], 'the scanner to retry', 15_000, 100);
    assert.ok(proxies.scanner.stalled, 'the drill stalled S3');
    assert.match(String(retry.err), /stalled|no answer|aborted|timeout/i, JSON.stringify(retry));
    assert.ok(Date.now() - started < S3_REQUEST_TIMEOUT_MS + S3_IDLE_TIMEOUT_MS + 6000, `retry after ${Date.now() - started} ms`);
    proxies.scanner.resume();
    const r = await sending;
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    await waitForDelivery(stack.env.DEV_MAILBOX_DIR, user);
    await new Promise((res) => setTimeout(res, 500));
    assert.equal((await delivered(stack.env.DEV_MAILBOX_DIR, user)).length, 1, 'delivered exactly once');
  });
});

describe('reassembler: S3 stalls or crawls while the message is rebuilt', () => {
  test('a stall in the PUT of rebuilt.eml: the reassembler retries instead of hanging; when S3 answers again the cleaned message is delivered once', async () => {
    const user = uniqueUser('rstall');
    const message = large([{ filename: 'eicar.com', data: EICAR }]);
    const retriesBefore = (await events(reassembler, 'verdict.retry')).length;
    const sending = sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message, timeoutS: 90 });
    // The reassembler GETs raw.eml (bytes down), then PUTs rebuilt.eml (bytes up): stall its last part.
    await waitFor(() => proxies.reassembler.bytesDown > 0 || undefined, 'the reassembler to start reading raw.eml', 30_000, 20);
    proxies.reassembler.stallAfter({ up: 11 * MiB });
    await waitFor(() => proxies.reassembler.stalled || undefined, 'the stall', 30_000, 20);
    const stalledAt = Date.now();
    const retry = await waitFor(async () => (await events(reassembler, 'verdict.retry')).slice(retriesBefore)[0], 'the reassembler to retry', 15_000, 100);
    assert.match(String(retry.err), /stalled|no answer|aborted|timeout/i, JSON.stringify(retry));
    assert.ok(Date.now() - stalledAt < S3_IDLE_TIMEOUT_MS + 5000, `retry ${Date.now() - stalledAt} ms after the stall`);
    proxies.reassembler.resume();
    const r = await sending;
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    const got = await waitForDelivery(stack.env.DEV_MAILBOX_DIR, user);
    await new Promise((res) => setTimeout(res, 500));
    assert.equal((await delivered(stack.env.DEV_MAILBOX_DIR, user)).length, 1, 'delivered exactly once');
    assertNoEicar(got[0]!);
  });

  test('a rebuild slower than the ack wait (S3 crawling, bytes still moving): heartbeats keep the verdict with its reassembler', async () => {
    const user = uniqueUser('rslow');
    const message = large([{ filename: 'eicar.com', data: EICAR }]);
    // A reassembler whose idle deadline tolerates the kernel buffers a throttled loopback link
    // holds (several MB drain at 1.5 MiB/s for a few seconds after the last write).
    const finalizedBefore = (await events(reassembler, 'message.finalized')).length;
    await reassembler.stop();
    const slow = await stack.startService('reassembler', { S3_ENDPOINT: proxies.reassembler.endpoint, S3_IDLE_TIMEOUT_MS: '10000' });
    // ~12 MB down and ~12 MB up at 1.5 MiB/s: about 16 s, over REASSEMBLER_ACK_WAIT_MS (10 s).
    proxies.reassembler.throttle(1.5 * MiB);
    // The server's own count: a verdict handed out again (ack wait expired) shows in num_redelivered.
    let redelivered = 0;
    const sampling = setInterval(() => {
      void bus.jsm.consumers.info(Streams.verdicts, Consumers.reassemblers).then(
        (i) => (redelivered = Math.max(redelivered, i.num_redelivered)),
        () => undefined,
      );
    }, 200);
    try {
      const started = Date.now();
      const r = await sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message, timeoutS: 90 });
      assert.equal(r.data?.[0], 250, JSON.stringify(r));
      assert.ok(Date.now() - started > 10_000, `the rebuild was meant to outlast the ack wait (took ${Date.now() - started} ms)`);
      assertNoEicar((await waitForDelivery(stack.env.DEV_MAILBOX_DIR, user))[0]!);
      assert.equal(redelivered, 0, 'the verdict was not handed out again while being worked on');
      // Same log file as the reassembler it stands in for: count what is new.
      assert.equal((await events(slow, 'message.finalized')).length - finalizedBefore, 1, 'finalised once');
    } finally {
      clearInterval(sampling);
      proxies.reassembler.throttle(undefined);
      await slow.stop();
      reassembler = await stack.startService('reassembler', { S3_ENDPOINT: proxies.reassembler.endpoint });
    }
  });
});
