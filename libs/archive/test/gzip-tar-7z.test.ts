/** gzip, tar and 7z integrity. The 7z fixture was written by 7-Zip 26.02 (`7zz a e.7z eicar.com`). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { EICAR } from '@mailwarden/testkit';
import { checkArchive } from '../src/index.js';
import { crc32 } from '../src/crc32.js';
import { buildTar, tarMember } from './tar-builder.js';

const TEXT = Buffer.from(Array.from({ length: 3000 }, (_, i) => `row ${i}\n`).join(''));

test('gzip: single and multi-member are intact; zero padding is accepted', () => {
  assert.deepEqual(checkArchive(zlib.gzipSync(TEXT)), { format: 'gzip', status: 'intact', members: [] });
  assert.equal(checkArchive(Buffer.concat([zlib.gzipSync(TEXT), zlib.gzipSync(EICAR)]))?.status, 'intact');
  assert.equal(checkArchive(Buffer.concat([zlib.gzipSync(TEXT), Buffer.alloc(100)]))?.status, 'intact');
});

test('gzip with FNAME, FCOMMENT, FEXTRA and FHCRC is intact; a wrong header CRC is corrupt', () => {
  const head = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0x1e, 0, 0, 0, 0, 0, 3, 2, 0, 0xab, 0xcd]), Buffer.from('eicar.com\0note\0', 'latin1')]);
  const hcrc = Buffer.alloc(2);
  hcrc.writeUInt16LE(crc32(head) & 0xffff);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(EICAR), 0);
  trailer.writeUInt32LE(EICAR.length, 4);
  const gz = Buffer.concat([head, hcrc, zlib.deflateRawSync(EICAR), trailer]);
  assert.equal(checkArchive(gz)?.status, 'intact');
  const bad = Buffer.from(gz);
  bad[head.length] = (bad[head.length] as number) ^ 0xff;
  assert.equal(checkArchive(bad)?.status, 'corrupt');
});

test('gzip cut short: corrupt, the part that inflates is handed back', () => {
  const gz = zlib.gzipSync(TEXT);
  for (const cut of [gz.length - 4, gz.length - 8, Math.floor(gz.length / 2)]) {
    const r = checkArchive(gz.subarray(0, cut));
    assert.equal(r?.status, 'corrupt', `cut at ${cut}`);
    const m = r?.members[0];
    assert.ok(m && m.content.length > 0 && TEXT.subarray(0, m.content.length).equals(m.content), `cut at ${cut}`);
  }
});

test('gzip with a bad CRC: corrupt, the whole output handed back', () => {
  const gz = zlib.gzipSync(EICAR);
  gz.writeUInt32LE(gz.readUInt32LE(gz.length - 8) ^ 1, gz.length - 8);
  const r = checkArchive(gz);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /CRC-32 does not match/);
  assert.ok(r?.members.some((m) => m.content.equals(EICAR)));
});

test('gzip followed by other data: corrupt, the trailing data handed back', () => {
  const r = checkArchive(Buffer.concat([zlib.gzipSync(TEXT), EICAR]));
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /68 bytes of trailing data/);
  assert.ok(r?.members.some((m) => m.content.equals(EICAR)));
  assert.ok(r?.members.some((m) => m.content.equals(TEXT)));
});

test('tar: intact with end blocks, and ending exactly at EOF', () => {
  const files = [{ name: 'a.txt', data: TEXT }, { name: 'eicar.com', data: EICAR }];
  assert.deepEqual(checkArchive(buildTar(files)), { format: 'tar', status: 'intact', members: [] });
  assert.equal(checkArchive(buildTar(files, Buffer.alloc(0)))?.status, 'intact');
  assert.equal(checkArchive(buildTar(files, Buffer.alloc(10240)))?.status, 'intact');
});

test('tar with a bad header checksum: corrupt, the other members recovered', () => {
  const tar = buildTar([{ name: 'a.txt', data: TEXT }, { name: 'eicar.com', data: EICAR }]);
  const bad = Buffer.from(tar);
  bad[0] = 0x62; // renames a.txt without fixing the checksum
  const r = checkArchive(bad);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /damaged tar header at offset 0/);
  assert.ok(r?.members.some((m) => m.content.equals(EICAR) && m.name === 'eicar.com'));
});

test('tar cut inside a member: corrupt, its head recovered', () => {
  const tar = buildTar([{ name: 'eicar.com', data: EICAR }]);
  const r = checkArchive(tar.subarray(0, 512 + 40));
  assert.equal(r?.status, 'corrupt');
  assert.ok(r?.members.some((m) => m.content.equals(EICAR.subarray(0, 40))));
  assert.equal(checkArchive(tar.subarray(0, 512 + EICAR.length))?.status, 'corrupt'); // padding missing
});

test('tar with a member after the end-of-archive blocks (tar --ignore-zeros reads it): corrupt, recovered', () => {
  const tar = Buffer.concat([buildTar([{ name: 'a.txt', data: TEXT }]), tarMember('eicar.com', EICAR)]);
  const r = checkArchive(tar);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /after the end-of-archive marker/);
  assert.ok(r?.members.some((m) => m.content.equals(EICAR)));
});

const SEVEN_ZIP_EICAR = Buffer.from(
  'N3q8ryccAAQdMUogSAAAAAAAAABaAAAAAAAAAAhZJdMBAENYNU8hUCVAQVBbNFxQWlg1NChQXik3Q0MpN30kRUlDQVItU1RBTkRBUkQtQU5USVZJUlVTLVRFU1QtRklMRSEkSCtIKgABBAYAAQlIAAcLAQABISEBAAxEAAgKATzPUWgAAAUBGQwAAAAAAAAAAAAAAAARFQBlAGkAYwBhAHIALgBjAG8AbQAAABQKAQA7qm9iLYTdARUGAQAggKSBAAA=',
  'base64',
);

/** A signature header (and next header) by hand: 7-Zip lists [kHeader, kEnd] as an empty archive. */
function sevenZip(next: Buffer): Buffer {
  const h = Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4, ...Buffer.alloc(24)]);
  h.writeBigUInt64LE(0n, 12);
  h.writeBigUInt64LE(BigInt(next.length), 20);
  h.writeUInt32LE(crc32(next), 28);
  h.writeUInt32LE(crc32(h.subarray(12, 32)), 8);
  return Buffer.concat([h, next]);
}

test('7z: a real archive and hand-built headers are intact', () => {
  assert.deepEqual(checkArchive(SEVEN_ZIP_EICAR), { format: '7z', status: 'intact', members: [] });
  assert.equal(checkArchive(sevenZip(Buffer.from([1, 0])))?.status, 'intact');
  assert.equal(checkArchive(sevenZip(Buffer.alloc(0)))?.status, 'intact');
});

test('7z: damaged start header, damaged or missing next header, trailing data are corrupt', () => {
  const startHeader = Buffer.from(SEVEN_ZIP_EICAR);
  startHeader[20] = (startHeader[20] as number) ^ 1;
  assert.match(checkArchive(startHeader)?.detail ?? '', /start header CRC/);
  const nextHeader = Buffer.from(SEVEN_ZIP_EICAR);
  nextHeader[nextHeader.length - 3] = (nextHeader[nextHeader.length - 3] as number) ^ 1;
  assert.match(checkArchive(nextHeader)?.detail ?? '', /next header CRC/);
  assert.match(checkArchive(SEVEN_ZIP_EICAR.subarray(0, 150))?.detail ?? '', /beyond the end of the file/);
  assert.match(checkArchive(SEVEN_ZIP_EICAR.subarray(0, 20))?.detail ?? '', /cut off/);
  assert.equal(checkArchive(Buffer.concat([SEVEN_ZIP_EICAR, EICAR]))?.status, 'corrupt');
  assert.equal(checkArchive(sevenZip(Buffer.from([0x42, 0])))?.status, 'corrupt');
});

test('random mutations of gzip and tar never throw', () => {
  const inputs = [zlib.gzipSync(TEXT), buildTar([{ name: 'a', data: TEXT }, { name: 'b', data: EICAR }]), SEVEN_ZIP_EICAR];
  let seed = 99;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const input of inputs) {
    for (let i = 0; i < 300; i++) {
      const m = Buffer.from(input);
      m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
      checkArchive(rand() < 0.3 ? m.subarray(0, Math.floor(rand() * m.length)) : m);
    }
  }
});
