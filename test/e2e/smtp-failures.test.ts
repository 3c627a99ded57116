// Failure semantics: whatever breaks inside (a worker, clamd, S3, NATS, the upstream MTA), the client
// never gets 250 unless upstream accepted the message, gets 451/421 within a bounded time otherwise,
// and a message in flight when a worker dies is still delivered.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EICAR, composeMessage, sendWithSmtplib } from '@mailwarden/testkit';
import { freePort } from '@mailwarden/clamd';
import { parseHostPort } from '@mailwarden/config';
import { startGatewayStack, type GatewayStack } from '../support/gateway-stack.js';
import { delivered, uniqueUser, waitForDelivery } from '../support/mailbox.js';
import { assertNoEicar } from '../support/assertions.js';

let gw: GatewayStack;
before(async () => {
  // Short deadlines so each failure shows up in seconds, not minutes.
  gw = await startGatewayStack({ env: { SCAN_TIMEOUT_MS: '15000', CLAMD_CONNECT_TIMEOUT_MS: '500', CLAMD_SCAN_TIMEOUT_MS: '3000', SMTP_TIMEOUT_MS: '3000' } });
});
after(async () => {
  await gw?.stop();
});

const infected = () => composeMessage({ attachments: [{ filename: 'eicar.com', data: EICAR }] });
// Content no scanner has seen: the scan cache cannot answer for it, only clamd can.
const neverSeen = () => composeMessage({ attachments: [{ filename: 'fresh.bin', data: randomBytes(4096) }] });

describe('workers die mid-flow: nothing is lost', () => {
  test('a reassembler killed while messages are in flight; its successor finishes them', async () => {
    const users = Array.from({ length: 6 }, () => uniqueUser('rkill'));
    const sending = Promise.all(users.map((u) => sendWithSmtplib({ ...gw.smtp, to: [`${u}@example.test`], message: infected() })));
    await new Promise((r) => setTimeout(r, 150));
    const old = gw.services.reassembler!.pop()!;
    await old.kill();
    gw.services.reassembler!.push(await gw.stack.startService('reassembler'));
    const replies = await sending;
    for (const r of replies) assert.equal(r.data?.[0], 250, JSON.stringify(r));
    for (const u of users) {
      const msgs = await waitForDelivery(gw.mailRoot, u);
      assert.equal(msgs.length, 1, `${u} must get the message exactly once`);
      assertNoEicar(msgs[0]!);
    }
  });

  test('no reassembler at all while a message is sent: it waits, then completes when one starts', async () => {
    const old = gw.services.reassembler!.pop()!;
    await old.stop();
    const user = uniqueUser('rnone');
    const sending = sendWithSmtplib({ ...gw.smtp, to: [`${user}@example.test`], message: infected() });
    await new Promise((r) => setTimeout(r, 1000));
    gw.services.reassembler!.push(await gw.stack.startService('reassembler'));
    const r = await sending;
    assert.equal(r.data?.[0], 250, JSON.stringify(r));
    assertNoEicar((await waitForDelivery(gw.mailRoot, user))[0]!);
  });

  test('a scanner killed mid-flow: its jobs are redelivered to the next one', async () => {
    const users = Array.from({ length: 4 }, () => uniqueUser('skill'));
    const sending = Promise.all(users.map((u) => sendWithSmtplib({ ...gw.smtp, to: [`${u}@example.test`], message: infected() })));
    await new Promise((r) => setTimeout(r, 100));
    await gw.services.scanner!.pop()!.kill();
    gw.services.scanner!.push(await gw.stack.startService('scanner'));
    const replies = await sending;
    // A job held by the dead scanner comes back after the consumer's ack wait; within SCAN_TIMEOUT_MS.
    for (const r of replies) assert.ok(r.data?.[0] === 250 || r.data?.[0] === 451, JSON.stringify(r));
    for (const [i, u] of users.entries()) {
      const got = await delivered(gw.mailRoot, u);
      assert.equal(got.length, replies[i]!.data?.[0] === 250 ? 1 : 0, 'delivered exactly when 250 was given');
      for (const m of got) assertNoEicar(m);
    }
  });
});

describe('dependencies down → temporary failure, never 250', () => {
  test('upstream MTA unreachable: the connection is refused with 421', async () => {
    const deadPort = await freePort();
    const svc = await gw.stack.startService('smtp-gateway', { SMTP_UPSTREAM: `127.0.0.1:${deadPort}`, SMTP_LISTEN: `127.0.0.1:${await freePort()}` });
    try {
      const listen = parseHostPort(String((svc.ready.listeners as string[])[0]).split('=')[1]!);
      const r = await sendWithSmtplib({ ...listen, to: ['x@example.test'], message: composeMessage() });
      assert.match(r.error ?? '', /421/, JSON.stringify(r));
    } finally {
      await svc.stop();
    }
  });

  test('clamd down: 451 4.3.0 with a reference, nothing delivered', async () => {
    await gw.stack.clamd.stop();
    const user = uniqueUser('noclamd');
    const started = Date.now();
    const r = await sendWithSmtplib({ ...gw.smtp, to: [`${user}@example.test`], message: neverSeen() });
    assert.equal(r.data?.[0], 451, JSON.stringify(r));
    assert.match(r.data![1], /^4\.3\.0 .*\(ref [a-z0-9]+\)/);
    assert.ok(Date.now() - started < 20_000, 'the failure must come within the scan deadline');
    assert.equal((await delivered(gw.mailRoot, user)).length, 0);
  });

  test('S3 down: 451 4.3.0, nothing delivered', async () => {
    await gw.stack.s3.stop();
    const user = uniqueUser('nos3');
    const r = await sendWithSmtplib({ ...gw.smtp, to: [`${user}@example.test`], message: infected() });
    assert.equal(r.data?.[0], 451, JSON.stringify(r));
    assert.equal((await delivered(gw.mailRoot, user)).length, 0);
  });

  test('NATS down: 451 4.3.0, nothing delivered', async () => {
    await gw.bus.nc.close();
    await gw.stack.nats.stop();
    const user = uniqueUser('nonats');
    const r = await sendWithSmtplib({ ...gw.smtp, to: [`${user}@example.test`], message: composeMessage() });
    assert.ok(r.data?.[0] === 451 || /4\d\d/.test(r.error ?? ''), JSON.stringify(r));
    assert.equal((await delivered(gw.mailRoot, user)).length, 0);
  });
});
