// The wire transforms use native searches for speed; these tests hold them to the obvious
// byte-by-byte definition on random input cut into random chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { BareLineEndingGuard, DotStuffer } from '../src/index.js';

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

function referenceGuard(msg: Buffer): { what: string; offset: number } | undefined {
  for (let i = 0; i < msg.length; i++) {
    const b = msg[i];
    if (b === 0x0d && msg[i + 1] !== 0x0a) return { what: 'bare CR', offset: i };
    if (b === 0x0a && (i === 0 || msg[i - 1] !== 0x0d)) return { what: 'bare LF', offset: i };
    if (b === 0x00) return { what: 'NUL', offset: i };
  }
  return undefined;
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

test('BareLineEndingGuard reports the first offending byte, like the byte-by-byte definition', async () => {
  const r = rng(7);
  for (let round = 0; round < 500; round++) {
    // Mostly well-formed lines with an occasional stray byte.
    const lines = Array.from({ length: 1 + Math.floor(r() * 5) }, () => Buffer.concat([randomBytes(r, Math.floor(r() * 6), [0x41, 0x2e, 0x20]), Buffer.from('\r\n')]));
    let msg = Buffer.concat(lines);
    if (r() < 0.6) {
      const at = Math.floor(r() * (msg.length + 1));
      msg = Buffer.concat([msg.subarray(0, at), randomBytes(r, 1, [0x0d, 0x0a, 0x00]), msg.subarray(at)]);
    }
    const got = await run(new BareLineEndingGuard(), chunks(r, msg));
    const want = referenceGuard(msg);
    const label = JSON.stringify(msg.toString('latin1'));
    if (!want) assert.ok(Buffer.isBuffer(got) && got.equals(msg), `accepted unchanged: ${label}`);
    else {
      assert.ok(got instanceof Error, `must refuse ${label}`);
      assert.deepEqual({ what: (got as Error & { what: string }).what, offset: (got as Error & { offset: number }).offset }, want, label);
    }
  }
});
