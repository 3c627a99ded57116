// The SMTP path end to end on the real stack: swaks-like client (Python smtplib) → smtp-gateway →
// S3 + JetStream → scanner ×2 → clamd → reassembler → dev mailbox (the upstream MTA).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EICAR, buildZip, composeMessage, sendWithSmtplib } from '@mailwarden/testkit';
import { startGatewayStack, type GatewayStack } from '../support/gateway-stack.js';
import { uniqueUser, waitForDelivery, delivered } from '../support/mailbox.js';
import { assertNoEicar, assertNotice } from '../support/assertions.js';

let gw: GatewayStack;
before(async () => {
  gw = await startGatewayStack({ scanners: 2, reassemblers: 2 });
});
after(async () => {
  await gw?.stop();
});

async function send(to: string | string[], message: Buffer) {
  return sendWithSmtplib({ ...gw.smtp, to: Array.isArray(to) ? to : [to], message });
}

async function roundTrip(message: Buffer, tag: string): Promise<Buffer> {
  const user = uniqueUser(tag);
  const r = await send(`${user}@example.test`, message);
  assert.equal(r.data?.[0], 250, `DATA reply: ${JSON.stringify(r)}`);
  const [msg] = await waitForDelivery(gw.mailRoot, user);
  return msg!;
}

describe('clean mail', () => {
  test('a clean multipart message arrives byte-for-byte identical', async () => {
    const message = composeMessage({ attachments: [{ filename: 'report.pdf', data: Buffer.from('%PDF-1.4 harmless\n'.repeat(500)) }] });
    const got = await roundTrip(message, 'clean');
    assert.ok(got.equals(message), 'delivered bytes differ from the sent ones');
  });

  test('a plain single-part message arrives identical', async () => {
    const message = composeMessage({ text: 'just text\r\n.leading dot line\r\n' });
    assert.ok((await roundTrip(message, 'plain')).equals(message));
  });
});

describe('infected attachments are replaced by a notice', () => {
  test('EICAR as a base64 attachment', async () => {
    const message = composeMessage({ text: 'see attached\r\n', attachments: [{ filename: 'eicar.com', data: EICAR }] });
    const got = await roundTrip(message, 'eicar');
    assertNoEicar(got);
    assertNotice(got, 'eicar.com', /EICAR/);
    assert.ok(got.toString().includes('see attached'), 'the text body must survive');
  });

  test('EICAR inside a deflated zip, and inside a zip inside a zip', async () => {
    const inner = buildZip([{ name: 'eicar.com', data: EICAR }]);
    const outer = buildZip([{ name: 'inner.zip', data: inner, method: 'store' }]);
    const message = composeMessage({
      attachments: [
        { filename: 'one.zip', contentType: 'application/zip', data: inner },
        { filename: 'two.zip', contentType: 'application/zip', data: outer },
        { filename: 'fine.txt', contentType: 'text/plain', data: Buffer.from('nothing to see\r\n') },
      ],
    });
    const got = await roundTrip(message, 'zips');
    assertNotice(got, 'one.zip', /EICAR/);
    assertNotice(got, 'two.zip', /EICAR/);
    assert.ok(!got.includes(inner.toString('base64').slice(0, 60)), 'the infected zip was delivered');
    assert.ok(got.includes(Buffer.from('nothing to see\r\n').toString('base64')), 'the clean attachment must stay');
  });

  test('EICAR inside an attached message/rfc822', async () => {
    const forwarded = composeMessage({ subject: 'inner', attachments: [{ filename: 'eicar.com', data: EICAR }] });
    for (const disposition of ['attachment', 'inline'] as const) {
      const message = composeMessage({ attachments: [{ filename: 'fwd.eml', contentType: 'message/rfc822', encoding: '7bit', disposition, data: forwarded }] });
      const got = await roundTrip(message, `rfc822${disposition}`);
      assertNoEicar(got);
      assert.match(got.toString(), /removed the attachment/);
    }
  });

  test('the subject prefix is added once, with encoded and missing subjects', async () => {
    await gw.setPolicy((p) => {
      p.subjectPrefix = { enabled: true, text: '[VIRUS REMOVED]' };
    });
    try {
      const encoded = await roundTrip(composeMessage({ subject: '=?UTF-8?B?SGFsbMOzIHfDtnJsZA==?=', attachments: [{ filename: 'e.com', data: EICAR }] }), 'subj2047');
      assert.match(encoded.toString(), /^Subject: \[VIRUS REMOVED\] =\?UTF-8\?B\?SGFsbMOzIHfDtnJsZA==\?=\r$/m);

      const missing = await roundTrip(composeMessage({ subject: null, attachments: [{ filename: 'e.com', data: EICAR }] }), 'subjnone');
      assert.match(missing.toString(), /^Subject: \[VIRUS REMOVED\]\r$/m);

      const twice = await roundTrip(composeMessage({ subject: '[VIRUS REMOVED] already', attachments: [{ filename: 'e.com', data: EICAR }] }), 'subjtwice');
      assert.match(twice.toString(), /^Subject: \[VIRUS REMOVED\] already\r$/m);

      const clean = composeMessage({ subject: 'clean one' });
      assert.ok((await roundTrip(clean, 'subjclean')).equals(clean), 'a clean message is never prefixed');
    } finally {
      await gw.setPolicy((p) => {
        p.subjectPrefix.enabled = false;
      });
    }
  });
});

describe('unscannable attachments follow the policy', () => {
  const encrypted = buildZip([{ name: 'secret.txt', data: Buffer.from('top secret'), password: 'pw' }]);
  const message = () => composeMessage({ attachments: [{ filename: 'secret.zip', contentType: 'application/zip', data: encrypted }] });

  test('remove (default): the encrypted zip is replaced', async () => {
    const got = await roundTrip(message(), 'encremove');
    assertNotice(got, 'secret.zip', /could not be scanned \(encrypted/);
  });

  test('deliver: the encrypted zip passes as if clean', async () => {
    await gw.setPolicy((p) => {
      p.unscannable.action = 'deliver';
    });
    try {
      const m = message();
      assert.ok((await roundTrip(m, 'encdeliver')).equals(m));
    } finally {
      await gw.setPolicy((p) => {
        p.unscannable.action = 'remove';
      });
    }
  });
});

describe('the session is mirrored to upstream', () => {
  test('a recipient rejected upstream is rejected at RCPT, the other gets the message', async () => {
    const good = uniqueUser('rcptok');
    const r = await send([`reject-${good}@example.test`, `${good}@example.test`], composeMessage({ attachments: [{ filename: 'e.com', data: EICAR }] }));
    assert.equal(r.rcpt[0]?.[0], 550);
    assert.match(r.rcpt[0]![1], /5\.1\.1/);
    assert.equal(r.rcpt[1]?.[0], 250);
    assert.equal(r.data?.[0], 250);
    const [msg] = await waitForDelivery(gw.mailRoot, good);
    assertNoEicar(msg!);
    assert.equal((await delivered(gw.mailRoot, `reject-${good}`)).length, 0);
  });

  test('smuggling: bare LF "end of data" is canonicalised to CRLF, so upstream sees one message', async () => {
    const user = uniqueUser('smuggle');
    const { rawSession } = await import('../support/raw-smtp.js');
    const transcript = await rawSession(gw.smtp, [
      'EHLO client.example.org\r\n',
      'MAIL FROM:<a@example.org>\r\n',
      `RCPT TO:<${user}@example.test>\r\n`,
      'DATA\r\n',
      `Subject: hi\r\n\r\nbody\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<${user}-evil@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n`,
      'NOOP\r\n',
      'QUIT\r\n',
    ]);
    assert.match(transcript, /^250 .*\r\n250 .*\r\n221/m, 'one message accepted, the session still in step');
    const got = await waitForDelivery(gw.mailRoot, user);
    assert.equal(got.length, 1);
    assert.equal((await delivered(gw.mailRoot, `${user}-evil`)).length, 0, 'no smuggled second message');
    const text = got[0]!.toString('latin1');
    assert.ok(text.includes('body\r\n.\r\nMAIL FROM:<evil@example.org>\r\n'), 'the smuggled lines are plain body text, in CRLF');
    assert.ok(!/[^\r]\n/.test(text), 'only CRLF reaches upstream');
  });

  test('RSET in mid-transaction starts over upstream too: only the second envelope gets the message', async () => {
    const first = uniqueUser('rsetfirst');
    const second = uniqueUser('rsetsecond');
    const { rawSession } = await import('../support/raw-smtp.js');
    const transcript = await rawSession(gw.smtp, [
      'EHLO client.example.org\r\n',
      'MAIL FROM:<a@example.org>\r\n',
      `RCPT TO:<${first}@example.test>\r\n`,
      'RSET\r\n',
      'MAIL FROM:<b@example.org>\r\n',
      `RCPT TO:<${second}@example.test>\r\n`,
      'DATA\r\n',
      'Subject: after rset\r\n\r\nhello\r\n.\r\n',
      'QUIT\r\n',
    ]);
    assert.match(transcript, /^250 2\.6\.0 /m, transcript);
    assert.equal((await waitForDelivery(gw.mailRoot, second)).length, 1);
    assert.equal((await delivered(gw.mailRoot, first)).length, 0, 'the reset recipient must not get it');
  });

  test('a NUL byte in DATA is refused with 550, and the session stays usable', async () => {
    const user = uniqueUser('nul');
    const { rawSession } = await import('../support/raw-smtp.js');
    const transcript = await rawSession(gw.smtp, [
      'EHLO client.example.org\r\n',
      'MAIL FROM:<a@example.org>\r\n',
      `RCPT TO:<${user}@example.test>\r\n`,
      'DATA\r\n',
      'Subject: hi\r\n\r\nbad \x00 byte\r\n.\r\n',
      'NOOP\r\n',
      'QUIT\r\n',
    ]);
    assert.match(transcript, /^550 5\.6\.0 .*NUL/m);
    assert.match(transcript, /^250 .*\r\n221/m);
    assert.equal((await delivered(gw.mailRoot, user)).length, 0);
  });

  test('control characters in an address are refused with 501', async () => {
    const { rawSession } = await import('../support/raw-smtp.js');
    const transcript = await rawSession(gw.smtp, ['EHLO c.example.org\r\n', 'MAIL FROM:<a\x00b@example.org>\r\n', 'QUIT\r\n']);
    assert.match(transcript, /^5\d\d /m);
  });

  test('a message over the size limit gets 552', async () => {
    await gw.setPolicy((p) => {
      p.limits.maxMessageBytes = 4096;
    });
    try {
      const user = uniqueUser('big');
      const r = await send(`${user}@example.test`, composeMessage({ attachments: [{ filename: 'big.bin', data: Buffer.alloc(20000, 7) }] }));
      const code = r.data?.[0] ?? Number(/\((\d{3})/.exec(r.error ?? '')?.[1]);
      assert.equal(code, 552, JSON.stringify(r));
      assert.equal((await delivered(gw.mailRoot, user)).length, 0);
    } finally {
      await gw.setPolicy((p) => {
        p.limits.maxMessageBytes = 52428800;
      });
    }
  });

  test('EHLO advertises only what the gateway handles', async () => {
    const r = await send(`${uniqueUser('ehlo')}@example.test`, composeMessage());
    const caps = r.ehlo![1];
    for (const cap of ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE 52428800']) assert.ok(caps.includes(cap), `missing ${cap}`);
    for (const cap of ['STARTTLS', 'CHUNKING', 'BINARYMIME', 'SMTPUTF8', 'DSN', 'AUTH']) assert.ok(!caps.includes(cap), `must not offer ${cap}`);
  });
});

describe('outbound listener', () => {
  test('outbound mail is scanned only when the policy says so', async () => {
    const { freePort } = await import('@mailwarden/clamd');
    const { parseHostPort } = await import('@mailwarden/config');
    const listen = `127.0.0.1:${await freePort()}`;
    const svc = await gw.stack.startService('smtp-gateway', {
      SMTP_LISTEN: `127.0.0.1:${await freePort()}`,
      SMTP_OUTBOUND_LISTEN: listen,
      SMTP_OUTBOUND_UPSTREAM: gw.stack.env.SMTP_UPSTREAM,
    });
    gw.services['smtp-gateway']!.push(svc);
    const outbound = parseHostPort(listen);
    const message = composeMessage({ attachments: [{ filename: 'eicar.com', data: EICAR }] });
    const viaOutbound = async (tag: string) => {
      const user = uniqueUser(tag);
      const r = await sendWithSmtplib({ ...outbound, to: [`${user}@example.test`], message });
      assert.equal(r.data?.[0], 250, JSON.stringify(r));
      return (await waitForDelivery(gw.mailRoot, user))[0]!;
    };
    assert.ok((await viaOutbound('outoff')).equals(message), 'outbound scanning is off by default: delivered untouched');
    await gw.setPolicy((p) => {
      p.antivirus.smtpOutbound = true;
    });
    try {
      assertNoEicar(await viaOutbound('outon'));
    } finally {
      await gw.setPolicy((p) => {
        p.antivirus.smtpOutbound = false;
      });
    }
  });

  test('with scanning switched off, inbound mail is forwarded untouched', async () => {
    await gw.setPolicy((p) => {
      p.antivirus.enabled = false;
    });
    try {
      const message = composeMessage({ attachments: [{ filename: 'eicar.com', data: EICAR }] });
      assert.ok((await roundTrip(message, 'avoff')).equals(message));
    } finally {
      await gw.setPolicy((p) => {
        p.antivirus.enabled = true;
      });
    }
  });
});

describe('observability', () => {
  test('every service serves /healthz, /readyz and Prometheus metrics that count the traffic', async () => {
    await roundTrip(composeMessage({ attachments: [{ filename: 'eicar.com', data: EICAR }] }), 'metrics');
    for (const svc of [...gw.services['smtp-gateway']!, ...gw.services.reassembler!, ...gw.services.scanner!]) {
      const base = `http://${String(svc.ready.ops)}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200, `${svc.name} /healthz`);
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 200, `${svc.name} /readyz: ${await ready.text()}`);
    }
    const gwMetrics = await (await fetch(`http://${String(gw.services['smtp-gateway']![0]!.ready.ops)}/metrics`)).text();
    assert.match(gwMetrics, /^mailwarden_messages_total\{protocol="smtp",direction="inbound",outcome="delivered"\} [1-9]/m);
    const removed = await Promise.all(gw.services.reassembler!.map(async (s) => (await fetch(`http://${String(s.ready.ops)}/metrics`)).text()));
    assert.ok(removed.some((m) => /^mailwarden_removed_attachments_total\{reason="infected"\} [1-9]/m.test(m)), 'a reassembler counted the removal');
    const scanned = await Promise.all(gw.services.scanner!.map(async (s) => (await fetch(`http://${String(s.ready.ops)}/metrics`)).text()));
    assert.ok(scanned.some((m) => /^mailwarden_verdicts_total\{kind="infected"\} [1-9]/m.test(m)), 'a scanner counted the verdict');
    assert.ok(scanned.some((m) => /^mailwarden_parts_total\{protocol="smtp"\} [1-9]/m.test(m)), 'a scanner counted the parts');
  });
});

describe('scaling out', () => {
  test('two scanner workers share the jobs', async () => {
    const users = Array.from({ length: 8 }, () => uniqueUser('share'));
    const replies = await Promise.all(
      users.map((u, i) => send(`${u}@example.test`, composeMessage({ attachments: Array.from({ length: 3 }, (_, k) => ({ filename: `f${k}.bin`, data: Buffer.from(`part ${i} ${k} `.repeat(3000)) })) }))),
    );
    for (const r of replies) assert.equal(r.data?.[0], 250, JSON.stringify(r));
    const counts = gw.services.scanner!.map((s) => (s.output().match(/"event":"message.analysed"/g) ?? []).length);
    assert.ok(counts.every((c) => c > 0), `every scanner must have analysed messages, got ${counts.join(', ')}`);
  });
});
