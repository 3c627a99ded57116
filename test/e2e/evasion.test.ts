/**
 * The evasion corpus (test/evasion) end to end through the real gateway: every case is sent by
 * Python's smtplib through the SMTP gateway, and put in a Dovecot maildir and fetched with
 * Python's poplib through the POP3 gateway. What the recipient got is judged by the recovery
 * oracle, not by our parser: the payload must not be recoverable and every clean marker must
 * still be readable. A 5xx is acceptable only for cases marked 'rejected-or-delivered'; a
 * temporary failure always fails. All failing cases are reported in one table.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { MaildirStore } from '@mailwarden/dev-mailbox';
import { parseHostPort } from '@mailwarden/config';
import { poplibSession, sendWithSmtplib } from '@mailwarden/testkit';
import { CASES, EICAR_PAYLOAD, type EvasionCase } from '../evasion/cases.js';
import { missingMarkers, payloadHits, recover } from '../evasion/recover.js';
import { startGatewayStack, type GatewayStack } from '../support/gateway-stack.js';
import { waitForDelivery } from '../support/mailbox.js';

const CONCURRENCY = 4;

interface Outcome {
  id: string;
  /** Empty when the case passed. */
  problem: string;
}

async function pool<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** Judges what the recipient got: empty string when the payload is gone and the clean text is intact. */
async function judge(c: EvasionCase, received: Buffer): Promise<string> {
  const recovered = await recover(received);
  const hits = payloadHits(recovered, EICAR_PAYLOAD);
  const missing = missingMarkers(recovered, c.clean);
  const problems: string[] = [];
  if (hits.length) problems.push(`payload recovered via ${hits.slice(0, 3).map((h) => h.via).join(' | ')}${hits.length > 3 ? ` (+${hits.length - 3} more)` : ''}`);
  if (missing.length) problems.push(`clean text lost: ${missing.join(', ')}`);
  return problems.join('; ');
}

function table(title: string, outcomes: Outcome[]): string {
  const failed = outcomes.filter((o) => o.problem);
  const width = Math.max(...failed.map((o) => o.id.length), 2);
  return [`${title}: ${failed.length} of ${outcomes.length} cases fail`, ...failed.map((o) => `  ${o.id.padEnd(width)}  ${o.problem}`)].join('\n');
}

describe('evasion corpus through the real gateway', { timeout: 600_000 }, () => {
  let gw: GatewayStack;
  let maildir: MaildirStore;
  const tag = `ev${process.pid}`;

  before(async () => {
    gw = await startGatewayStack({ scanners: 2 });
    gw.services['pop3-gateway'] = [await gw.stack.startService('pop3-gateway')];
    maildir = new MaildirStore(gw.mailRoot);
  });
  after(async () => {
    await gw?.stop();
  });

  it('SMTP: every case is delivered without a recoverable payload and with its clean text (or refused with 5xx where allowed)', async () => {
    const outcomes = await pool(CASES, CONCURRENCY, async (c, i): Promise<Outcome> => {
      const user = `${tag}s${i}`;
      const sent = await sendWithSmtplib({ ...gw.smtp, to: [`${user}@example.test`], message: c.build(EICAR_PAYLOAD), timeoutS: 90 });
      const [code, text] = sent.data ?? [0, sent.error ?? JSON.stringify(sent)];
      if (code === 250) {
        const [received] = await waitForDelivery(gw.mailRoot, user);
        return { id: c.id, problem: await judge(c, received!) };
      }
      if (code >= 500 && c.expect === 'rejected-or-delivered') return { id: c.id, problem: '' };
      return { id: c.id, problem: `reply ${code} ${text.slice(0, 100)}` };
    });
    const report = table('SMTP', outcomes);
    console.log(report);
    assert.equal(outcomes.filter((o) => o.problem).length, 0, report);
  });

  it('POP3: every case fetched through the POP3 gateway is without a recoverable payload and with its clean text', async () => {
    const pop3 = parseHostPort(gw.stack.env.POP3_LISTEN);
    const outcomes = await pool(CASES, CONCURRENCY, async (c, i): Promise<Outcome> => {
      const user = `${tag}p${i}`;
      await maildir.deliver(Readable.from([c.build(EICAR_PAYLOAD)]), [user]);
      const session = await poplibSession({ ...pop3, user, steps: [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }], timeoutS: 90 });
      const login = session.error ?? session.results[1]?.error;
      if (login) return { id: c.id, problem: `session failed: ${login}` };
      const retr = session.results[2]!;
      if (retr.error) {
        if (c.expect === 'rejected-or-delivered' && !/SYS\/TEMP/.test(retr.error)) return { id: c.id, problem: '' };
        return { id: c.id, problem: `RETR ${retr.error.slice(0, 100)}` };
      }
      return { id: c.id, problem: await judge(c, retr.body!) };
    });
    const report = table('POP3', outcomes);
    console.log(report);
    assert.equal(outcomes.filter((o) => o.problem).length, 0, report);
  });
});
