// The wire transforms use native searches for speed; these tests hold them to the obvious
// byte-by-byte definition on random input cut into random chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { DotStuffer, LineEndingCanonicalizer } from '../src/index.js';

/** Deterministic pseudo-random numbers (xorshift), so a failure can be reproduced. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const ALPHABET = [0x0d, 0x0a, 0x2e, 0x41, 0x20, 0x00];
function randomBytes(r: () => number, n: number, alphabet = ALPHABET): Buffer {
  return Buffer.from(Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]!));
}
function chunks(r: () => number, buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = 1 + Math.floor(r() * 7);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}
async function run(transform: NodeJS.ReadWriteStream, parts: Buffer[]): Promise<Buffer | Error> {
  const out: Buffer[] = [];
  try {
    for await (const c of Readable.from(parts, { objectMode: false }).pipe(transform)) out.push(c as Buffer);
    return Buffer.concat(out);
  } catch (err) {
    return err as Error;
  }
}

function referenceStuff(msg: Buffer): Buffer {
  const out: number[] = [];
  let lineStart = true;
  for (let i = 0; i < msg.length; i++) {
    if (lineStart && msg[i] === 0x2e) out.push(0x2e);
    out.push(msg[i]!);
    lineStart = msg[i] === 0x0a && i > 0 && msg[i - 1] === 0x0d;
  }
  const tail = !msg.length || lineStart ? '.\r\n' : msg[msg.length - 1] === 0x0d ? '\n.\r\n' : '\r\n.\r\n';
  return Buffer.concat([Buffer.from(out), Buffer.from(tail)]);
}

test('DotStuffer equals the byte-by-byte definition on random input and chunking', async () => {
  const r = rng(42);
  for (let round = 0; round < 300; round++) {
    const msg = randomBytes(r, Math.floor(r() * 60), [0x0d, 0x0a, 0x2e, 0x41]);
    const got = await run(new DotStuffer(), chunks(r, msg));
    assert.ok(Buffer.isBuffer(got));
    assert.equal(got.toString('latin1'), referenceStuff(msg).toString('latin1'), `input ${JSON.stringify(msg.toString('latin1'))}`);
  }
});

test('LineEndingCanonicalizer turns every bare CR and bare LF into CRLF, like every SMTP client library', async () => {
  const r = rng(99);
  for (let round = 0; round < 400; round++) {
    const msg = randomBytes(r, Math.floor(r() * 40), [0x0d, 0x0a, 0x2e, 0x41]);
    const c = new LineEndingCanonicalizer();
    const got = await run(c, chunks(r, msg));
    const want = msg.toString('latin1').replace(/\r\n|\n|\r/g, '\r\n');
    assert.ok(Buffer.isBuffer(got));
    assert.equal(got.toString('latin1'), want, `input ${JSON.stringify(msg.toString('latin1'))}`);
    assert.equal(c.changed, want !== msg.toString('latin1'));
  }
  const nul = await run(new LineEndingCanonicalizer(), [Buffer.from('a\r\nb\0c')]);
  assert.ok(nul instanceof Error && /NUL/.test(nul.message));
});
