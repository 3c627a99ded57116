import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyReply, formatClamdAddress, parseClamdAddress, parseClamdAddresses } from '../src/index.js';

describe('classifyReply', () => {
  const cases: Array<[string, ReturnType<typeof classifyReply>]> = [
    ['stream: OK\0', { kind: 'clean' }],
    ['stream: OK', { kind: 'clean' }],
    ['stream: OK\n', { kind: 'clean' }],
    ['stream: Win.Test.EICAR_HDB-1 FOUND\0', { kind: 'infected', signature: 'Win.Test.EICAR_HDB-1' }],
    ['stream: Mailwarden.Test.EICAR.UNOFFICIAL FOUND\0', { kind: 'infected', signature: 'Mailwarden.Test.EICAR.UNOFFICIAL' }],
    ['1: stream: Eicar-Signature FOUND\0', { kind: 'infected', signature: 'Eicar-Signature' }],
    ['stream: Heuristics.Phishing.Email.SpoofedDomain FOUND', { kind: 'infected', signature: 'Heuristics.Phishing.Email.SpoofedDomain' }],
    ['stream: Heuristics.Encrypted.Zip FOUND\0', { kind: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.Zip' }],
    ['stream: Heuristics.Encrypted.7Zip FOUND\0', { kind: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.7Zip' }],
    ['stream: Heuristics.Encrypted.PDF FOUND\0', { kind: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.PDF' }],
    ['stream: Heuristics.Broken.Executable FOUND\0', { kind: 'unscannable', reason: 'corrupt', signature: 'Heuristics.Broken.Executable' }],
    ['stream: Heuristics.Limits.Exceeded.MaxRecursion FOUND\0', { kind: 'unscannable', reason: 'limits', signature: 'Heuristics.Limits.Exceeded.MaxRecursion' }],
    ['stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0', { kind: 'unscannable', reason: 'limits', signature: 'Heuristics.Limits.Exceeded.MaxFileSize' }],
    ['INSTREAM size limit exceeded. ERROR\0', { kind: 'unscannable', reason: 'limits', signature: 'INSTREAM size limit exceeded' }],
  ];
  for (const [line, expected] of cases) {
    it(JSON.stringify(line), () => assert.deepEqual(classifyReply(line), expected));
  }

  for (const line of ["stream: Can't allocate memory ERROR\0", 'COMMAND READ TIMED OUT\0', 'UNKNOWN COMMAND\0', '', 'stream:  FOUND', 'garbage']) {
    it(`${JSON.stringify(line)} is an error`, () => assert.equal(classifyReply(line).kind, 'error'));
  }
});

describe('clamd addresses', () => {
  it('parses and formats host:port, [v6]:port and unix:/path', () => {
    assert.deepEqual(parseClamdAddress('clamd:3310'), { kind: 'tcp', host: 'clamd', port: 3310 });
    assert.deepEqual(parseClamdAddress('[::1]:3310'), { kind: 'tcp', host: '::1', port: 3310 });
    assert.deepEqual(parseClamdAddress('unix:/run/clamd.sock'), { kind: 'unix', path: '/run/clamd.sock' });
    assert.equal(formatClamdAddress({ kind: 'tcp', host: '::1', port: 3310 }), '[::1]:3310');
    assert.equal(formatClamdAddress({ kind: 'unix', path: '/run/clamd.sock' }), 'unix:/run/clamd.sock');
    assert.deepEqual(parseClamdAddresses(' a:1, ,unix:/s '), [
      { kind: 'tcp', host: 'a', port: 1 },
      { kind: 'unix', path: '/s' },
    ]);
  });

  it('rejects malformed addresses', () => {
    for (const bad of ['clamd', 'clamd:0', 'clamd:70000', 'unix:relative', ':3310', '::1:3310']) {
      assert.throws(() => parseClamdAddress(bad), /invalid clamd address/, bad);
    }
  });
});
