import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { topLines } from '../src/top-lines.js';

const MSG = Buffer.from('From: a\r\nSubject: s\r\n\r\nbody 1\r\nbody 2\r\n\r\nbody 4\r\n');

async function top(message: Buffer, n: number, chunk = message.length): Promise<string> {
  const parts: Buffer[] = [];
  for (let i = 0; i < message.length; i += chunk) parts.push(message.subarray(i, i + chunk));
  const out: Buffer[] = [];
  for await (const b of topLines(Readable.from(parts), n)) out.push(b);
  return Buffer.concat(out).toString();
}

test('header, blank line and n body lines, whatever the chunking', async () => {
  for (const chunk of [1, 2, 3, 7, 1000]) {
    assert.equal(await top(MSG, 0, chunk), 'From: a\r\nSubject: s\r\n\r\n');
    assert.equal(await top(MSG, 1, chunk), 'From: a\r\nSubject: s\r\n\r\nbody 1\r\n');
    assert.equal(await top(MSG, 3, chunk), 'From: a\r\nSubject: s\r\n\r\nbody 1\r\nbody 2\r\n\r\n');
    assert.equal(await top(MSG, 99, chunk), MSG.toString());
  }
});

test('a message without a body gives its header; an empty header works', async () => {
  assert.equal(await top(Buffer.from('From: a\r\nSubject: s\r\n'), 0), 'From: a\r\nSubject: s\r\n');
  assert.equal(await top(Buffer.from('\r\nonly body\r\nmore\r\n'), 1), '\r\nonly body\r\n');
});

test('stops reading the source at the cut', async () => {
  let pulled = 0;
  const source = new Readable({
    read() {
      pulled++;
      this.push(pulled === 1 ? Buffer.from('A: b\r\n\r\nline\r\n') : Buffer.alloc(1024, 0x78));
      if (pulled > 1000) this.push(null);
    },
  });
  const out: Buffer[] = [];
  for await (const b of topLines(source, 1)) out.push(b);
  assert.equal(Buffer.concat(out).toString(), 'A: b\r\n\r\nline\r\n');
  assert.ok(pulled < 50);
  assert.ok(source.destroyed);
});
