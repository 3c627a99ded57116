import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildDsn, retryDelay, statusOf } from '../src/delivery/index.js';

test('a DSN is an RFC 3464 multipart/report: a notification, one delivery-status block per failed recipient, the original headers', () => {
  const dsn = buildDsn({
    hostname: 'mx.example.com',
    ref: 'abc123def456',
    dsnRef: 'abc123def456b1',
    sender: 'alice@example.org',
    receivedAt: '2026-12-01T10:00:00.000Z',
    upstream: '10.0.0.5:25',
    failed: [
      { recipient: 'nobody@example.test', code: 550, reply: '550 5.1.1 <nobody@example.test>: User unknown' },
      { recipient: 'slow@example.test', code: 0, reply: '4.4.7 delivery time expired; last: connection refused' },
    ],
    headers: Buffer.from('From: alice@example.org\r\nSubject: Quarterly report\r\n'),
  }).toString('latin1');
  const [head, ...rest] = dsn.split('\r\n\r\n');
  assert.match(head!, /^From: Mail Delivery System <MAILER-DAEMON@mx\.example\.com>\r\n/);
  assert.match(head!, /\r\nTo: <alice@example\.org>\r\n/);
  assert.match(head!, /\r\nAuto-Submitted: auto-replied\r\n/);
  const boundary = /boundary="([^"]+)"/.exec(head!)?.[1];
  assert.ok(boundary);
  assert.match(head!, /Content-Type: multipart\/report; report-type=delivery-status;/);
  const body = rest.join('\r\n\r\n');
  assert.equal(body.split(`--${boundary}\r\n`).length - 1, 3, 'three parts');
  assert.ok(body.endsWith(`--${boundary}--\r\n`));
  assert.match(body, /Reporting-MTA: dns; mx\.example\.com\r\nX-Mailwarden-Ref: abc123def456\r\nArrival-Date: /);
  assert.match(body, /Final-Recipient: rfc822; nobody@example\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; 10\.0\.0\.5:25\r\nDiagnostic-Code: smtp; 550 5\.1\.1/);
  assert.match(body, /Final-Recipient: rfc822; slow@example\.test\r\nAction: failed\r\nStatus: 4\.4\.7\r\nRemote-MTA: dns; 10\.0\.0\.5:25\r\n\r\n/);
  assert.match(body, /Content-Type: text\/rfc822-headers[^]*Subject: Quarterly report/);
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(dsn), 'CRLF only');
});

test('header injection through a reply or an address is neutralised', () => {
  const dsn = buildDsn({ hostname: 'mx', ref: 'r1234567', dsnRef: 'r1234567b1', sender: 'a@b\r\nBcc: evil@x', receivedAt: new Date().toISOString(), upstream: 'u:25', failed: [{ recipient: 'x@y', code: 550, reply: '550 no\r\nEvil: yes' }], headers: Buffer.from('Subject: s\r\n') }).toString('latin1');
  assert.ok(!/^Bcc:/m.test(dsn));
  assert.ok(!/^Evil:/m.test(dsn));
});

test('status codes: the reply\'s enhanced code, else one from its class', () => {
  assert.equal(statusOf({ recipient: 'a', code: 550, reply: '550 5.7.1 rejected' }), '5.7.1');
  assert.equal(statusOf({ recipient: 'a', code: 554, reply: '554 no' }), '5.0.0');
  assert.equal(statusOf({ recipient: 'a', code: 0, reply: 'connection refused' }), '4.4.7');
});

test('retry waits double from the minimum up to the maximum', () => {
  const mid = 0.5; // no jitter
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelay(n, 60_000, 3_600_000, mid)), [60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000]);
  assert.ok(retryDelay(1, 60_000, 3_600_000, 0) >= 54_000 && retryDelay(1, 60_000, 3_600_000, 1) <= 66_000, 'jitter within 10 %');
  assert.equal(retryDelay(1000, 1000, 5000, mid), 5000);
});
