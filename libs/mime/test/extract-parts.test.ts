import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { extractParts } from '../src/index.js';
import { base64Body, collect, crlf, EICAR, eicarMessage, entity, leavesOf, multipartBody, source } from './helpers.js';

/** multipart/mixed with a text part and an embedded message/rfc822 holding an EICAR attachment. */
function nestedMessage(disposition: 'inline' | 'attachment' | undefined, encoding: '7bit' | 'base64' = '7bit'): Buffer {
  const inner = entity(
    ['From: inner@example.com', 'Subject: inner message', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="inner"'],
    multipartBody('inner', [
      entity(['Content-Type: text/plain'], 'inner text'),
      entity(['Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="inner-eicar.com"'], base64Body(EICAR)),
    ]),
  );
  const rfc822Headers = ['Content-Type: message/rfc822', `Content-Transfer-Encoding: ${encoding}`];
  if (disposition) rfc822Headers.push(`Content-Disposition: ${disposition}; filename="fwd.eml"`);
  return entity(
    ['From: outer@example.com', 'Subject: outer', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="outer"'],
    multipartBody('outer', [entity(['Content-Type: text/plain'], 'outer text'), entity(rfc822Headers, encoding === 'base64' ? base64Body(inner) : inner)]),
  );
}

describe('extractParts', () => {
  it('splits a text body and a base64 attachment into decoded leaves', async () => {
    const { message } = eicarMessage();
    for (const size of [undefined, 1, 5, 64]) {
      const { leaves, count, subject } = await leavesOf(message, size);
      assert.equal(count, 2);
      assert.equal(subject, 'Test message');
      assert.deepEqual(leaves[0]?.info, { index: 0, contentType: 'text/plain', encoding: '7bit' });
      assert.equal(leaves[0]?.data.toString(), crlf('Hello,\n\nsee attached.\n'));
      assert.deepEqual(leaves[1]?.info, { index: 1, contentType: 'application/octet-stream', filename: 'eicar.com', disposition: 'attachment', encoding: 'base64' });
      assert.equal(leaves[1]?.data.toString(), EICAR);
    }
  });

  it('decodes quoted-printable, across any chunking', async () => {
    const qp = crlf('caf=C3=A9 au lait =3D tasty, and a soft=\nly broken line   \nend');
    const message = entity(['Subject: qp', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable'], qp);
    for (const size of [undefined, 1, 2, 3, 7]) {
      const { leaves } = await leavesOf(message, size);
      assert.equal(leaves[0]?.data.toString(), crlf('café au lait = tasty, and a softly broken line\nend'));
    }
  });

  it('decodes a quoted-printable line longer than the decoder keeps pending', async () => {
    const n = 40_000;
    const encoded = '=C3=A9=3Dx \t=20='.repeat(n) + 'end';
    const message = entity(['Content-Transfer-Encoding: quoted-printable'], encoded);
    for (const size of [undefined, 1000, 4097]) {
      const { leaves } = await leavesOf(message, size);
      assert.equal(leaves[0]?.data.toString(), 'é=x \t ='.repeat(n) + 'end');
    }
  });

  it('gives the parts of an inline or disposition-less message/rfc822 as leaves', async () => {
    for (const disposition of ['inline', undefined] as const) {
      const { leaves, count, subject } = await leavesOf(nestedMessage(disposition), 3);
      assert.equal(count, 3, `disposition ${disposition}`);
      assert.equal(subject, 'outer');
      assert.equal(leaves[1]?.data.toString(), 'inner text');
      assert.deepEqual(leaves[2]?.info, { index: 2, contentType: 'application/octet-stream', filename: 'inner-eicar.com', disposition: 'attachment', encoding: 'base64' });
      assert.equal(leaves[2]?.data.toString(), EICAR);
    }
  });

  it('gives an attached or base64-encoded message/rfc822 as one leaf', async () => {
    for (const [disposition, encoding] of [
      ['attachment', '7bit'],
      ['inline', 'base64'],
    ] as const) {
      const { leaves, count } = await leavesOf(nestedMessage(disposition, encoding));
      assert.equal(count, 2);
      assert.equal(leaves[1]?.info.contentType, 'message/rfc822');
      assert.ok(leaves[1]?.data.includes(EICAR) || leaves[1]?.data.includes(base64Body(EICAR).split('\r\n')[0] ?? '-'));
      assert.match(leaves[1]?.data.toString() ?? '', /^From: inner@example.com\r\n/);
    }
  });

  it('has a root leaf for a message without body, or without anything', async () => {
    for (const message of ['', 'Subject: only headers\r\n', 'Subject: empty body\r\n\r\n']) {
      const { leaves, count } = await leavesOf(message);
      assert.equal(count, 1);
      assert.equal(leaves[0]?.info.index, 0);
      assert.equal(leaves[0]?.data.length, 0);
    }
  });

  it('decodes the root subject (RFC 2047, folded, raw UTF-8) and leaves it undefined when missing', async () => {
    const cases: [string, string | undefined][] = [
      ['Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?Q?_aus_K=C3=B6ln?=\r\n\r\nx', 'Grüße aus Köln'],
      ['Subject: folded\r\n  subject\r\n\r\nx', 'folded  subject'],
      [Buffer.concat([Buffer.from('Subject: '), Buffer.from('Grüße'), Buffer.from('\r\n\r\nx')]).toString('latin1'), 'Grüße'],
      ['From: a@b\r\n\r\nx', undefined],
    ];
    for (const [message, expected] of cases) {
      const { subject } = await leavesOf(Buffer.from(message, 'latin1'));
      assert.equal(subject, expected);
    }
  });

  it('treats a multipart without boundary, and a part with a stray boundary parameter, as single leaves', async () => {
    const noBoundary = entity(['Content-Type: multipart/mixed'], `--x\r\nContent-Type: text/plain\r\n\r\n${EICAR}\r\n--x--\r\n`);
    const { leaves, count } = await leavesOf(noBoundary);
    assert.equal(count, 1);
    assert.ok(leaves[0]?.data.includes(EICAR));

    // a boundary parameter on a non-multipart part must not hide the rest of its body from scanning
    const stray = entity(
      ['Content-Type: multipart/mixed; boundary="outer"'],
      multipartBody('outer', [entity(['Content-Type: application/octet-stream; boundary="b"'], `--b\r\n--b--\r\n${EICAR}`)]),
    );
    const result = await leavesOf(stray, 4);
    assert.equal(result.count, 1);
    assert.ok(result.leaves[0]?.data.includes(EICAR));
  });

  it('calls onPart in order, with at most maxPending pending', async () => {
    const parts = Array.from({ length: 12 }, (_, i) => entity(['Content-Type: text/plain'], `part ${i}`));
    const message = entity(['Content-Type: multipart/mixed; boundary="b"'], multipartBody('b', parts));
    const seen: number[] = [];
    let pending = 0;
    let maxSeen = 0;
    const result = await extractParts(
      source(message),
      async (leaf, decoded) => {
        seen.push(leaf.index);
        maxSeen = Math.max(maxSeen, ++pending);
        const data = await collect(decoded);
        await sleep(5);
        assert.equal(data.toString(), `part ${leaf.index}`);
        pending--;
      },
      { maxPending: 3 },
    );
    assert.equal(result.leaves, 12);
    assert.deepEqual(seen, [...Array(12).keys()]);
    assert.ok(maxSeen <= 3, `max pending ${maxSeen}`);
  });

  it('reads the source no faster than the consumer drains', async () => {
    const size = 20 * 1024 * 1024;
    let pulled = 0;
    const block = Buffer.alloc(64 * 1024, 'A');
    const head = entity(['Content-Type: application/octet-stream'], '');
    const body = (function* () {
      yield head;
      for (let sent = 0; sent < size; sent += block.length) {
        pulled += block.length;
        yield Buffer.concat([block, Buffer.from('\r\n')]);
      }
    })();
    let pulledWhileStalled = -1;
    const result = await extractParts(Readable.from(body), async (_leaf, decoded) => {
      await sleep(300); // a consumer that does not read yet
      pulledWhileStalled = pulled;
      let total = 0;
      for await (const chunk of decoded) total += (chunk as Buffer).length;
      assert.equal(total, size + (size / block.length) * 2);
    });
    assert.equal(result.leaves, 1);
    assert.ok(pulledWhileStalled < 2 * 1024 * 1024, `read ${pulledWhileStalled} bytes ahead of a stalled consumer`);
  });

  it('rejects with the onPart error, destroying the source and the unfinished streams', async () => {
    const parts = [entity(['Content-Type: text/plain'], 'failing'), entity(['Content-Type: text/plain'], 'never finished')];
    const message = entity(['Content-Type: multipart/mixed; boundary="b"'], multipartBody('b', parts));
    const src = new Readable({ read() {} });
    src.push(message.subarray(0, message.length - 10)); // and never ends: only the failure stops extraction
    let lastPart: unknown = 'not settled';
    const promise = extractParts(src, async (leaf, decoded) => {
      if (leaf.index === 0) {
        await sleep(20);
        throw new Error('upload failed');
      }
      try {
        await collect(decoded);
        lastPart = 'ended';
      } catch (err) {
        lastPart = err;
      }
    });
    await assert.rejects(promise, /upload failed/);
    assert.ok(src.destroyed);
    assert.match(String(lastPart), /upload failed/);
  });

  it('rejects on a source error and errors the open decoded stream', async () => {
    const src = new Readable({ read() {} });
    src.push(entity(['Content-Type: text/plain'], 'partial body'));
    let partError: unknown;
    const promise = extractParts(src, async (_leaf, decoded) => {
      try {
        await collect(decoded);
      } catch (err) {
        partError = err;
        throw err;
      }
    });
    setTimeout(() => src.destroy(new Error('connection reset')), 20);
    await assert.rejects(promise, /connection reset/);
    assert.ok(partError instanceof Error);
  });

  it('lets a consumer give up on a leaf by destroying its stream', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 'B');
    const message = entity(
      ['Content-Type: multipart/mixed; boundary="b"'],
      multipartBody('b', [entity(['Content-Type: application/octet-stream'], big), entity(['Content-Type: text/plain'], 'after')]),
    );
    const got: string[] = [];
    const result = await extractParts(source(message, 16 * 1024), async (leaf, decoded) => {
      if (leaf.index === 0) {
        decoded.destroy();
        return;
      }
      got.push((await collect(decoded)).toString());
    });
    assert.equal(result.leaves, 2);
    assert.deepEqual(got, ['after']);
  });

  it('rejects on messages mailsplit refuses (too many parts, too large a header)', async () => {
    const many = entity(
      ['Content-Type: multipart/mixed; boundary="b"'],
      multipartBody(
        'b',
        Array.from({ length: 1200 }, () => entity(['Content-Type: text/plain'], 'x')),
      ),
    );
    await assert.rejects(extractParts(source(many), async (_l, d) => void (await collect(d))), /child nodes/);
    const hugeHeader = `X-Big: ${'a'.repeat(2 * 1024 * 1024)}\r\n\r\nbody`;
    await assert.rejects(extractParts(source(hugeHeader, 65536), async (_l, d) => void (await collect(d))), /header size/);
  });
});
