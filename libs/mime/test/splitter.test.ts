import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { Joiner, Splitter } from 'mailsplit';
import { extractParts, rebuildMessage } from '../src/index.js';
import { collect, crlf, EICAR, entity, leavesOf, multipartBody } from './helpers.js';

/** Regressions for the mailsplit problems that splitter.ts works around (see there). */
describe('hardened splitter', () => {
  const message = Buffer.from(
    crlf('Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\nThis is the original message.\nLet\'s see.\n--b--\n'),
  );
  const cut = message.indexOf('message.\r\n') + 'message.\r'.length;
  const chunks = [message.subarray(0, cut), message.subarray(cut, cut + 4), message.subarray(cut + 4)];

  it('keeps every byte when a chunk ends between CR and LF (mailsplit 5.4.6 drops some)', async () => {
    const plain = await collect(Readable.from(chunks).pipe(new Splitter()).pipe(new Joiner()));
    // if this starts failing, mailsplit fixed it: the CR hold-back in splitter.ts can go
    assert.ok(!plain.equals(message), 'mailsplit itself is exact now');
    assert.ok((await collect(rebuildMessage(Readable.from(chunks), { replace: new Map() }))).equals(message));
    const leaves: string[] = [];
    await extractParts(Readable.from(chunks), async (_leaf, decoded) => void leaves.push((await collect(decoded)).toString()));
    assert.deepEqual(leaves, [crlf("This is the original message.\nLet's see.")]);
  });

  it('keeps a part whose header block is cut short by a boundary', async () => {
    const input = Buffer.from(crlf('Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n--b\nContent-Type: text/plain\n\nsecond\n--b--\n'));
    const plain = await collect(Readable.from([input]).pipe(new Splitter()).pipe(new Joiner()));
    assert.ok(!plain.equals(input), 'mailsplit itself is exact now');
    assert.ok((await collect(rebuildMessage(Readable.from([input]), { replace: new Map() }))).equals(input));
    const { leaves, count } = await leavesOf(input);
    assert.equal(count, 2);
    assert.equal(leaves[1]?.data.toString(), 'second');
  });

  it('cuts a very long body line without buffering it, and without seeing a boundary in its tail', async () => {
    // a 20 MB line whose last bytes look like the delimiter: it is not one
    const long = Buffer.alloc(20 * 1024 * 1024, 'A');
    const fakeDelimiter = Buffer.from('--b--');
    const head = Buffer.from(crlf('Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: application/octet-stream\n\n'));
    const tail = Buffer.concat([fakeDelimiter, Buffer.from(crlf(`\n${EICAR}\n--b--\n`))]);
    // the fake delimiter starts a chunk, right where the pending line gets cut
    const pieces: Buffer[] = [head];
    for (let i = 0; i < long.length; i += 256 * 1024) pieces.push(long.subarray(i, i + 256 * 1024));
    pieces.push(tail);
    const input = Buffer.concat(pieces);
    const start = Date.now();
    const leaves: Buffer[] = [];
    const result = await extractParts(Readable.from(pieces), async (_leaf, decoded) => void leaves.push(await collect(decoded)));
    assert.equal(result.leaves, 1);
    assert.equal(leaves[0]?.length, long.length + fakeDelimiter.length + 2 + EICAR.length);
    assert.ok(leaves[0]?.includes(EICAR));
    assert.ok((await collect(rebuildMessage(Readable.from(pieces), { replace: new Map() }))).equals(input));
    assert.ok(Date.now() - start < 20_000, 'quadratic time on a long line');
  });

  it('fails on an endless header line instead of buffering it', async () => {
    const huge = Readable.from(
      (function* () {
        yield Buffer.from('X-Endless: ');
        for (let i = 0; i < 64; i++) yield Buffer.alloc(64 * 1024, 'h');
      })(),
    );
    await assert.rejects(extractParts(huge, async (_l, d) => void (await collect(d))), /header size/);
  });
});

describe('messages without any leaf part', () => {
  const emptyMultipart = entity(['Subject: no parts', 'Content-Type: multipart/mixed; boundary="never"'], `preamble only, the boundary never comes\r\n${EICAR}\r\n`);

  it('have their root as the only leaf, with the raw body', async () => {
    for (const size of [undefined, 1, 5]) {
      const { leaves, count } = await leavesOf(emptyMultipart, size);
      assert.equal(count, 1);
      assert.equal(leaves[0]?.info.contentType, 'multipart/mixed');
      assert.equal(leaves[0]?.data.toString(), `preamble only, the boundary never comes\r\n${EICAR}\r\n`);
    }
    const headerOnly = await leavesOf('Content-Type: multipart/mixed; boundary="x"\r\n');
    assert.equal(headerOnly.count, 1);
    assert.equal(headerOnly.leaves[0]?.data.length, 0);
  });

  it('can have that leaf replaced', async () => {
    const output = await collect(rebuildMessage(Readable.from([emptyMultipart]), { replace: new Map([[0, { noticeText: 'removed', noticeFilename: 'n.txt' }]]), subjectPrefix: '[V]' }));
    assert.ok(!output.includes(EICAR));
    assert.match(output.toString(), /^Subject: \[V\] no parts\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    const { leaves } = await leavesOf(output);
    assert.equal(leaves[0]?.data.toString(), 'removed\r\n');
    // untouched otherwise
    assert.ok((await collect(rebuildMessage(Readable.from([emptyMultipart]), { replace: new Map() }))).equals(emptyMultipart));
  });

  it('are refused when that body is too large to hold', async () => {
    const big = entity(['Content-Type: multipart/mixed; boundary="never"'], 'x'.repeat(100) + '\r\n'.repeat(1) + 'y'.repeat(200 * 1024));
    await assert.rejects(leavesOf(big), { name: 'MimeStructureError' });
    await assert.rejects(collect(rebuildMessage(Readable.from([big]), { replace: new Map([[0, { noticeText: 'n', noticeFilename: 'n' }]]) })), { name: 'RebuildPlanError' });
    assert.ok((await collect(rebuildMessage(Readable.from([big]), { replace: new Map() }))).equals(big));
  });

  it('are not mistaken for a message whose parts come after a long preamble', async () => {
    const message = entity(['Content-Type: multipart/mixed; boundary="b"'], multipartBody('b', [entity(['Content-Type: text/plain'], 'part')], 'p'.repeat(100 * 1024) + '\r\n'));
    const { leaves, count } = await leavesOf(message, 4096);
    assert.equal(count, 1);
    assert.equal(leaves[0]?.data.toString(), 'part');
  });
});
