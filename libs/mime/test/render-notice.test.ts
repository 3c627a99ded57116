import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_NOTICE_TEMPLATE } from '@mailwarden/contracts';
import { decodeSubject, renderNotice } from '../src/index.js';

describe('renderNotice', () => {
  const vars = { filename: 'invoice.exe', reason: 'Win.Trojan.Agent', date: '2024-01-01T00:00:00Z', ref: 'abc12345' };

  it('fills the placeholders and leaves unknown ones', () => {
    assert.equal(
      renderNotice('{filename} removed ({reason}) on {date}, ref {ref}. {unknown} {filename}', vars),
      'invoice.exe removed (Win.Trojan.Agent) on 2024-01-01T00:00:00Z, ref abc12345. {unknown} invoice.exe',
    );
  });

  it('normalises line endings to CRLF, in the template and in values', () => {
    assert.equal(renderNotice('a\nb\r\nc\rd\n\n{reason}', { ...vars, reason: 'x\ny' }), 'a\r\nb\r\nc\r\nd\r\n\r\nx\r\ny');
  });

  it('does not expand placeholders found in values', () => {
    assert.equal(renderNotice('{filename}|{ref}', { ...vars, filename: '{ref}' }), '{ref}|abc12345');
  });

  it('{recovery} and {retentionDays} follow the quarantine retention: no promise when nothing is kept', () => {
    const kept = renderNotice(DEFAULT_NOTICE_TEMPLATE, { ...vars, retentionDays: 30 });
    assert.match(kept, /quote the message reference if you need the original attachment: it is kept for 30 days\./);
    assert.equal(renderNotice('{retentionDays}', { ...vars, retentionDays: 0.5 }), '0.5');
    const none = renderNotice(DEFAULT_NOTICE_TEMPLATE, { ...vars, retentionDays: 0 });
    assert.match(none, /was not kept and cannot be recovered/);
    assert.doesNotMatch(none, /original attachment:|quote the message reference/);
  });
});

describe('decodeSubject', () => {
  it('decodes encoded-words, unfolds, tolerates unknown charsets', () => {
    assert.equal(decodeSubject(undefined), undefined);
    assert.equal(decodeSubject(' =?UTF-8?B?R3LDvMOfZQ==?=\r\n =?ISO-8859-1?Q?_=E0_vous?='), 'Grüße à vous');
    assert.equal(decodeSubject('plain'), 'plain');
    assert.equal(typeof decodeSubject('=?x-unknown?Q?abc?= rest'), 'string');
  });
});
