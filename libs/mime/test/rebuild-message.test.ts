import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { rebuildMessage, type RebuildPlan } from '../src/index.js';
import { base64Body, collect, crlf, EICAR, eicarMessage, entity, leavesOf, multipartBody, source } from './helpers.js';

const NOTICE = { noticeText: 'The attachment eicar.com was removed.\nVirus: Eicar-Test-Signature\n', noticeFilename: 'eicar.com.removed.txt' };

function rebuild(message: Buffer | string, plan: Partial<RebuildPlan>, size?: number): Promise<Buffer> {
  return collect(rebuildMessage(source(message, size), { replace: new Map(), ...plan }));
}

function isAscii(data: Buffer): boolean {
  return data.every((byte) => byte < 0x80);
}

function assertNoEicar(output: Buffer): void {
  assert.ok(!output.includes(EICAR), 'EICAR in the output');
  for (let shift = 0; shift < 3; shift++) {
    // the base64 of EICAR at any alignment, minus the edges that depend on neighbouring bytes
    const b64 = Buffer.concat([Buffer.alloc(shift), Buffer.from(EICAR)]).toString('base64').slice(4, -4);
    assert.ok(!output.toString('latin1').replace(/\r?\n/g, '').includes(b64), `base64 EICAR (shift ${shift}) in the output`);
  }
}

describe('rebuildMessage', () => {
  it('is byte-identical with an empty plan, whatever the chunking', async () => {
    const { message } = eicarMessage();
    const lfOnly = message.toString('latin1').replace(/\r\n/g, '\n');
    for (const input of [message, Buffer.from(lfOnly, 'latin1'), Buffer.alloc(0), Buffer.from('Subject: x')]) {
      for (const size of [undefined, 1, 2, 3, 7, 1000]) {
        assert.ok((await rebuild(input, {}, size)).equals(input), `chunk size ${size}`);
      }
    }
  });

  it('replaces an infected attachment with a text/plain notice, leaving the rest untouched', async () => {
    const { message, text } = eicarMessage();
    for (const size of [undefined, 1, 13]) {
      const output = await rebuild(message, { replace: new Map([[1, NOTICE]]) }, size);
      assertNoEicar(output);
      assert.ok(output.includes(text), 'text part changed');
      assert.ok(output.subarray(0, message.indexOf('\r\n\r\n')).equals(message.subarray(0, message.indexOf('\r\n\r\n'))), 'root header changed');

      const { leaves, count } = await leavesOf(output);
      assert.equal(count, 2);
      assert.equal(leaves[0]?.data.toString(), crlf('Hello,\n\nsee attached.\n'));
      assert.deepEqual(leaves[1]?.info, {
        index: 1,
        contentType: 'text/plain',
        filename: 'eicar.com.removed.txt',
        disposition: 'attachment',
        encoding: 'quoted-printable',
      });
      assert.equal(leaves[1]?.data.toString(), crlf(NOTICE.noticeText));
      assertNoEicar(Buffer.concat(leaves.map((l) => l.data)));
      assert.match(output.toString(), /Content-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: attachment; filename=eicar\.com\.removed\.txt\r\n\r\n/);
      assert.doesNotMatch(output.toString(), /name="eicar\.com"/);
    }
  });

  it('replaces a part inside an embedded message/rfc822', async () => {
    const inner = entity(
      ['From: inner@example.com', 'Subject: inner', 'Content-Type: multipart/mixed; boundary="inner"'],
      multipartBody('inner', [
        entity(['Content-Type: text/plain'], 'inner text'),
        entity(['Content-Type: application/x-msdownload', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="a.exe"', 'Content-ID: <a@b>'], base64Body(EICAR)),
      ]),
    );
    const message = entity(
      ['Subject: outer', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="outer"'],
      multipartBody('outer', [entity(['Content-Type: text/plain'], 'outer text'), entity(['Content-Type: message/rfc822', 'Content-Disposition: inline'], inner)]),
    );
    const output = await rebuild(message, { replace: new Map([[2, { noticeText: 'removed', noticeFilename: 'a.exe.txt' }]]) }, 5);
    assertNoEicar(output);
    assert.doesNotMatch(output.toString(), /Content-ID/);
    const { leaves, count } = await leavesOf(output);
    assert.equal(count, 3);
    assert.equal(leaves[0]?.data.toString(), 'outer text');
    assert.equal(leaves[1]?.data.toString(), 'inner text');
    assert.equal(leaves[2]?.info.filename, 'a.exe.txt');
    assert.equal(leaves[2]?.data.toString(), 'removed\r\n');
  });

  it('replaces the root leaf of a single-part message, adding MIME-Version', async () => {
    const message = entity(['From: a@example.com', 'Subject: just a file', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64'], base64Body(EICAR));
    const output = await rebuild(message, { replace: new Map([[0, { noticeText: 'gone', noticeFilename: 'notice.txt' }]]) });
    assertNoEicar(output);
    assert.match(output.toString(), /^From: a@example\.com\r\nSubject: just a file\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    assert.match(output.toString(), /\r\nMIME-Version: 1\.0\r\n/);
    const { leaves } = await leavesOf(output);
    assert.equal(leaves[0]?.data.toString(), 'gone\r\n');
  });

  it('encodes a notice safely: non-ASCII text and file name, lines that look like boundaries', async () => {
    const { message } = eicarMessage();
    const noticeText = 'Anhang „böse.exe“ entfernt\n--outer--\n--outer\n';
    const output = await rebuild(message, { replace: new Map([[1, { noticeText, noticeFilename: 'böse.exe.txt' }]]) });
    assert.ok(isAscii(output), 'raw non-ASCII in the output');
    const { leaves, count } = await leavesOf(output);
    assert.equal(count, 2);
    assert.equal(leaves[1]?.info.filename, 'böse.exe.txt');
    assert.equal(leaves[1]?.data.toString(), crlf(noticeText));
  });

  it('errors when the plan names a leaf the message does not have', async () => {
    const { message } = eicarMessage();
    await assert.rejects(rebuild(message, { replace: new Map([[5, NOTICE]]) }), { name: 'RebuildPlanError' });
  });

  it('errors, without hanging, on messages mailsplit refuses and on source errors', async () => {
    const hugeHeader = `X-Big: ${'a'.repeat(2 * 1024 * 1024)}\r\n\r\nbody`;
    await assert.rejects(rebuild(hugeHeader, {}, 65536), /header size/);
    const src = new Readable({ read() {} });
    src.push(eicarMessage().message.subarray(0, 100));
    setTimeout(() => src.destroy(new Error('S3 read failed')), 10);
    await assert.rejects(collect(rebuildMessage(src, { replace: new Map() })), /S3 read failed/);
  });
});

describe('rebuildMessage subjectPrefix', () => {
  const PREFIX = '[VIRUS REMOVED]';

  async function prefixed(headers: string[], prefix = PREFIX): Promise<{ output: Buffer; subject?: string }> {
    const message = entity([...headers, 'Content-Type: text/plain'], 'body\r\n');
    const output = await rebuild(message, { subjectPrefix: prefix }, 3);
    const { subject } = await leavesOf(output);
    return { output, ...(subject !== undefined ? { subject } : {}) };
  }

  it('prefixes a plain subject', async () => {
    const { output, subject } = await prefixed(['From: a@b', 'Subject: Hello world', 'To: c@d']);
    assert.equal(subject, '[VIRUS REMOVED] Hello world');
    assert.match(output.toString(), /^From: a@b\r\nSubject: \[VIRUS REMOVED\] Hello world\r\nTo: c@d\r\n/);
  });

  it('prefixes an RFC 2047 encoded subject, keeping its encoded-words', async () => {
    const encoded = '=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=';
    const { output, subject } = await prefixed([`Subject: ${encoded}`]);
    assert.equal(subject, '[VIRUS REMOVED] Grüße aus Köln');
    assert.ok(output.includes(`Subject: [VIRUS REMOVED] ${encoded}\r\n`));
  });

  it('prefixes a folded subject', async () => {
    const { output, subject } = await prefixed(['Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n =?UTF-8?Q?_aus_K=C3=B6ln?= and more\r\n\tafter a tab', 'X-After: 1']);
    assert.equal(subject, '[VIRUS REMOVED] Grüße aus Köln and more\tafter a tab');
    assert.match(output.toString(), /\r\nX-After: 1\r\n/);
  });

  it('adds a Subject to a message without one', async () => {
    const { output, subject } = await prefixed(['From: a@b']);
    assert.equal(subject, PREFIX);
    assert.match(output.toString(), /^From: a@b\r\nContent-Type: text\/plain\r\nSubject: \[VIRUS REMOVED\]\r\n\r\nbody/);
  });

  it('prefixes an empty subject', async () => {
    const { subject } = await prefixed(['Subject:']);
    assert.equal(subject, PREFIX);
  });

  it('never prefixes twice', async () => {
    for (const header of ['Subject: [VIRUS REMOVED] Hello', 'Subject: =?UTF-8?Q?=5BVIRUS_REMOVED=5D_Hello?=', 'Subject:\r\n [VIRUS REMOVED] folded']) {
      const message = entity([header, 'Content-Type: text/plain'], 'body\r\n');
      const output = await rebuild(message, { subjectPrefix: PREFIX });
      assert.ok(output.equals(message), header);
    }
    // and a rebuilt message rebuilt again stays the same
    const once = await rebuild(eicarMessage().message, { subjectPrefix: PREFIX });
    const twice = await rebuild(once, { subjectPrefix: PREFIX });
    assert.ok(twice.equals(once));
  });

  it('encodes a non-ASCII prefix, keeping the space before an encoded subject', async () => {
    const prefix = '[ВИРУС УДАЛЁН]';
    const plain = await prefixed(['Subject: Hello'], prefix);
    assert.equal(plain.subject, `${prefix} Hello`);
    const encoded = await prefixed(['Subject: =?UTF-8?B?R3LDvMOfZQ==?='], prefix);
    assert.equal(encoded.subject, `${prefix} Grüße`);
    const missing = await prefixed([], prefix);
    assert.equal(missing.subject, prefix);
    for (const { output } of [plain, encoded, missing]) assert.ok(isAscii(output));
  });

  it('cannot inject headers through the prefix', async () => {
    const { output, subject } = await prefixed(['Subject: Hi'], '[X]\r\nBcc: victim@example.com');
    assert.doesNotMatch(output.toString(), /^Bcc:/m);
    assert.equal(subject, '[X] Bcc: victim@example.com Hi');
  });

  it('changes only the root Subject, and combines with replacements', async () => {
    const inner = entity(['Subject: inner subject', 'Content-Type: text/plain'], 'inner');
    const message = entity(
      ['Subject: outer subject', 'Content-Type: multipart/mixed; boundary="b"'],
      multipartBody('b', [entity(['Content-Type: message/rfc822'], inner), entity(['Content-Type: application/octet-stream'], EICAR)]),
    );
    const output = await rebuild(message, { subjectPrefix: PREFIX, replace: new Map([[1, NOTICE]]) });
    assertNoEicar(output);
    assert.ok(output.includes('Subject: inner subject\r\n'));
    assert.ok(output.includes('Subject: [VIRUS REMOVED] outer subject\r\n'));
  });
});
