import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Tee } from '../src/tee.js';

const collect = async (s: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

test('both outputs get every byte, even when one is read long after the tee finished', async () => {
  // Regression: autoDestroy after finish destroyed an output still holding unread data.
  const data = Buffer.alloc(200_000, 1);
  const fast = new PassThrough();
  // Big enough to take everything, so the tee finishes before anyone reads it.
  const slow = new PassThrough({ highWaterMark: 1 << 20 });
  const fastDone = collect(fast);
  await pipeline(Readable.from([data]), new Tee([fast, slow]));
  const [a, b] = await Promise.all([fastDone, collect(slow)]);
  assert.equal(a.length, data.length);
  assert.equal(b.length, data.length);
});

test('the slower output sets the pace (backpressure, bounded buffering)', async () => {
  const fast = new PassThrough();
  const slow = new PassThrough({ highWaterMark: 1024 });
  let produced = 0;
  const source = new Readable({
    read() {
      produced += 1024;
      this.push(produced > 1_000_000 ? null : Buffer.alloc(1024));
    },
  });
  void collect(fast);
  const done = pipeline(source, new Tee([fast, slow]));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(produced < 200_000, `read ${produced} bytes although one output was never read`);
  void collect(slow);
  await done;
});

test('an error reaches the outputs', async () => {
  const out = new PassThrough();
  const failing = new Readable({
    read() {
      this.destroy(new Error('boom'));
    },
  });
  const reading = collect(out);
  await assert.rejects(pipeline(failing, new Tee([out])), /boom/);
  await assert.rejects(reading, /boom/);
});
