import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { extractParts, rebuildMessage } from '../src/index.js';

const ATTACHMENT_BYTES = 30 * 1024 * 1024;
/** A leak detector, not a benchmark: the bound is generous on purpose. */
const MAX_RSS_GROWTH = 100 * 1024 * 1024;

/** A message with a text part and a 30 MB pseudo-random base64 attachment, generated on demand. */
function bigMessage(): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let digest = '';
  function* generate(): Generator<Buffer> {
    yield Buffer.from(
      'From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="big"\r\n\r\n' +
        '--big\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n' +
        '--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="big.bin"\r\n\r\n',
    );
    let state = 12345;
    const raw = Buffer.alloc(57 * 1024); // a multiple of 57 bytes = 76 base64 chars
    for (let sent = 0; sent < ATTACHMENT_BYTES; sent += raw.length) {
      for (let i = 0; i < raw.length; i++) {
        state = (state * 1103515245 + 12345) >>> 0;
        raw[i] = state >>> 24;
      }
      hash.update(raw);
      yield Buffer.from(raw.toString('base64').replace(/.{76}/g, '$&\r\n'));
    }
    digest = hash.digest('hex');
    yield Buffer.from('--big--\r\n');
  }
  return { stream: Readable.from(generate()), digest: () => digest };
}

function rssWatcher(): { peakGrowth: () => number; stop: () => void } {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  return {
    peakGrowth: () => Math.max(peak, process.memoryUsage().rss) - base,
    stop: () => clearInterval(timer),
  };
}

describe('memory stays bounded', () => {
  it('extractParts on a 30 MB attachment', async () => {
    const { stream, digest } = bigMessage();
    const watch = rssWatcher();
    const digests: string[] = [];
    try {
      const result = await extractParts(stream, async (_leaf, decoded) => {
        const hash = createHash('sha256');
        await pipeline(
          decoded,
          new Writable({
            write(chunk: Buffer, _enc, cb) {
              hash.update(chunk);
              setImmediate(cb); // a consumer a bit slower than memory
            },
          }),
        );
        digests.push(hash.digest('hex'));
      });
      assert.equal(result.leaves, 2);
    } finally {
      watch.stop();
    }
    assert.equal(digests[1], digest());
    assert.ok(watch.peakGrowth() < MAX_RSS_GROWTH, `RSS grew by ${(watch.peakGrowth() / 1048576).toFixed(1)} MB`);
  });

  it('rebuildMessage on a 30 MB attachment, replaced and kept', async () => {
    for (const replace of [new Map([[1, { noticeText: 'removed', noticeFilename: 'big.bin.txt' }]]), new Map()]) {
      const { stream } = bigMessage();
      const watch = rssWatcher();
      let bytes = 0;
      try {
        await pipeline(
          rebuildMessage(stream, { replace }),
          new Writable({
            write(chunk: Buffer, _enc, cb) {
              bytes += chunk.length;
              setImmediate(cb);
            },
          }),
        );
      } finally {
        watch.stop();
      }
      if (replace.size) assert.ok(bytes < 2000, `rebuilt ${bytes} bytes`);
      else assert.ok(bytes > ATTACHMENT_BYTES, `rebuilt ${bytes} bytes`);
      assert.ok(watch.peakGrowth() < MAX_RSS_GROWTH, `RSS grew by ${(watch.peakGrowth() / 1048576).toFixed(1)} MB`);
    }
  });
});
