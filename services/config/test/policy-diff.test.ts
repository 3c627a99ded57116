import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY } from '@mailwarden/contracts';
import { diffPolicies, parseIfMatch } from '../src/index.js';

test('diffPolicies lists changed leaves by dotted path', () => {
  const after = structuredClone(DEFAULT_POLICY);
  after.tls.pop3 = 'terminate';
  after.limits.maxMessageBytes = 1024;
  assert.deepEqual(diffPolicies(DEFAULT_POLICY, after), [
    { path: 'tls.pop3', old: 'strip', new: 'terminate' },
    { path: 'limits.maxMessageBytes', old: 52428800, new: 1024 },
  ]);
  assert.deepEqual(diffPolicies(DEFAULT_POLICY, structuredClone(DEFAULT_POLICY)), []);
  assert.deepEqual(diffPolicies({ a: { b: 1 } }, { a: { c: 2 } }), [
    { path: 'a.b', old: 1 },
    { path: 'a.c', new: 2 },
  ]);
});

test('parseIfMatch', () => {
  assert.equal(parseIfMatch(undefined), undefined);
  assert.equal(parseIfMatch('*'), undefined);
  assert.equal(parseIfMatch('"12"'), 12);
  assert.equal(parseIfMatch('W/"12"'), 12);
  assert.equal(parseIfMatch('12'), 12);
  assert.equal(parseIfMatch('"abc"'), -1);
  assert.equal(parseIfMatch('"1", "2"'), -1);
});
