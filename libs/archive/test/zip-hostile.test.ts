/** Hostile zips: bombs, huge directories, random damage. The check must stay bounded and never throw. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { EICAR } from '@mailwarden/testkit';
import { checkArchive } from '../src/index.js';
import { buildZip, patch, prng } from './zip-builder.js';

const MB = 1024 * 1024;

/** A deflate stream of `mb` MB of zeros (~1 KB per MB) built without holding the zeros: independent blocks. */
function zeroBomb(mb: number): { data: Buffer; crc: number; size: number } {
  const zeros = Buffer.alloc(MB);
  const block = zlib.deflateRawSync(zeros, { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const final = zlib.deflateRawSync(Buffer.alloc(0));
  let crc = 0;
  for (let i = 0; i < mb; i++) crc = zlib.crc32(zeros, crc);
  return { data: Buffer.concat([...Array.from({ length: mb }, () => block), final]), crc, size: mb * MB };
}

/** A one-member zip whose deflated data and declared CRC/size are given. */
function bombZip(bomb: { data: Buffer; crc: number; size: number }, declaredSize = bomb.size): Buffer {
  const b = buildZip([{ name: 'zeros.bin', data: bomb.data, method: 8 }]);
  // The builder stored `data` raw under method 8: write the real CRC and sizes in both headers.
  const fields = Buffer.alloc(12);
  fields.writeUInt32LE(bomb.crc, 0);
  fields.writeUInt32LE(bomb.data.length, 4);
  fields.writeUInt32LE(declaredSize, 8);
  return patch(patch(b.zip, 14, fields), (b.centrals[0] as number) + 16, fields);
}

test('zip bomb (200 MB of zeros): intact, not inflated past the limits, quick', { skip: !zlib.crc32 && 'needs zlib.crc32' }, () => {
  const bomb = zeroBomb(200);
  const zip = bombZip(bomb);
  const started = Date.now();
  const r = checkArchive(zip);
  assert.deepEqual(r, { format: 'zip', status: 'intact', members: [] }); // over maxMemberBytes: CRC not checked
  assert.ok(Date.now() - started < 2000);
  // Within the limits it is verified for real.
  const small = zeroBomb(20);
  assert.equal(checkArchive(bombZip(small))?.status, 'intact');
  assert.equal(checkArchive(bombZip({ ...small, crc: small.crc ^ 1 }))?.status, 'corrupt');
});

test('a bomb that lies about its size, or sits behind a broken header, is cut at the limits', { skip: !zlib.crc32 && 'needs zlib.crc32' }, () => {
  const bomb = zeroBomb(200);
  const limits = { maxMemberBytes: 8 * MB, maxTotalBytes: 12 * MB };
  const lying = checkArchive(bombZip(bomb, 1000), limits);
  assert.equal(lying?.status, 'corrupt');
  assert.match(lying?.detail ?? '', /inflates to more than its declared 1000 bytes/);
  const broken = patch(bombZip(bomb), 0, [0, 0, 0, 0]);
  const before = process.memoryUsage().arrayBuffers;
  const r = checkArchive(broken, limits);
  assert.equal(r?.status, 'corrupt');
  const total = (r?.members ?? []).reduce((n, m) => n + m.content.length, 0);
  assert.ok(total <= limits.maxTotalBytes && total > 0, `recovered ${total} bytes`);
  for (const m of r?.members ?? []) assert.ok(m.content.length <= limits.maxMemberBytes);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * MB);
});

test('a 200 000-entry central directory is checked in bounded time', () => {
  const entries = Array.from({ length: 200_000 }, (_, i) => ({ name: `f${i}`, data: Buffer.alloc(0), method: 'store' as const }));
  const { zip, centrals } = buildZip(entries); // more than 65535 entries: Zip64 end records
  const started = Date.now();
  assert.deepEqual(checkArchive(zip), { format: 'zip', status: 'intact', members: [] });
  assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
  // The same directory with one entry's offset pointing back at the first member: corrupt, as fast.
  const overlapped = patch(zip, (centrals[150_000] as number) + 42, [0, 0, 0, 0]);
  const r = checkArchive(overlapped);
  assert.equal(r?.status, 'corrupt');
  assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
});

test('1000 random mutations of a valid zip never throw and stay fast', () => {
  const text = Buffer.from('some text that deflates well, '.repeat(200));
  const { zip } = buildZip([
    { name: 'a.txt', data: text },
    { name: 'eicar.com', data: EICAR, method: 'store' },
    { name: 'd.txt', data: text, descriptor: true },
  ]);
  const rand = prng(12345);
  const started = Date.now();
  const statuses = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const m = Buffer.from(zip);
    const edits = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < edits; k++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.2 ? m.subarray(0, Math.floor(rand() * m.length)) : m;
    const r = checkArchive(cut, { maxMemberBytes: MB, maxTotalBytes: 4 * MB });
    const key = r ? r.status : 'undefined';
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    for (const member of r?.members ?? []) assert.ok(member.content.length <= MB);
  }
  assert.ok(Date.now() - started < 20_000, `${Date.now() - started} ms`);
  assert.ok((statuses.get('corrupt') ?? 0) > 500, JSON.stringify([...statuses]));
});

test('every truncation of a zip, random bytes and signature soup never throw', () => {
  const { zip } = buildZip([{ name: 'a.txt', data: Buffer.from('x'.repeat(5000)) }, { name: 'eicar.com', data: EICAR, method: 'store' }]);
  for (let cut = 0; cut <= zip.length; cut++) {
    const r = checkArchive(zip.subarray(0, cut));
    if (cut >= 4) assert.equal(r?.status, cut === zip.length ? 'intact' : 'corrupt', `cut ${cut}`);
  }
  const rand = prng(7);
  for (let i = 0; i < 200; i++) checkArchive(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 2000) }, () => Math.floor(rand() * 256))));
  // Nothing but local header signatures (and an EOCD): carving must give up within its bounds.
  const soup = Buffer.concat([Buffer.alloc(4 * 500_000, Buffer.from('PK\x03\x04', 'latin1')), buildZip([]).zip]);
  const started = Date.now();
  assert.equal(checkArchive(soup)?.status, 'corrupt');
  assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
});
