import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityCommand, parseClientIdentityMode, xtext, type ClientIdentity } from '../src/client-identity.js';

const id: ClientIdentity = { ADDR: 'IPV6:2001:db8::1', NAME: '[UNAVAILABLE]', PROTO: 'ESMTP', HELO: 'odd name+=é' };

test('xtext (RFC 3461): +, =, space, controls and non-ASCII become +HH', () => {
  assert.equal(xtext('mail.example.org'), 'mail.example.org');
  assert.equal(xtext('a+b=c d\r'), 'a+2Bb+3Dc+20d+0D');
  assert.equal(xtext('é'), '+C3+A9');
});

test('only the attributes upstream listed are sent, in a fixed order', () => {
  assert.equal(identityCommand('XCLIENT', id, 'NAME ADDR PROTO HELO LOGIN'), 'XCLIENT ADDR=IPV6:2001:db8::1 NAME=[UNAVAILABLE] PROTO=ESMTP HELO=odd+20name+2B+3D+C3+A9');
  assert.equal(identityCommand('XFORWARD', id, 'addr'), 'XFORWARD ADDR=IPV6:2001:db8::1');
  assert.equal(identityCommand('XFORWARD', id, 'SOURCE IDENT'), '');
});

test('SMTP_UPSTREAM_XCLIENT accepts auto and off only', () => {
  assert.equal(parseClientIdentityMode(''), 'auto');
  assert.equal(parseClientIdentityMode('OFF'), 'off');
  assert.throws(() => parseClientIdentityMode('on'), /SMTP_UPSTREAM_XCLIENT/);
});
