import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY, type MessagePart, type MessageVerdict, type PartVerdict, type Policy } from '@mailwarden/contracts';
import { decide, describeRemoval } from '../src/decide.js';

const part = (path: string, start: number, end: number, verdict: PartVerdict, extra: Partial<MessagePart> = {}): MessagePart => ({
  path,
  kind: 'leaf',
  range: { start, end },
  headerEnd: start + 10,
  contentType: 'application/octet-stream',
  size: 1,
  sha256: 'x',
  verdict,
  ...extra,
});
const message = (parts: MessagePart[], outcome: MessageVerdict['outcome'] = 'scanned', protocol: 'smtp' | 'pop3' = 'smtp'): MessageVerdict => ({
  envelope: { ref: 'abcdefgh12', protocol, direction: 'inbound', receivedAt: '', mailFrom: 'a@example.org', rcptTo: ['b@example.test'], rawKey: 'raw', rawSize: 1000, rawSha256: '0'.repeat(64) },
  outcome,
  rootHeader: { start: 0, end: 50 },
  parts,
  scans: parts.length,
  scannedAt: '',
});
const policy = (action: 'remove' | 'deliver'): Policy => ({ ...DEFAULT_POLICY, unscannable: { action } });
const root = part('1', 0, 1000, { kind: 'clean' }, { kind: 'container' });

test('infected parts are removed whatever the unscannable action', () => {
  for (const action of ['remove', 'deliver'] as const) {
    const d = decide(message([root, part('1.1', 60, 100, { kind: 'clean' }), part('1.2', 110, 900, { kind: 'infected', detail: 'Eicar' }, { filename: 'a.zip' })]), policy(action));
    assert.equal(d.kind, 'deliver');
    assert.deepEqual(d.kind === 'deliver' && d.removed.map(({ node: _n, ...r }) => r), [{ part: '1.2', kind: 'infected', filename: 'a.zip', detail: 'Eicar' }]);
  }
});

test('unscannable parts follow the policy', () => {
  const parts = [root, part('1.1', 60, 100, { kind: 'clean' }), part('1.2', 110, 900, { kind: 'unscannable', reason: 'encrypted', detail: 'Heuristics.Encrypted.Zip' })];
  assert.equal((decide(message(parts), policy('remove')) as { removed: unknown[] }).removed.length, 1);
  assert.deepEqual(decide(message(parts), policy('deliver')), { kind: 'deliver', removed: [] });
});

test('a part inside a removed part goes with it: one notice, for the outer one', () => {
  const d = decide(message([root, part('1.2', 110, 900, { kind: 'infected', detail: 'A' }), part('1.2.run1', 200, 300, { kind: 'infected', detail: 'A' }, { kind: 'region' })]), policy('remove'));
  assert.deepEqual(d.kind === 'deliver' && d.removed.map((r) => r.part), ['1.2']);
});

test('an engine error is a temporary failure, never clean', () => {
  assert.equal(decide(message([root, part('1.2', 110, 900, { kind: 'error', detail: 'clamd down' })]), policy('deliver')).kind, 'tempfail');
  assert.equal(decide(message([], 'error'), policy('deliver')).kind, 'tempfail');
});

test('a message over the analysis limits is refused over SMTP and reduced to a notice over POP3', () => {
  assert.equal(decide(message([], 'rejected'), policy('deliver')).kind, 'reject');
  const pop = decide(message([], 'rejected', 'pop3'), policy('deliver'));
  assert.equal(pop.kind, 'deliver');
  assert.deepEqual(pop.kind === 'deliver' && pop.removed[0]?.node.range, { start: 0, end: 1000 });
});

test('the notice reason names the virus or why the file could not be scanned', () => {
  assert.match(describeRemoval({ part: '1', kind: 'infected', detail: 'Eicar-Signature' }), /infected with Eicar-Signature/);
  assert.match(describeRemoval({ part: '1', kind: 'unscannable', reason: 'encrypted' }), /encrypted/);
  assert.match(describeRemoval({ part: '1', kind: 'unscannable', reason: 'limits' }), /limits/);
  assert.match(describeRemoval({ part: '1', kind: 'unscannable', reason: 'corrupt' }), /damaged/);
});
