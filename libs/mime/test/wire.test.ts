import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { DotStuffer, DotUnstuffer, LineEndingCanonicalizer, NulByteError, UnterminatedMultilineError } from '../src/index.js';
import { collect, source } from './helpers.js';

async function through(transform: NodeJS.ReadWriteStream & Readable, data: string | Buffer, size?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    source(data, size),
    transform,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

const MESSAGE = '.starts with a dot\r\n..two dots\r\nmiddle . dot\r\n.\r\n\r\n.\r\nlast line .\r\n';
const STUFFED = '..starts with a dot\r\n...two dots\r\nmiddle . dot\r\n..\r\n\r\n..\r\nlast line .\r\n.\r\n';

describe('DotStuffer', () => {
  it('doubles leading dots and appends the terminator, across any chunking', async () => {
    for (const size of [undefined, 1, 2, 3, 5]) {
      assert.equal((await through(new DotStuffer(), MESSAGE, size)).toString(), STUFFED, `chunk size ${size}`);
    }
  });

  it('ends the content with CRLF', async () => {
    assert.equal((await through(new DotStuffer(), 'no final line break')).toString(), 'no final line break\r\n.\r\n');
    assert.equal((await through(new DotStuffer(), 'a CR\r', 1)).toString(), 'a CR\r\n.\r\n');
    assert.equal((await through(new DotStuffer(), '')).toString(), '.\r\n');
    assert.equal((await through(new DotStuffer(), '.')).toString(), '..\r\n.\r\n');
  });

  it('does not treat a bare LF as a line start', async () => {
    assert.equal((await through(new DotStuffer(), 'a\n.b\r\n')).toString(), 'a\n.b\r\n.\r\n');
  });
});

describe('DotUnstuffer', () => {
  it('undoes DotStuffer, across 1-byte chunks', async () => {
    for (const message of [MESSAGE, '', '\r\n', '.\r\n', 'x\r\n']) {
      for (const size of [undefined, 1, 2, 3]) {
        const stuffed = await through(new DotStuffer(), message, size);
        assert.equal((await through(new DotUnstuffer(), stuffed, size)).toString(), message, `${JSON.stringify(message)} / ${size}`);
      }
    }
  });

  it('ends on the terminator and keeps the bytes after it as remainder', async () => {
    for (const size of [undefined, 1, 4]) {
      const unstuffer = new DotUnstuffer();
      let terminatedAt = -1;
      let written = 0;
      unstuffer.on('terminated', () => (terminatedAt = written));
      // not collect(): a for-await loop destroys the stream when it ends, and later writes would fail
      const parts: Buffer[] = [];
      unstuffer.on('data', (chunk: Buffer) => parts.push(chunk));
      const output = new Promise<Buffer>((resolve) => unstuffer.on('end', () => resolve(Buffer.concat(parts))));
      const data = Buffer.from('line 1\r\n..line 2\r\n.\r\n+OK next');
      const chunks = size ? Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size)) : [data];
      for (const chunk of chunks) {
        written += chunk.length;
        await new Promise((resolve) => unstuffer.write(chunk, resolve));
      }
      assert.equal((await output).toString(), 'line 1\r\n.line 2\r\n');
      assert.equal(unstuffer.terminated, true);
      // signalled by the write that held the terminator's last byte
      assert.ok(terminatedAt >= 21 && terminatedAt < 21 + (size ?? data.length), `terminated after ${terminatedAt} bytes`);
      assert.equal(unstuffer.remainder.toString(), '+OK next');
      await new Promise((resolve) => unstuffer.write(' response\r\n', resolve));
      assert.equal(unstuffer.remainder.toString(), '+OK next response\r\n');
      unstuffer.end();
    }
  });

  it('finds the terminator at write time, even while the reader lags behind', async () => {
    const unstuffer = new DotUnstuffer();
    const big = Buffer.alloc(256 * 1024, 'x');
    let terminatedDuring = '';
    let writing = '';
    unstuffer.on('terminated', () => (terminatedDuring = writing));
    for (const [name, chunk] of [
      ['big', big],
      ['terminator', Buffer.from('\r\n.\r\n+OK 2 octets\r\n')],
      ['next', Buffer.from('ab\r\n.\r\n')],
    ] as const) {
      writing = name;
      unstuffer.write(chunk); // nobody reads yet: these are queued
    }
    assert.equal(terminatedDuring, 'terminator');
    assert.equal(unstuffer.remainder.toString(), '+OK 2 octets\r\nab\r\n.\r\n');
    const output = await collect(unstuffer);
    assert.equal(output.length, big.length + 2);
  });

  it('is not fooled by bare LF or CR around a dot', async () => {
    const input = 'a\n.\nb\r.\r\nc\r\n.x\r\n.\r\n';
    assert.equal((await through(new DotUnstuffer(), input, 1)).toString(), 'a\n.\nb\r.\r\nc\r\nx\r\n');
  });

  it('fails when the input ends before the terminator', async () => {
    await assert.rejects(through(new DotUnstuffer(), 'line\r\n.'), UnterminatedMultilineError);
    await assert.rejects(through(new DotUnstuffer(), 'line\r\n'), { name: 'UnterminatedMultilineError' });
  });
});

describe('LineEndingCanonicalizer', () => {
  it('passes CRLF-only input unchanged', async () => {
    const input = 'EHLO-like\r\nline\r\n\r\n.\r\n..x\r\n';
    for (const size of [undefined, 1, 2]) assert.equal((await through(new LineEndingCanonicalizer(), input, size)).toString(), input);
  });

  it('turns bare LF and bare CR into CRLF, across chunk boundaries', async () => {
    const cases: [string, string][] = [
      ['body\r\n\n.\n', 'body\r\n\r\n.\r\n'],
      ['body\r\n\r.\r\n', 'body\r\n\r\n.\r\n'],
      ['ends with CR\r', 'ends with CR\r\n'],
      ['\n', '\r\n'],
      ['x\r\r\n', 'x\r\n\r\n'],
    ];
    for (const [input, want] of cases) {
      for (const size of [undefined, 1, 2, 3]) assert.equal((await through(new LineEndingCanonicalizer(), input, size)).toString(), want, `${JSON.stringify(input)} / ${size}`);
    }
  });

  it('refuses a NUL byte, with its offset', async () => {
    for (const size of [undefined, 1, 2, 3]) {
      await assert.rejects(through(new LineEndingCanonicalizer(), 'body\r\nnul\0here\r\n', size), (err: unknown) => err instanceof NulByteError && err.offset === 9);
    }
  });
});
