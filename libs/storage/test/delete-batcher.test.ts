import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteBatcher } from '../src/delete-batcher.js';

test('deletes from many callers go out in one request', async () => {
  const calls: string[][] = [];
  const b = new DeleteBatcher(async (keys) => void calls.push(keys), 20);
  await Promise.all([b.add(['a', 'b']), b.add(['c']), b.add([])]);
  assert.deepEqual(calls, [['a', 'b', 'c']]);
});

test('a full batch goes at once, in chunks of at most maxKeys', async () => {
  const calls: string[][] = [];
  const b = new DeleteBatcher(async (keys) => void calls.push(keys), 10_000, 2);
  await b.add(['a', 'b', 'c']);
  assert.deepEqual(calls, [['a', 'b'], ['c']]);
});

test('a failed request fails every caller of its batch, and later batches still run', async () => {
  let fail = true;
  const b = new DeleteBatcher(async () => {
    if (fail) throw new Error('s3 down');
  }, 5);
  await assert.rejects(Promise.all([b.add(['a']), b.add(['b'])]), /s3 down/);
  fail = false;
  await b.add(['c']);
});
