import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { LINE_PEEK } from '../src/line-reader.js';
import { readLines, type ByteSource, type Line } from '../src/index.js';

/** A source that answers every read with at most `max` bytes (as a ranged store may), to put block ends everywhere. */
class ChoppySource implements ByteSource {
  constructor(
    private readonly bytes: Buffer,
    private readonly max: () => number,
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  read(start: number, end: number): Promise<Buffer> {
    return Promise.resolve(this.bytes.subarray(start, Math.min(end, start + this.max())));
  }
  stream(start: number, end: number): Readable {
    return Readable.from([this.bytes.subarray(start, end)]);
  }
}

/** The definition: split at LF, a CR before it belongs to the break. */
function naive(bytes: Buffer, start: number, end: number): Line[] {
  const out: Line[] = [];
  let s = start;
  for (let i = start; i < end; i++) {
    if (bytes[i] !== 0x0a) continue;
    const e = i > s && bytes[i - 1] === 0x0d ? i - 1 : i;
    out.push({ start: s, end: e, next: i + 1, text: bytes.subarray(s, Math.min(e, s + LINE_PEEK)) });
    s = i + 1;
  }
  if (s < end) out.push({ start: s, end, next: end, text: bytes.subarray(s, Math.min(end, s + LINE_PEEK)) });
  return out;
}

test('readLines agrees with the definition whatever the block boundaries (CRLF, bare LF, CR at a block end, long lines)', async () => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pieces = ['a\r\n', '\r\n', '\n', 'b\rc\n', '\r', 'x'.repeat(5000) + '\r\n', '--b\r\n', 'end'];
  for (let round = 0; round < 50; round++) {
    const bytes = Buffer.from(Array.from({ length: 40 }, () => pieces[rnd(pieces.length)]).join(''), 'latin1');
    const start = rnd(5);
    const end = bytes.length - rnd(5);
    const got: Line[] = [];
    for await (const lines of readLines(new ChoppySource(bytes, () => 1 + rnd(9)), start, end)) got.push(...lines);
    const want = naive(bytes, start, end);
    assert.equal(got.length, want.length, `round ${round}: line count`);
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual([got[i]!.start, got[i]!.end, got[i]!.next], [want[i]!.start, want[i]!.end, want[i]!.next], `round ${round} line ${i}`);
      assert.ok(got[i]!.text.equals(want[i]!.text), `round ${round} line ${i} text`);
    }
  }
});
