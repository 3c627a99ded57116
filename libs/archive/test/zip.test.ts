/**
 * Zip integrity and recovery. Evidence that the corrupt cases matter (measured on this machine,
 * Debian 12; clamd 1.4.6 answers OK for all of them, see FACTS "ClamAV's blind spots"):
 * - local CRC/sizes zeroed, signature kept: Python's zipfile and Java's ZipFile extract the member
 *   (they trust the central directory); unzip 6.0 fails on the deflated one and writes nothing
 *   for the stored one; 7-Zip reports "Headers Error".
 * - local signature zeroed too: zipfile, unzip, Java and 7-Zip refuse; only a CD-driven lenient
 *   read (ours) gets it — still corrupt, because readers disagree.
 * - cut before the end of central directory: zipfile, unzip and Java's ZipFile refuse, but Java's
 *   ZipInputStream, `zip -FF` and 7-Zip (`7zz e`) extract the member; cut inside the member's
 *   data, 7-Zip still writes the head of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EICAR, buildZip as buildTestkitZip } from '@mailwarden/testkit';
import { checkArchive } from '../src/index.js';
import { buildZip, patch } from './zip-builder.js';

const TEXT = Buffer.from(Array.from({ length: 2000 }, (_, i) => `line ${i} of a plain text member\n`).join(''));

function twoMembers(opts = {}) {
  return buildZip(
    [
      { name: 'readme.txt', data: TEXT },
      { name: 'eicar.com', data: EICAR, method: 'store' },
    ],
    opts,
  );
}

function has(members: { content: Buffer }[] | undefined, content: Buffer): boolean {
  return (members ?? []).some((m) => m.content.equals(content));
}

test('intact stored + deflated zip is intact and hands back nothing', () => {
  const r = checkArchive(twoMembers().zip);
  assert.deepEqual(r, { format: 'zip', status: 'intact', members: [] });
});

test("testkit's zip writer output, data descriptors and the empty zip are intact", () => {
  const testkit = buildTestkitZip([{ name: 'a.txt', data: TEXT }, { name: 'eicar.com', data: EICAR, method: 'store' }]);
  assert.equal(checkArchive(testkit)?.status, 'intact');
  const described = buildZip([{ name: 'a.txt', data: TEXT, descriptor: true }, { name: 'b', data: EICAR, method: 'store', descriptor: true }]);
  assert.equal(checkArchive(described.zip)?.status, 'intact');
  assert.equal(checkArchive(buildZip([]).zip)?.status, 'intact');
});

test('local header zeroed (signature, CRC, sizes) with intact central directory: corrupt, member recovered', () => {
  for (const member of [0, 1]) {
    const b = twoMembers();
    const at = b.locals[member] as number;
    const zip = patch(patch(b.zip, at, [0, 0, 0, 0]), at + 14, Buffer.alloc(12));
    const r = checkArchive(zip);
    assert.equal(r?.format, 'zip');
    assert.equal(r?.status, 'corrupt');
    assert.match(r?.detail ?? '', new RegExp(`member ${member + 1} \\((readme.txt|eicar.com)\\)`));
    const original = member === 0 ? TEXT : EICAR;
    const m = r?.members.find((x) => x.content.equals(original));
    assert.ok(m, `member ${member + 1} recovered`);
    assert.match(m.via, /central directory/);
  }
});

test('local CRC and sizes zeroed, signature kept (zipfile and Java ZipFile still read it): corrupt, recovered', () => {
  const b = twoMembers();
  const zip = patch(b.zip, (b.locals[1] as number) + 14, Buffer.alloc(12));
  const r = checkArchive(zip);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /local header of member 2 \(eicar.com\) does not match the central directory/);
  assert.ok(has(r?.members, EICAR));
});

test('zip cut before its end of central directory, at several points: corrupt, members carved', () => {
  const b = twoMembers();
  const eicarData = (b.locals[1] as number) + 30 + 'eicar.com'.length;
  const cuts = [b.eocd, b.eocd - 10, b.cdStart + 50, b.cdStart, eicarData + EICAR.length];
  for (const cut of cuts) {
    const r = checkArchive(b.zip.subarray(0, cut));
    assert.equal(r?.status, 'corrupt', `cut at ${cut}`);
    assert.match(r?.detail ?? '', /no end of central directory/);
    assert.ok(has(r?.members, TEXT), `deflated member recovered, cut at ${cut}`);
    assert.ok(has(r?.members, EICAR), `stored member recovered, cut at ${cut}`);
    assert.match(r?.members.find((m) => m.content.equals(EICAR))?.via ?? '', /local header carve/);
  }
  // Cut inside the stored member: its head is handed back, as 7-Zip writes it.
  const r = checkArchive(b.zip.subarray(0, eicarData + 40));
  assert.ok(r?.members.some((m) => m.content.equals(EICAR.subarray(0, 40))));
  // Cut inside the deflated member: the part that inflates is handed back.
  const d = checkArchive(b.zip.subarray(0, (b.locals[1] as number) - 20));
  assert.equal(d?.status, 'corrupt');
  const head = d?.members.find((m) => m.name === 'readme.txt');
  assert.ok(head && head.content.length > 1000 && TEXT.subarray(0, head.content.length).equals(head.content));
});

test('compression methods clamd cannot unpack are corrupt; the data is still handed back', () => {
  for (const method of [77, 99, 14, 93]) {
    const b = buildZip([{ name: 'eicar.com', data: EICAR, method }]);
    const r = checkArchive(b.zip);
    assert.equal(r?.status, 'corrupt', `method ${method}`);
    assert.match(r?.detail ?? '', new RegExp(`compression method ${method}, which clamd cannot unpack`));
    assert.ok(has(r?.members, EICAR), `method ${method}: stored bytes handed back`);
  }
});

test('CRC mismatch (central directory and local header agree with each other) is corrupt', () => {
  const b = twoMembers();
  const bad = patch(patch(b.zip, (b.locals[1] as number) + 14, [1, 2, 3, 4]), (b.centrals[1] as number) + 16, [1, 2, 3, 4]);
  const r = checkArchive(bad);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /CRC-32 of member 2 \(eicar.com\) does not match/);
  assert.ok(has(r?.members, EICAR));
});

test('a deflated member that inflates past its declared size is corrupt', () => {
  const b = buildZip([{ name: 'a.txt', data: TEXT }]);
  const size = [0x10, 0, 0, 0];
  const r = checkArchive(patch(patch(b.zip, 22, size), (b.centrals[0] as number) + 24, size));
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /inflates to more than its declared 16 bytes/);
});

test('a local header the central directory does not list is corrupt and its member recovered', () => {
  const visible = buildZip([{ name: 'readme.txt', data: TEXT }]);
  const hidden = buildZip([{ name: 'eicar.com', data: EICAR, method: 'store' }]);
  const hiddenRecord = hidden.zip.subarray(0, hidden.cdStart);
  // Between the members and the central directory: offsets in the EOCD move along.
  const zip = Buffer.concat([visible.zip.subarray(0, visible.cdStart), hiddenRecord, visible.zip.subarray(visible.cdStart)]);
  zip.writeUInt32LE(visible.cdStart + hiddenRecord.length, zip.length - 22 + 16);
  const r = checkArchive(zip);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /unaccounted bytes|not in the central directory/);
  assert.ok(has(r?.members, EICAR));
  // In the archive comment: every reader skips it, carving finds it.
  const commented = buildZip([{ name: 'readme.txt', data: TEXT }], { comment: hidden.zip });
  const c = checkArchive(commented.zip);
  assert.equal(c?.status, 'corrupt');
  assert.match(c?.detail ?? '', /not in the central directory/);
  assert.ok(has(c?.members, EICAR));
});

test('overlapping members (two entries, one local header) are corrupt', () => {
  const b = buildZip([{ name: 'a', data: EICAR, method: 'store' }, { name: 'a', data: EICAR, method: 'store' }]);
  const overlapping = patch(b.zip, (b.centrals[1] as number) + 42, [0, 0, 0, 0]);
  const r = checkArchive(overlapping);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /overlaps/);
});

test('prefixed zip (self-extractor stub), offsets adjusted or not, is intact', () => {
  const stub = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(998, 0x90)]);
  for (const adjustOffsets of [false, true]) {
    const b = twoMembers({ prefix: stub, adjustOffsets });
    assert.deepEqual(checkArchive(b.zip), { format: 'zip', status: 'intact', members: [] }, `adjustOffsets ${adjustOffsets}`);
  }
  // A stub that itself carries a local header is a member only carving sees.
  const hidden = buildZip([{ name: 'eicar.com', data: EICAR, method: 'store' }]).zip;
  const r = checkArchive(twoMembers({ prefix: Buffer.concat([stub, hidden]) }).zip);
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /not in the central directory/);
});

test('encrypted members are reported as encrypted, not corrupt, unless damaged', () => {
  const zip = buildTestkitZip([{ name: 'eicar.com', data: EICAR, password: 'infected' }]);
  assert.deepEqual(checkArchive(zip), { format: 'zip', status: 'encrypted', members: [] });
  const damaged = patch(zip, 14, [0, 0, 0, 0]);
  assert.equal(checkArchive(damaged)?.status, 'corrupt');
});

test('bytes after the end of central directory record are corrupt', () => {
  const r = checkArchive(Buffer.concat([twoMembers().zip, Buffer.from('appended')]));
  assert.equal(r?.status, 'corrupt');
  assert.match(r?.detail ?? '', /8 unaccounted bytes after the end of central directory/);
});

test('what is not an archive gives undefined', () => {
  assert.equal(checkArchive(Buffer.alloc(0)), undefined);
  assert.equal(checkArchive(EICAR), undefined);
  assert.equal(checkArchive(TEXT), undefined);
  assert.equal(checkArchive(Buffer.from('PK')), undefined);
});
