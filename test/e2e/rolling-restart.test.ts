// Graceful shutdown: a rolling restart of each service while mail flows loses no message.
// Senders behave like MTAs: a 4xx or a refused connection means "try again later".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EICAR, composeMessage, sendWithSmtplib } from '@mailwarden/testkit';
import { startGatewayStack, type GatewayStack } from '../support/gateway-stack.js';
import { delivered, uniqueUser } from '../support/mailbox.js';
import { assertNoEicar } from '../support/assertions.js';

let gw: GatewayStack;
before(async () => {
  gw = await startGatewayStack({ scanners: 2, reassemblers: 2 });
});
after(async () => {
  await gw?.stop();
});

interface Outcome {
  user: string;
  attempts: number;
  accepted: boolean;
}

/** Sends one message, retrying temporary failures the way an MTA would (quicker). */
async function sendUntilAccepted(user: string, stop: () => boolean): Promise<Outcome> {
  const message = composeMessage({ attachments: [{ filename: 'eicar.com', data: EICAR }, { filename: 'note.txt', data: Buffer.from(`for ${user}\r\n`) }] });
  for (let attempts = 1; ; attempts++) {
    const r = await sendWithSmtplib({ ...gw.smtp, to: [`${user}@example.test`], message, timeoutS: 30 });
    if (r.data?.[0] === 250) return { user, attempts, accepted: true };
    const code = r.data?.[0] ?? 0;
    assert.ok(code === 0 || (code >= 400 && code < 500), `a permanent failure would lose the message: ${JSON.stringify(r)}`);
    if (stop() && attempts > 40) return { user, attempts, accepted: false };
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function restart(name: 'scanner' | 'reassembler' | 'smtp-gateway'): Promise<void> {
  const list = gw.services[name]!;
  const old = list.shift()!;
  await old.stop('SIGTERM', 30_000);
  assert.equal(await old.exited, 0, `${name} must drain and exit 0 on SIGTERM, not be killed`);
  list.push(await gw.stack.startService(name));
}

test('restarting scanner, reassembler and gateway one at a time while mail flows loses nothing', async () => {
  let stopping = false;
  const outcomes: Promise<Outcome>[] = [];
  const senders = Array.from({ length: 3 }, async () => {
    while (!stopping) {
      const o = sendUntilAccepted(uniqueUser('roll'), () => stopping);
      outcomes.push(o);
      await o;
    }
  });
  await new Promise((r) => setTimeout(r, 1000));
  await restart('scanner');
  await restart('reassembler');
  await restart('scanner');
  await restart('reassembler');
  await restart('smtp-gateway');
  await new Promise((r) => setTimeout(r, 1000));
  stopping = true;
  await Promise.all(senders);
  const results = await Promise.all(outcomes);
  assert.ok(results.length >= 6, `only ${results.length} messages went through`);
  for (const o of results) {
    assert.ok(o.accepted, `${o.user} was never accepted after ${o.attempts} attempts`);
    const got = await delivered(gw.mailRoot, o.user);
    assert.equal(got.length, 1, `${o.user}: accepted once, so delivered exactly once`);
    assertNoEicar(got[0]!);
  }
});
