import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineReader, LineTimeoutError, LineTooLongError } from '../src/line-reader.js';

test('lines end with CRLF or a bare LF and come out without it, one per next(), any byte kept (latin1)', async () => {
  const r = new LineReader({ maxLineBytes: 100 });
  r.push(Buffer.from('250-first\r\n250 sec', 'latin1'));
  assert.equal(await r.next(1000), '250-first');
  const second = r.next(1000);
  r.push(Buffer.from('ond\xe9\nrest', 'latin1'));
  assert.equal(await second, '250 second\xe9');
  assert.equal(r.buffered, 4);
  assert.deepEqual(r.take(), Buffer.from('rest'));
  assert.equal(r.buffered, 0);
});

test('a line that does not come within the deadline is a LineTimeoutError; the reader stays usable', async () => {
  const r = new LineReader({ maxLineBytes: 100 });
  await assert.rejects(r.next(20), LineTimeoutError);
  const line = r.next(1000);
  r.push(Buffer.from('late\r\n'));
  assert.equal(await line, 'late');
});

test('a line over the limit fails the reader for good and tells its owner', async () => {
  let told: Error | undefined;
  const r = new LineReader({ maxLineBytes: 10, onTooLong: (err) => (told = err) });
  const line = r.next(1000);
  r.push(Buffer.from('x'.repeat(11)));
  await assert.rejects(line, LineTooLongError);
  assert.ok(told instanceof LineTooLongError);
  await assert.rejects(r.next(1000), LineTooLongError);
});

test('a long line arriving whole with its LF is over the limit too', async () => {
  const r = new LineReader({ maxLineBytes: 10 });
  const line = r.next(1000);
  r.push(Buffer.from(`${'x'.repeat(20)}\r\n`));
  await assert.rejects(line, LineTooLongError);
});

test('bytes sent ahead of any reader are bounded by the same limit', () => {
  let told = false;
  const r = new LineReader({ maxLineBytes: 10, onTooLong: () => (told = true) });
  r.push(Buffer.from('a\r\nb\r\nc\r\nd\r\n'));
  assert.equal(told, true);
});

test('onTaken runs before the promise settles, so the bytes after the line can be taken in the same tick', async () => {
  const r = new LineReader({ maxLineBytes: 100 });
  let body: Buffer | undefined;
  const line = r.next(1000, () => (body = r.take()));
  r.push(Buffer.from('+OK 5 octets\r\nHello\r\n.\r\n'));
  assert.equal(body?.toString(), 'Hello\r\n.\r\n', 'taken synchronously inside push()');
  assert.equal(await line, '+OK 5 octets');
});

test('fail() rejects the line awaited and every later one', async () => {
  const r = new LineReader({ maxLineBytes: 100 });
  const line = r.next(1000);
  r.fail(new Error('connection closed'));
  await assert.rejects(line, /connection closed/);
  await assert.rejects(r.next(1000), /connection closed/);
});

test('one reader at a time', async () => {
  const r = new LineReader({ maxLineBytes: 100 });
  const first = r.next(1000);
  await assert.rejects(r.next(1000), /already awaited/);
  r.push(Buffer.from('one\n'));
  assert.equal(await first, 'one');
});
