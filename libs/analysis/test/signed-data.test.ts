import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSignedData, EICAR } from '@mailwarden/testkit';
import { signedDataContent } from '../src/signed-data.js';
import { analyse, b64, crlf, flagged } from './helpers.js';

const inner = crlf(['Content-Type: application/octet-stream; name="e.com"', 'Content-Transfer-Encoding: base64', '', b64(EICAR), '']);

describe('S/MIME signed-data', () => {
  it('unwraps the encapsulated content, DER and BER (indefinite lengths, chunked OCTET STRING)', () => {
    assert.deepEqual(signedDataContent(buildSignedData(inner, 'der')), inner);
    assert.deepEqual(signedDataContent(buildSignedData(inner, 'ber')), inner);
  });

  it('anything else, or a damaged structure, is not signed-data', () => {
    const whole = buildSignedData(inner, 'ber');
    assert.equal(signedDataContent(whole.subarray(0, whole.length - 40)), undefined);
    assert.equal(signedDataContent(Buffer.from('30 not der at all, just some bytes')), undefined);
    assert.equal(signedDataContent(EICAR), undefined);
  });

  it('an opaque-signed message with an infected attachment inside: the p7m part is flagged', async () => {
    const msg = crlf(['From: a@example.org', 'MIME-Version: 1.0', 'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"', 'Content-Transfer-Encoding: base64', '', b64(buildSignedData(inner, 'ber')), '']);
    assert.deepEqual(flagged(await analyse(msg)), ['1']);
  });
});
