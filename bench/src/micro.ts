#!/usr/bin/env node
/**
 * Micro-benchmarks of per-byte hot spots found by profiling the gateway (node bench/dist/micro.js):
 * DotStuffer and the line-ending check (now LineEndingCanonicalizer) of libs/mime (native indexOf searches since abcc893) against
 * their former byte-by-byte loops (bench/src/byte-loop/). First checks that both behave
 * identically (output bytes, error kind and offset) over random inputs cut into random chunks,
 * then measures MB/s.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import { DotStuffer, LineEndingCanonicalizer } from '@mailwarden/mime';
import { ByteLoopDotStuffer } from './byte-loop/dot-stuffer.js';
import { ByteLoopBareLineEndingGuard } from './byte-loop/bare-line-ending-guard.js';

async function run(t: Transform, chunks: Buffer[]): Promise<{ out: Buffer; err?: string }> {
  const out: Buffer[] = [];
  try {
    for await (const c of Readable.from(chunks, { objectMode: false }).pipe(t)) out.push(c as Buffer);
    return { out: Buffer.concat(out) };
  } catch (err) {
    return { out: Buffer.concat(out), err: (err as Error).message };
  }
}

function randomChunks(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const len = Math.min(data.length - at, randomInt(1, 40));
    chunks.push(data.subarray(at, at + len));
    at += len;
  }
  return chunks;
}

/** Mostly CRLF text with dots at line starts; sometimes a stray CR, LF or NUL. */
function randomText(faulty: boolean): Buffer {
  const alphabet = ['a', 'b', '.', '\r\n', '\r\n', '\r\n.', '..', ' '];
  if (faulty) alphabet.push('\r', '\n', '\0');
  let s = '';
  const n = randomInt(0, 60);
  for (let i = 0; i < n; i++) s += alphabet[randomInt(0, alphabet.length)];
  return Buffer.from(s, 'latin1');
}

async function checkEquivalence(rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const clean = randomText(false);
    const chunks = randomChunks(clean);
    assert.deepEqual(await run(new DotStuffer(), chunks), await run(new ByteLoopDotStuffer(), chunks), `DotStuffer differs on ${JSON.stringify(clean.toString('latin1'))}`);
  }
}

/** A 1 MB attachment as a mail client sends it: base64 in 76-character CRLF lines, 64 KB chunks. */
function base64Message(bytes: number): Buffer[] {
  const b64 = randomBytes(bytes).toString('base64').replace(/.{76}/g, '$&\r\n');
  const data = Buffer.from(`Subject: x\r\n\r\n${b64}\r\n`, 'latin1');
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += 65536) chunks.push(data.subarray(at, at + 65536));
  return chunks;
}

async function mbPerS(make: () => Transform, chunks: Buffer[], seconds = 1.5): Promise<number> {
  const bytes = chunks.reduce((a, c) => a + c.length, 0);
  let done = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    await run(make(), chunks);
    done += bytes;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  return done / 1048576 / elapsed;
}

await checkEquivalence(20_000);
console.log('equivalence: 20000 random inputs, random chunking: identical output and errors');
const msg = base64Message(1 << 20);
const rows: [string, number][] = [];
for (const [name, make] of [
  ['DotStuffer, byte loop (before abcc893)', () => new ByteLoopDotStuffer()],
  ['DotStuffer (libs/mime)', () => new DotStuffer()],
  ['BareLineEndingGuard, byte loop (before abcc893)', () => new ByteLoopBareLineEndingGuard()],
  ['LineEndingCanonicalizer (libs/mime, replaced the guard)', () => new LineEndingCanonicalizer()],
] as const) {
  await mbPerS(make, msg, 0.3); // warm-up
  rows.push([name, await mbPerS(make, msg)]);
}
console.log('\n| transform | MB/s on a base64 1 MB message | CPU ms per MB |\n|---|---|---|');
for (const [name, r] of rows) console.log(`| ${name} | ${r.toFixed(0)} | ${(1000 / r).toFixed(2)} |`);
