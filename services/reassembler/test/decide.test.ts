import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY, type Envelope, type Policy, type Verdict } from '@mailwarden/contracts';
import { decide, describeRemoval } from '../src/decide.js';

const envelope: Envelope = {
  ref: 'abcdefgh12',
  protocol: 'smtp',
  direction: 'inbound',
  receivedAt: new Date().toISOString(),
  mailFrom: 'a@example.org',
  rcptTo: ['b@example.test'],
  rawKey: 'raw',
  rawSize: 1,
  parts: [
    { index: 0, key: 'p0', size: 1, sha256: 'x', contentType: 'text/plain' },
    { index: 1, key: 'p1', size: 1, sha256: 'y', contentType: 'application/zip', filename: 'a.zip' },
  ],
};
const v = (part: number, kind: Verdict['kind'], extra: Partial<Verdict> = {}): Verdict => ({ ref: envelope.ref, part, parts: 2, kind, scannedAt: '', ...extra });
const policy = (action: 'remove' | 'deliver'): Policy => ({ ...DEFAULT_POLICY, unscannable: { action } });

test('infected parts are removed whatever the unscannable action', () => {
  for (const action of ['remove', 'deliver'] as const) {
    const d = decide(envelope, [v(0, 'clean'), v(1, 'infected', { detail: 'Eicar' })], policy(action));
    assert.deepEqual(d, { kind: 'deliver', removed: [{ part: 1, kind: 'infected', filename: 'a.zip', detail: 'Eicar' }] });
  }
});

test('unscannable parts follow the policy', () => {
  const verdicts = [v(0, 'clean'), v(1, 'unscannable', { reason: 'encrypted', detail: 'Heuristics.Encrypted.Zip' })];
  assert.equal((decide(envelope, verdicts, policy('remove')) as { removed: unknown[] }).removed.length, 1);
  assert.deepEqual(decide(envelope, verdicts, policy('deliver')), { kind: 'deliver', removed: [] });
});

test('an engine error is a temporary failure, never clean', () => {
  const d = decide(envelope, [v(0, 'clean'), v(1, 'error', { detail: 'clamd down' })], policy('deliver'));
  assert.equal(d.kind, 'tempfail');
});

test('the notice reason names the virus or why the file could not be scanned', () => {
  assert.match(describeRemoval({ part: 1, kind: 'infected', detail: 'Eicar-Signature' }), /infected with Eicar-Signature/);
  assert.match(describeRemoval({ part: 1, kind: 'unscannable', reason: 'encrypted' }), /encrypted/);
  assert.match(describeRemoval({ part: 1, kind: 'unscannable', reason: 'limits' }), /limits/);
  assert.match(describeRemoval({ part: 1, kind: 'unscannable', reason: 'corrupt' }), /damaged/);
});
