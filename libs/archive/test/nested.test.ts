import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { checkArchive } from '../src/index.js';
import { buildZip } from './zip-builder.js';

const payload = Buffer.from('inner payload '.repeat(20));

function damagedInner(): Buffer {
  const inner = buildZip([{ name: 'a.com', data: payload }]).zip;
  inner.fill(0, 0, 4); // local header signature wiped
  return inner;
}

test('an intact zip hands back the members that are archives when asked (nested), and only those', () => {
  const outer = buildZip([
    { name: 'inner.zip', data: damagedInner() },
    { name: 'readme.txt', data: Buffer.from('hello') },
  ]).zip;
  const plain = checkArchive(outer);
  assert.equal(plain?.status, 'intact');
  assert.deepEqual(plain?.members, []);
  const nested = checkArchive(outer, undefined, { nested: true });
  assert.equal(nested?.status, 'intact');
  assert.deepEqual(nested?.members.map((m) => m.name), ['inner.zip']);
  assert.equal(checkArchive(nested!.members[0]!.content)?.status, 'corrupt');
});

test('an intact gzip hands back its output when that is an archive (nested)', () => {
  const zipped = gzipSync(damagedInner());
  assert.equal(checkArchive(zipped, undefined, { nested: true })?.members.length, 1);
  assert.equal(checkArchive(gzipSync(Buffer.from('just text')), undefined, { nested: true })?.members.length, 0);
});
