import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MemoryBudget, SmallCopy } from '../src/small-copy.js';

test('keeps a message under the limit, byte for byte', async () => {
  const parts = [Buffer.from('Subject: x\r\n\r\n'), Buffer.alloc(1000, 0x41)];
  const copy = new SmallCopy(4096);
  await pipeline(Readable.from(parts), copy);
  assert.ok(copy.copy?.equals(Buffer.concat(parts)));
});

test('keeps nothing for a larger message, and never holds more than the limit', async () => {
  const copy = new SmallCopy(4096);
  await pipeline(Readable.from([Buffer.alloc(3000), Buffer.alloc(3000), Buffer.alloc(3000)]), copy);
  assert.equal(copy.copy, undefined);
});

test('no copy before the message is complete', () => {
  const copy = new SmallCopy(4096);
  copy.write(Buffer.from('partial'));
  assert.equal(copy.copy, undefined);
});

test('a failing message destroys the copy without an unhandled error', async () => {
  const copy = new SmallCopy(4096);
  copy.destroy(new Error('bare LF'));
  await new Promise((r) => setImmediate(r));
  assert.equal(copy.copy, undefined);
});

test('copies share a process-wide budget: a message that does not fit has no copy, a release gives the bytes back', async () => {
  const budget = new MemoryBudget(5000);
  const a = new SmallCopy(4096, budget);
  await pipeline(Readable.from([Buffer.alloc(3000)]), a);
  const b = new SmallCopy(4096, budget);
  await pipeline(Readable.from([Buffer.alloc(3000)]), b);
  assert.equal(a.copy?.length, 3000);
  assert.equal(b.copy, undefined, 'over the budget: no copy');
  assert.equal(budget.inUse, 3000, 'what b took for a while was given back');
  a.release();
  a.release();
  assert.equal(budget.inUse, 0);
  const c = new SmallCopy(4096, budget);
  await pipeline(Readable.from([Buffer.alloc(3000)]), c);
  assert.equal(c.copy?.length, 3000);
});
