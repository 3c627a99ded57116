import assert from 'node:assert/strict';
import { EICAR } from '@mailwarden/testkit';

const EICAR_B64_HEAD = EICAR.toString('base64').slice(0, 40);

/** Neither the EICAR bytes nor their base64 form may reach the recipient. */
export function assertNoEicar(message: Buffer): void {
  assert.ok(!message.includes(EICAR), 'EICAR bytes were delivered');
  assert.ok(!message.includes(EICAR_B64_HEAD), 'base64-encoded EICAR was delivered');
}

export function assertNotice(message: Buffer, filename: string, reason: RegExp): void {
  const text = message.toString('latin1').replace(/=\r\n/g, '');
  assert.ok(text.includes(`removed the attachment "${filename}"`), `no notice naming ${filename} in:\n${text.slice(0, 3000)}`);
  assert.match(text, reason);
}
