// The evasion corpus against the recovery oracle, without the gateway: every case really hides a
// payload the oracle can recover from the message as built, with its clean markers readable; and
// the oracle does not invent payloads in messages that do not carry one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EICAR, composeMessage } from '@mailwarden/testkit';
import { CASES, DEFAULT_PAYLOADS, EICAR_PAYLOAD, type EvasionCase, type Payload } from './cases.js';
import { missingMarkers, payloadRecovered, recover } from './recover.js';

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const HARMLESS: Payload = { name: 'readme.txt', bytes: Buffer.from('Nothing to see here, just a harmless text file.\r\n'.repeat(3)) };

describe('evasion corpus and recovery oracle', { timeout: 300_000 }, () => {
  it('has at least 70 cases, each a complete RFC 5322 message', () => {
    assert.ok(CASES.length >= 70, `${CASES.length} cases`);
    for (const c of CASES) {
      const head = c.build(EICAR_PAYLOAD).toString('latin1').split('\r\n\r\n')[0]!;
      for (const h of ['From', 'To', 'Subject', 'Date', 'Message-ID']) assert.match(head, new RegExp(`^${h}: `, 'm'), `${c.id}: no ${h}`);
      assert.ok(!/[^\r]\n/.test(head), `${c.id}: bare LF in the header`);
      assert.ok(c.trick.length > 20 && !c.trick.includes('\n'), `${c.id}: trick must be one line`);
    }
  });

  it('recovers the payload from every case as built, and every clean marker is readable', async () => {
    const runs: { c: EvasionCase; p: Payload }[] = CASES.flatMap((c) => DEFAULT_PAYLOADS.filter((p) => !c.textOnly || p === EICAR_PAYLOAD).map((p) => ({ c, p })));
    const problems = (
      await pool(runs, 4, async ({ c, p }) => {
        const recovered = await recover(c.build(p));
        const issues: string[] = [];
        if (!payloadRecovered(recovered, p)) issues.push(`${c.id} [${p.name}]: payload not recoverable (${recovered.length} blobs)`);
        const missing = missingMarkers(recovered, c.clean);
        if (missing.length) issues.push(`${c.id} [${p.name}]: clean markers missing: ${missing.join(', ')}`);
        return issues;
      })
    ).flat();
    assert.deepEqual(problems, []);
  });

  it('finds no EICAR where there is none: a clean message, and every case built around a harmless file', async () => {
    const clean = composeMessage({ text: 'Hello\n', attachments: [{ filename: 'notes.txt', data: Buffer.from('quarterly numbers\n') }] });
    assert.equal(payloadRecovered(await recover(clean), EICAR_PAYLOAD), false);
    const falsePositives = (
      await pool(CASES, 4, async (c) => {
        const recovered = await recover(c.build(HARMLESS));
        return [
          ...(recovered.some((r) => r.bytes.includes(EICAR)) ? [`${c.id}: EICAR "recovered" from a harmless build`] : []),
          ...(payloadRecovered(recovered, HARMLESS) ? [] : [`${c.id}: harmless payload not recoverable`]),
        ];
      })
    ).flat();
    assert.deepEqual(falsePositives, []);
  });

  it('the oracle sees through each layer it claims to', async () => {
    const eicarB64 = EICAR.toString('base64');
    const wrap = (body: string, headers = '') => Buffer.from(`From: a@b\r\nSubject: x\r\n${headers}\r\n${body}\r\n`, 'latin1');
    // base64 with junk characters, in a body no MIME header announces.
    assert.ok(payloadRecovered(await recover(wrap(eicarB64.replace(/(.{5})/g, '$1!'))), EICAR_PAYLOAD));
    // Double base64 (a decoded blob is base64 again).
    assert.ok(payloadRecovered(await recover(wrap(Buffer.from(eicarB64).toString('base64'))), EICAR_PAYLOAD));
    // Truncated text is not the payload.
    assert.equal(payloadRecovered(await recover(wrap(eicarB64.slice(0, 60))), EICAR_PAYLOAD), false);
  });
});
