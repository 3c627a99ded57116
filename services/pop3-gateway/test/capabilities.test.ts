import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterCapabilities, hasCapability } from '../src/capabilities.js';

test('keeps what the proxy handles, drops STLS, PIPELINING and anything unknown', () => {
  // Dovecot 2.3's list before login, plus a few from other servers.
  const upstream = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS', 'USER', 'SASL PLAIN LOGIN', 'UTF8 USER', 'LANG', 'IMPLEMENTATION Dovecot', 'EXPIRE NEVER', 'LOGIN-DELAY 900', 'X-FOO'];
  assert.deepEqual(filterCapabilities(upstream), ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN', 'EXPIRE NEVER', 'LOGIN-DELAY 900']);
  assert.deepEqual(filterCapabilities(['top', 'stls']), ['top']);
});

test('STLS is the session’s decision: appended last when offered, upstream’s own line never relayed', () => {
  assert.deepEqual(filterCapabilities(['STLS', 'TOP', 'USER'], { stls: true }), ['TOP', 'USER', 'STLS']);
  assert.deepEqual(filterCapabilities(['TOP', 'USER'], { stls: true }), ['TOP', 'USER', 'STLS']);
  assert.deepEqual(filterCapabilities(['STLS', 'TOP'], { stls: false }), ['TOP']);
  assert.equal(hasCapability(['TOP', 'stls'], 'STLS'), true);
  assert.equal(hasCapability(['TOP', 'STLSX'], 'STLS'), false);
  assert.equal(hasCapability(undefined, 'STLS'), false);
});
