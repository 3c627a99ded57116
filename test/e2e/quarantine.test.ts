/**
 * Quarantine on the real stack: NATS, s3rver, clamd, the dev mailbox (SMTP upstream, maildirs),
 * Dovecot, and the scanner, reassembler, smtp-gateway, pop3-gateway and config services as
 * processes. An EICAR message and an encrypted zip are delivered with notices, both originals are
 * kept and listed, the download is the original, a release lands in the recipient's mailbox, a
 * rescan reports the verdict, a POP3 message retrieved twice is kept once, and the sweep removes
 * the entries once a (short) retention has passed; with retention 0 nothing is kept and the
 * notice promises nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { QuarantineEntry } from '@mailwarden/contracts';
import { MaildirStore } from '@mailwarden/dev-mailbox';
import { EICAR, buildZip, composeMessage, poplibSession, sendWithSmtplib, waitFor } from '@mailwarden/testkit';
import { startGatewayStack, type GatewayStack } from '../support/gateway-stack.js';
import { delivered, uniqueUser, waitForDelivery } from '../support/mailbox.js';

/** The delivered text with the notice's quoted-printable soft line breaks undone. */
const plain = (b: Buffer) => b.toString('latin1').replace(/=\r\n/g, '');
const refOf = (notice: Buffer) => /Message reference: ([a-z0-9]+)/.exec(plain(notice))?.[1];

describe('quarantine and release on the real stack', { timeout: 300_000 }, () => {
  let gw: GatewayStack;
  let api: (method: string, path: string, body?: unknown) => Promise<Response>;

  before(async () => {
    // The sweep runs every second here (default: hourly), so a retention of seconds is seen at once.
    gw = await startGatewayStack({ config: true, pop3: true, env: { QUARANTINE_SWEEP_INTERVAL_MS: '1000' } });
    api = (method, path, body) =>
      fetch(`${gw.configUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${gw.stack.env.ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
  });
  after(async () => {
    await gw?.stop();
  });

  async function send(user: string, subject: string, attachment: { filename: string; data: Buffer; contentType?: string }): Promise<{ message: Buffer; delivered: Buffer }> {
    const to = `${user}@example.test`;
    const message = composeMessage({ to, subject, attachments: [attachment] });
    const reply = await sendWithSmtplib({ ...gw.smtp, to: [to], message, timeoutS: 30 });
    assert.equal(reply.data?.[0], 250, JSON.stringify(reply));
    const [got] = await waitForDelivery(gw.mailRoot, user);
    return { message, delivered: got! };
  }

  const eicarUser = uniqueUser('qeicar');
  const zipUser = uniqueUser('qzip');
  let eicar: { message: Buffer; delivered: Buffer; ref: string };
  let zip: { message: Buffer; delivered: Buffer; ref: string };

  it('an EICAR message and an encrypted zip are delivered with notices; both originals are listed', async () => {
    const e = await send(eicarUser, 'Invoice', { filename: 'eicar.com', data: EICAR });
    const z = await send(zipUser, 'Contract', { filename: 'contract.zip', contentType: 'application/zip', data: buildZip([{ name: 'contract.pdf', data: Buffer.from('%PDF-1.4 secret'), password: 'secret' }]) });
    for (const d of [e.delivered, z.delivered]) {
      const text = plain(d);
      assert.match(text, /Mailwarden removed the attachment/);
      assert.match(text, /quote the message reference if you need the original attachment: it is kept for 30 days/);
    }
    assert.doesNotMatch(e.delivered.toString('latin1'), /EICAR-STANDARD/);
    eicar = { ...e, ref: refOf(e.delivered)! };
    zip = { ...z, ref: refOf(z.delivered)! };
    assert.ok(eicar.ref && zip.ref);

    const list = (await (await api('GET', '/api/v1/quarantine')).json()) as { entries: QuarantineEntry[]; total: number };
    const byRef = new Map(list.entries.map((x) => [x.ref, x]));
    const ke = byRef.get(eicar.ref)!;
    assert.ok(ke, 'EICAR original listed');
    assert.deepEqual(ke.recipients, [`${eicarUser}@example.test`]);
    assert.equal(ke.subject, 'Invoice');
    assert.equal(ke.parts[0]!.filename, 'eicar.com');
    assert.equal(ke.parts[0]!.verdict, 'infected');
    const kz = byRef.get(zip.ref)!;
    assert.ok(kz, 'zip original listed');
    assert.equal(kz.parts[0]!.reason, 'encrypted');
    assert.match(kz.parts[0]!.signature ?? '', /Encrypted/);
    const filtered = (await (await api('GET', '/api/v1/quarantine?reason=encrypted')).json()) as { entries: QuarantineEntry[] };
    assert.deepEqual(filtered.entries.map((x) => x.ref), [zip.ref]);
  });

  it('download returns the original bytes', async () => {
    const res = await api('GET', `/api/v1/quarantine/${eicar.ref}/original`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'message/rfc822');
    assert.equal(res.headers.get('content-disposition'), `attachment; filename="${eicar.ref}.eml"`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(eicar.message));
  });

  it('release delivers the original to the recipient’s mailbox and records who and when', async () => {
    const res = await api('POST', `/api/v1/quarantine/${zip.ref}/release`, { addHeader: true });
    assert.equal(res.status, 200, await res.clone().text());
    const entry = (await res.json()) as QuarantineEntry;
    assert.equal(entry.releases.length, 1);
    assert.match(entry.releases[0]!.by, /^admin \(/);
    const [, released] = await waitForDelivery(gw.mailRoot, zipUser, 2);
    const text = released!.toString('latin1');
    assert.match(text, new RegExp(`^X-Mailwarden-Released: admin \\S+ \\(${zip.ref}\\)\\r\\n`, 'm'));
    assert.ok(released!.includes(zip.message), 'the original follows the header unchanged');
    assert.doesNotMatch(text, /Mailwarden removed the attachment/);
  });

  it('rescan reports the verdict with today’s signatures', async () => {
    const e = (await (await api('POST', `/api/v1/quarantine/${eicar.ref}/rescan`)).json()) as QuarantineEntry;
    assert.equal(e.lastRescan?.verdict, 'infected');
    const z = (await (await api('POST', `/api/v1/quarantine/${zip.ref}/rescan`)).json()) as QuarantineEntry;
    assert.equal(z.lastRescan?.verdict, 'unscannable');
    // Download, release and two rescans: each one an audit event in the activity feed.
    await waitFor(async () => {
      const a = (await (await api('GET', '/api/v1/audit?limit=20')).json()) as { actions: { kind: string }[] };
      return ['quarantine-downloaded', 'quarantine-released', 'quarantine-rescanned'].every((k) => a.actions.some((x) => x.kind === k)) && a.actions.length >= 4;
    }, 'the audit events');
  });

  it('POP3: a message retrieved twice (two sessions) is quarantined once', async () => {
    const user = uniqueUser('qpop');
    const message = composeMessage({ to: `${user}@example.test`, subject: 'Via POP3', attachments: [{ filename: 'eicar.com', data: EICAR }] });
    await new MaildirStore(gw.mailRoot).deliver(Readable.from([message]), [user]);
    const [host, port] = gw.stack.env.POP3_LISTEN.split(':');
    const refs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const s = await poplibSession({ host: host!, port: Number(port), user, password: 'password', steps: [{ cmd: 'retr', n: 1 }, { cmd: 'quit' }] });
      assert.equal(s.error, undefined, s.error);
      const body = s.results[2]!.body!;
      assert.match(plain(body), /Mailwarden removed the attachment/);
      refs.push(refOf(body)!);
    }
    assert.equal(refs[0], refs[1], 'the notice quotes the same quarantine reference');
    const list = (await (await api('GET', `/api/v1/quarantine?recipient=${user}`)).json()) as { entries: QuarantineEntry[] };
    assert.equal(list.entries.length, 1);
    assert.equal(list.entries[0]!.ref, refs[0]);
    assert.equal(list.entries[0]!.protocol, 'pop3');
  });

  it('after the retention elapses the entries are gone; with retention 0 nothing is kept and the notice promises nothing', async () => {
    // 0.0001 days = 8.6 s; the config service sweeps every second in this test.
    await gw.setPolicy((p) => {
      p.quarantine = { retentionDays: 0.0001 };
    });
    await waitFor(
      async () => ((await (await api('GET', '/api/v1/quarantine')).json()) as { total: number }).total === 0,
      'quarantine swept',
      30_000,
    );
    assert.equal((await api('GET', `/api/v1/quarantine/${eicar.ref}`)).status, 404);

    await gw.setPolicy((p) => {
      p.quarantine = { retentionDays: 0 };
    });
    const user = uniqueUser('qnone');
    const none = await send(user, 'Nothing kept', { filename: 'eicar.com', data: EICAR });
    const text = plain(none.delivered);
    assert.match(text, /The removed attachment was not kept and cannot be recovered\./);
    assert.doesNotMatch(text, /quote the message reference/);
    assert.equal(((await (await api('GET', '/api/v1/quarantine')).json()) as { total: number }).total, 0);
    assert.equal((await delivered(gw.mailRoot, user)).length, 1);
  });
});
