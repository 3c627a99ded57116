/**
 * A large message is analysed by range: the scanner never holds it whole. An object store in
 * memory serves ranged reads (and counts them); the engine streams each content, keeping only a
 * small window, so what the process holds is the analysis' own memory.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { analyzeMessage } from '@mailwarden/analysis';
import { EICAR } from '@mailwarden/testkit';
import type { ObjectStore } from '@mailwarden/storage';
import { RangeSource } from '../src/range-source.js';

class RangeStore implements Pick<ObjectStore, 'getRange'> {
  ranges = 0;
  constructor(private readonly bytes: Buffer) {}
  async getRange(_key: string, start: number, end: number): Promise<Readable> {
    this.ranges++;
    return Readable.from([this.bytes.subarray(start, end)]);
  }
}

/** Finds EICAR in a stream without holding it (a window across chunk boundaries). */
async function streamingEngine(c: { open(): Readable }): Promise<{ kind: 'clean' } | { kind: 'infected'; detail: string }> {
  let tail = Buffer.alloc(0);
  for await (const chunk of c.open()) {
    const window = Buffer.concat([tail, chunk as Buffer]);
    if (window.includes(EICAR)) return { kind: 'infected', detail: 'Eicar' };
    tail = window.subarray(Math.max(0, window.length - EICAR.length));
  }
  return { kind: 'clean' };
}

test('a 40 MB message is analysed by range with bounded memory; the payload at its end is found', async () => {
  const attachment = Buffer.concat([Buffer.alloc(30 * 1024 * 1024, 0x41), EICAR]);
  const message = Buffer.from(
    [
      'From: a@example.org',
      'Content-Type: multipart/mixed; boundary=b',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'clean text',
      '--b',
      'Content-Type: application/octet-stream; name=big.bin',
      'Content-Transfer-Encoding: base64',
      '',
      attachment.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '--b--',
      '',
    ].join('\r\n'),
  );
  const store = new RangeStore(message);
  // the message's building strings are garbage by now: collect them so the baseline is honest
  setFlagsFromString('--expose_gc');
  (runInNewContext('gc') as () => void)();
  // heap + buffers, not RSS: the allocator keeps freed pages, so RSS would measure the test's setup
  const held = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = held();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, held())), 10);
  try {
    const source = new RangeSource(store as unknown as ObjectStore, 'raw.eml', message.length);
    const a = await analyzeMessage(source, { scan: streamingEngine });
    assert.deepEqual(
      a.parts.filter((p) => p.verdict.kind !== 'clean').map((p) => p.path),
      ['1.2'],
    );
    assert.equal(a.parts.find((p) => p.path === '1.2')?.size, attachment.length);
  } finally {
    clearInterval(sampler);
  }
  const growth = (peak - before) / 1024 / 1024;
  console.log(`memory growth ${growth.toFixed(1)} MB, ${store.ranges} ranged reads`);
  assert.ok(growth < 64, `memory grew by ${growth.toFixed(1)} MB while analysing a ${(message.length / 1024 / 1024).toFixed(0)} MB message`);
  assert.ok(store.ranges > 0);
});
