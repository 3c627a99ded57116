import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { corpusDir, corpusFiles } from '@mailwarden/testkit';
import { LineEndingCanonicalizer, SPLICE_HEADER_LIMIT, spliceMessage, SplicePlanError, type SplicePlan, type SpliceReplacement } from '../src/index.js';
import { base64Body, collect, crlf, EICAR, eicarMessage, entity, multipartBody, source } from './helpers.js';
import { hasPython, pythonParse, pythonSubjects, type PyPart, type PySubject } from './python-mime.js';

const NOTICE_TEXT = 'The attachment eicar.com was removed.\nVirus: Eicar-Test-Signature';
const NOTICE_NAME = 'eicar.com.removed.txt';
const python = { skip: hasPython ? false : 'python3 not available' } as const;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Offset just after the empty line that ends the header block starting at `start`. */
function headerEnd(message: Buffer, start: number): number {
  const at = message.indexOf('\r\n\r\n', start);
  return at < 0 ? message.length : at + 4;
}

/** A plan for `message`: its size, hash and root header, and the given replacements. */
function planFor(message: Buffer, replace: SpliceReplacement[] = [], subjectPrefix?: string): SplicePlan {
  return { size: message.length, sha256: sha256(message), rootHeader: { start: 0, end: headerEnd(message, 0) }, replace, ...(subjectPrefix !== undefined ? { subjectPrefix } : {}) };
}

/**
 * The part-map entry of the node whose header block starts with `marker` (its first header line),
 * ending before the CRLF of the next `boundary` delimiter (or at the end of the message).
 */
function node(message: Buffer, marker: string, boundary: string | undefined, kind: 'leaf' | 'container' = 'leaf', notice = NOTICE_TEXT, filename = NOTICE_NAME): SpliceReplacement {
  const start = message.indexOf(marker);
  assert.ok(start >= 0, `${marker} not found`);
  const bodyStart = headerEnd(message, start);
  const end = boundary === undefined ? message.length : message.indexOf(`\r\n--${boundary}`, bodyStart);
  assert.ok(end >= 0, `--${boundary} not found`);
  return { kind, range: { start, end }, headerEnd: bodyStart, noticeText: notice, noticeFilename: filename };
}

function splice(message: Buffer, plan: SplicePlan, size?: number): Promise<Buffer> {
  return collect(spliceMessage(source(message, size), plan));
}

/** Random chunk sizes in [1, 200] from a fixed seed. */
function randomChunks(data: Buffer, seed = data.length): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; ) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const size = 1 + (seed % 200);
    chunks.push(data.subarray(i, i + size));
    i += size;
  }
  return Readable.from(chunks);
}

/** Output = original with each range replaced by something, every other byte as it was. */
function assertKeptAround(output: Buffer, message: Buffer, range: { start: number; end: number }): void {
  assert.ok(output.subarray(0, range.start).equals(message.subarray(0, range.start)), 'bytes before the range changed');
  const after = message.subarray(range.end);
  assert.ok(output.subarray(output.length - after.length).equals(after), 'bytes after the range changed');
}

function leavesOfTree(part: PyPart): PyPart[] {
  if (part.parts) return part.parts.flatMap(leavesOfTree);
  if (part.message) return leavesOfTree(part.message);
  return [part];
}

/** Notice text as a decoder gives it back: LF line endings, no final line break. */
function text(data: Buffer | undefined): string {
  return (data ?? Buffer.alloc(0)).toString('utf8').replace(/\r\n/g, '\n').replace(/\n$/, '');
}

function assertNotice(part: PyPart | undefined, filename = NOTICE_NAME, notice = NOTICE_TEXT): void {
  assert.ok(part);
  assert.equal(part.type, 'text/plain');
  assert.equal(part.disposition, 'attachment');
  assert.equal(part.filename, filename);
  assert.equal(text(part.data), notice);
  assert.deepEqual(part.defects, []);
}

function nested3(): { message: Buffer; leaf: Buffer } {
  const leaf = entity(['Content-Type: application/octet-stream; name="deep.bin"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="deep.bin"'], base64Body(EICAR));
  const level3 = entity(['Subject: level 3', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b3"'], multipartBody('b3', [entity(['Content-Type: text/plain'], 'three\r\n'), leaf]));
  const level2 = entity(['Subject: level 2', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b2"'], multipartBody('b2', [entity(['Content-Type: text/plain'], 'two\r\n'), entity(['Content-Type: message/rfc822'], level3)]));
  const message = entity(
    ['From: a@example.com', 'Subject: level 1', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b1"'],
    multipartBody('b1', [entity(['Content-Type: text/plain'], 'one\r\n'), entity(['Content-Type: message/rfc822'], level2)]),
  );
  return { message, leaf };
}

describe('spliceMessage', () => {
  it('gives the input back byte for byte with an empty plan, whatever the chunking', async () => {
    const { message } = eicarMessage();
    for (const input of [message, nested3().message, Buffer.alloc(0), Buffer.from('Subject: x'), Buffer.alloc(300_000, 'a')]) {
      for (const size of [undefined, 1, 2, 7, 65536]) {
        assert.ok((await splice(input, planFor(input), size)).equals(input), `chunk size ${size}`);
      }
      assert.ok((await collect(spliceMessage(randomChunks(input), planFor(input)))).equals(input), 'random chunks');
    }
  });

  it('gives every corpus message back byte for byte with an empty plan', async (t) => {
    const dir = corpusDir();
    if (!dir) return t.skip('no corpus (see /work/shared/corpus/README.md)');
    const files = corpusFiles(dir);
    assert.ok(files.length > 300, `${files.length} corpus files`);
    for (const file of files) {
      const data = readFileSync(file);
      const plan = { ...planFor(data), rootHeader: { start: 0, end: 0 } };
      for (const stream of [source(data, 1), randomChunks(data), source(data)]) {
        assert.ok((await collect(spliceMessage(stream, plan))).equals(data), relative(dir, file));
      }
    }
  });

  it('prefixes the Subject of every corpus message (CRLF canonical), touching nothing but the root header', async (t) => {
    const dir = corpusDir();
    if (!dir) return t.skip('no corpus (see /work/shared/corpus/README.md)');
    const outputs: { name: string; message: Buffer; output: Buffer }[] = [];
    for (const file of corpusFiles(dir)) {
      const original = readFileSync(file);
      if (original.includes(0)) continue; // refused by the gateways (NulByteError)
      const message = await collect(Readable.from([original]).pipe(new LineEndingCanonicalizer()));
      const rootEnd = headerEnd(message, 0);
      const output = await splice(message, planFor(message, [], '[VIRUS]'), 64);
      const name = relative(dir, file);
      assert.ok(output.subarray(output.length - (message.length - rootEnd)).equals(message.subarray(rootEnd)), `${name}: body changed`);
      assert.ok((await splice(output, planFor(output, [], '[VIRUS]'))).equals(output), `${name}: prefixed twice`);
      outputs.push({ name, message, output });
    }
    t.diagnostic(`${outputs.length} messages`);
    if (!hasPython) return t.diagnostic('python3 not available: the Subjects were not read back');
    // an independent parser reads the prefix as the start of the Subject. Except where Python ends
    // the root header early: at a line that is no well-formed field (no colon, a space before it,
    // a BOM) it starts the body (MissingHeaderBodySeparatorDefect), so it sees no Subject at all,
    // neither in the original nor in the output, where our header block goes on to the empty line.
    const before = pythonSubjects(outputs.map((o) => o.message));
    const after = pythonSubjects(outputs.map((o) => o.output));
    const endsEarly = (r?: PySubject): boolean => r?.subject === null && !!r.defects?.includes('MissingHeaderBodySeparatorDefect');
    const wrong: string[] = [];
    let cut = 0;
    outputs.forEach(({ name }, i) => {
      if (after[i]?.subject?.startsWith('[VIRUS]')) return;
      if (endsEarly(before[i]) && endsEarly(after[i])) cut++;
      else wrong.push(`${name}: ${JSON.stringify(before[i])} → ${JSON.stringify(after[i])}`);
    });
    t.diagnostic(`${cut} messages whose root header Python ends before their Subject`);
    assert.deepEqual(wrong, []);
    assert.ok(cut < 20, `${cut} messages whose root header Python ends early`);
  });

  it('replaces a leaf of multipart/mixed by a text/plain notice, siblings byte-identical', python, async () => {
    const { message, text: textPart } = eicarMessage();
    const leaf = node(message, 'Content-Type: application/octet-stream', 'outer');
    for (const size of [undefined, 1, 13]) {
      const output = await splice(message, planFor(message, [leaf]), size);
      assertKeptAround(output, message, leaf.range);
      assert.ok(!output.includes(EICAR) && !output.includes(Buffer.from(EICAR).toString('base64').slice(0, 40)), 'virus left in the output');
      assert.ok(output.includes(textPart), 'text part changed');
      assert.match(
        output.toString('latin1'),
        /\r\n--outer\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: attachment; filename=eicar\.com\.removed\.txt\r\n\r\nThe attachment eicar\.com was removed\.\r\nVirus: Eicar-Test-Signature\r\n--outer--\r\n$/,
      );

      const tree = pythonParse(output);
      assert.equal(tree.type, 'multipart/mixed');
      assert.deepEqual(tree.defects, []);
      assert.equal(tree.parts?.length, 2);
      assert.equal(text(tree.parts?.[0]?.data), 'Hello,\n\nsee attached.');
      assertNotice(tree.parts?.[1]);
    }
  });

  it('replaces a leaf at depth 3, inside two message/rfc822 containers', python, async () => {
    const { message } = nested3();
    const leaf = node(message, 'Content-Type: application/octet-stream; name="deep.bin"', 'b3');
    const output = await splice(message, planFor(message, [leaf]), 5);
    assertKeptAround(output, message, leaf.range);
    const tree = pythonParse(output);
    const leaves = leavesOfTree(tree);
    assert.deepEqual(
      leaves.map((l) => text(l.data)),
      ['one', 'two', 'three', NOTICE_TEXT],
    );
    assertNotice(leaves[3]);
    assert.equal(tree.parts?.[1]?.message?.parts?.[1]?.message?.subject, 'level 3');
    const all = (p: PyPart): string[] => [...p.defects, ...(p.parts ?? []).flatMap(all), ...(p.message ? all(p.message) : [])];
    assert.deepEqual(all(tree), []);
  });

  it('replaces the root of a single-part message: other headers kept, Content-* replaced, MIME-Version added', python, async () => {
    const message = entity(
      ['From: Sender <sender@example.com>', 'To: rcpt@example.net', 'Subject: only an attachment', 'Content-Type: application/octet-stream;\r\n name="eicar.com"', 'Content-Transfer-Encoding: base64', 'X-Mailer: test'],
      base64Body(EICAR),
    );
    const root = node(message, 'From:', undefined);
    for (const size of [undefined, 1]) {
      const output = await splice(message, planFor(message, [root]), size);
      assert.equal(
        output.toString(),
        'From: Sender <sender@example.com>\r\nTo: rcpt@example.net\r\nSubject: only an attachment\r\n' +
          'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n' +
          'Content-Disposition: attachment; filename=eicar.com.removed.txt\r\nMIME-Version: 1.0\r\nX-Mailer: test\r\n\r\n' +
          'The attachment eicar.com was removed.\r\nVirus: Eicar-Test-Signature\r\n',
      );
      const tree = pythonParse(output);
      assertNotice(tree);
      assert.equal(tree.subject, 'only an attachment');
    }

    // with a Subject prefix too: both apply to the one header block; MIME-Version not added twice
    const withVersion = entity(['Subject: hi', 'MIME-Version: 1.0', 'Content-Type: application/octet-stream'], base64Body(EICAR));
    const output = await splice(withVersion, planFor(withVersion, [node(withVersion, 'Subject:', undefined)], '[VIRUS]'));
    assert.match(output.toString(), /^Subject: \[VIRUS\] hi\r\nMIME-Version: 1\.0\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    assert.equal(output.toString().match(/MIME-Version/g)?.length, 1);
    assert.equal(pythonParse(output).subject, '[VIRUS] hi');
  });

  it('replaces a container (multipart/alternative) with everything in it', python, async () => {
    const alternative = entity(['Content-Type: multipart/alternative; boundary="alt"'], multipartBody('alt', [entity(['Content-Type: text/plain'], 'plain\r\n'), entity(['Content-Type: text/html'], '<p>html</p>\r\n')]));
    const after = entity(['Content-Type: text/plain', 'Content-Disposition: attachment; filename="after.txt"'], 'after\r\n');
    const message = entity(['Subject: container', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="outer"'], multipartBody('outer', [entity(['Content-Type: text/plain'], 'before\r\n'), alternative, after]));
    const container = node(message, 'Content-Type: multipart/alternative', 'outer', 'container', 'A part was removed.', 'removed.txt');
    const output = await splice(message, planFor(message, [container]), 3);
    assertKeptAround(output, message, container.range);
    assert.ok(!output.includes('--alt'), 'inner delimiters left');
    const tree = pythonParse(output);
    assert.deepEqual(
      tree.parts?.map((p) => p.type),
      ['text/plain', 'text/plain', 'text/plain'],
    );
    assertNotice(tree.parts?.[1], 'removed.txt', 'A part was removed.');
    assert.equal(text(tree.parts?.[2]?.data), 'after');
    assert.equal(tree.parts?.[2]?.filename, 'after.txt');
  });

  it('replaces a region (a uuencoded block in a 7bit body) by escaped plain text lines', python, async () => {
    const uu = 'begin 644 eicar.com\r\nM6#5/(5`E0$%06S1<4%I8-30H4%XI-T-#*3=])$5)0T%2+5-404Y$05)$+4%.\r\n`\r\nend\r\n';
    const body = `Hello,\r\nthe file follows.\r\n${uu}Regards,\r\n`;
    const message = entity(['Subject: uu', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="outer"'], multipartBody('outer', [entity(['Content-Type: text/plain', 'Content-Transfer-Encoding: 7bit'], body)]));
    const start = message.indexOf('begin 644');
    const region: SpliceReplacement = {
      kind: 'region',
      range: { start, end: start + uu.length },
      headerEnd: start,
      noticeText: 'Removed: eicar.com (Eicar-Test-Signature)\n--outer--\nbegin 644 x\n  --outer\nFrom me\nÉté ✓',
      noticeFilename: 'unused.txt',
    };
    for (const size of [undefined, 1, 10]) {
      const output = await splice(message, planFor(message, [region]), size);
      assertKeptAround(output, message, region.range);
      assert.ok(output.includes('the file follows.\r\nRemoved: eicar.com (Eicar-Test-Signature)\r\n> --outer--\r\n> begin 644 x\r\n>   --outer\r\n> From me\r\nEte ?\r\nRegards,\r\n'), output.toString());
      assert.ok(output.every((byte) => byte < 0x80), 'non-ASCII in the output');
      const tree = pythonParse(output);
      assert.equal(tree.parts?.length, 1);
      assert.deepEqual(tree.defects, []);
      assert.match(text(tree.parts?.[0]?.data), /^Hello,\nthe file follows\.\nRemoved: .*\nEte \?\nRegards,$/s);
    }

    // a region without its final line break: none added (here the body's last CRLF, then the delimiter's)
    const last = message.indexOf('Regards,');
    const tail: SpliceReplacement = { ...region, range: { start: last, end: last + 'Regards,'.length }, headerEnd: last, noticeText: 'gone' };
    const output = await splice(message, planFor(message, [tail]));
    assert.ok(output.includes('end\r\ngone\r\n\r\n--outer--'), output.toString());
  });

  it('prefixes the Subject, with and without replacement, never twice, RFC 2047', python, async () => {
    const { message } = eicarMessage();
    const rootEnd = headerEnd(message, 0);
    const prefixed = await splice(message, planFor(message, [], '[VIRUS]'), 1);
    assert.match(prefixed.toString(), /\r\nSubject: \[VIRUS\] Test message\r\n/);
    assert.ok(prefixed.subarray(prefixed.length - (message.length - rootEnd)).equals(message.subarray(rootEnd)), 'body changed');
    assert.ok((await splice(prefixed, planFor(prefixed, [], '[VIRUS]'))).equals(prefixed), 'prefixed twice');

    const both = await splice(message, planFor(message, [node(message, 'Content-Type: application/octet-stream', 'outer')], '[VIRUS]'), 7);
    const tree = pythonParse(both);
    assert.equal(tree.subject, '[VIRUS] Test message');
    assertNotice(tree.parts?.[1]);

    const encoded = eicarMessage('=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=').message;
    const out = await splice(encoded, planFor(encoded, [], '[VÍRUS]'));
    assert.equal(pythonParse(out).subject, '[VÍRUS] Grüße');
    assert.ok(out.subarray(0, headerEnd(out, 0)).every((byte) => byte < 0x80), '8-bit header');
    assert.ok((await splice(out, planFor(out, [], '[VÍRUS]'))).equals(out), 'prefixed twice');

    // no Subject at all: one is added; a header-only message keeps its end
    const noSubject = Buffer.from('From: a@example.com\r\n\r\nbody\r\n');
    assert.equal((await splice(noSubject, planFor(noSubject, [], '[VIRUS]'))).toString(), 'From: a@example.com\r\nSubject: [VIRUS]\r\n\r\nbody\r\n');
    const headerOnly = Buffer.from('From: a@example.com\r\nSubject: x');
    assert.equal((await splice(headerOnly, planFor(headerOnly, [], '[VIRUS]'))).toString(), 'From: a@example.com\r\nSubject: [VIRUS] x');
  });

  it('drops every Content-* header of a replaced node, duplicates, odd spacing, folding and non-headers included', python, async () => {
    const part = entity(
      [
        'From nobody Mon Jan  1 00:00:00 2024',
        'Content-Type: text/plain',
        'X-Keep: one,',
        '\ttwo',
        'Content-Type : application/octet-stream;',
        ' name="a.exe"',
        'content-transfer-encoding\t: base64',
        'not a header line',
        'CONTENT-DISPOSITION: attachment;',
        '\tfilename="a.exe"',
        'Content-ID: <x@y>',
        'X-Last: kept',
      ],
      base64Body(EICAR),
    );
    const message = entity(['Subject: dup', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="outer"'], multipartBody('outer', [part]));
    const leaf = node(message, 'From nobody', 'outer');
    const output = await splice(message, planFor(message, [leaf]));
    const headers = output.subarray(leaf.range.start, headerEnd(output, leaf.range.start)).toString();
    assert.equal(
      headers,
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: attachment; filename=eicar.com.removed.txt\r\n' +
        'X-Keep: one,\r\n\ttwo\r\nX-Last: kept\r\n\r\n',
    );
    assertNotice(pythonParse(output).parts?.[0]);
  });

  it('makes a valid notice of a node whose header block is cut by a boundary (no empty line)', python, async () => {
    const message = Buffer.from(crlf('Subject: cut\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: application/octet-stream\n--b--\n'));
    const start = message.indexOf('Content-Type: application');
    const end = message.indexOf('\r\n--b--');
    const leaf: SpliceReplacement = { kind: 'leaf', range: { start, end }, headerEnd: end, noticeText: 'cut', noticeFilename: 'cut.txt' };
    const output = await splice(message, planFor(message, [leaf]));
    assert.ok(output.toString().endsWith('\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: attachment; filename=cut.txt\r\n\r\ncut\r\n--b--\r\n'));
    assertNotice(pythonParse(output).parts?.[0], 'cut.txt', 'cut');
  });

  it('keeps exactly one line break before the next delimiter, even if the range ends after it', async () => {
    const { message } = eicarMessage();
    const leaf = node(message, 'Content-Type: application/octet-stream', 'outer');
    const exact = await splice(message, planFor(message, [leaf]));
    const past = await splice(message, planFor(message, [{ ...leaf, range: { ...leaf.range, end: leaf.range.end + 2 } }]));
    assert.ok(past.equals(exact));
    assert.match(exact.toString(), /Signature\r\n--outer--\r\n$/);
  });

  it('drops replacements nested in another one (the outer one wins)', async () => {
    const { message } = nested3();
    const outer = node(message, 'Content-Type: message/rfc822\r\n\r\nSubject: level 2', 'b1', 'container', 'outer', 'outer.txt');
    const inner = node(message, 'Content-Type: application/octet-stream; name="deep.bin"', 'b3');
    const expected = await splice(message, planFor(message, [outer]));
    for (const replace of [
      [outer, inner],
      [inner, outer],
      [inner, outer, { ...outer, noticeText: 'same range, later' }],
    ]) {
      assert.ok((await splice(message, planFor(message, replace))).equals(expected));
    }
    assert.ok(!expected.includes('level 2') && expected.includes('one\r\n'));
  });

  it('refuses an inconsistent plan synchronously, with SplicePlanError', () => {
    const { message } = eicarMessage();
    const leaf = node(message, 'Content-Type: application/octet-stream', 'outer');
    const text = node(message, 'Content-Type: text/plain; charset=utf-8', 'outer');
    const bad: [string, SplicePlan][] = [
      ['partial overlap', planFor(message, [leaf, { ...text, range: { start: text.range.start, end: leaf.range.start + 10 } }])],
      ['beyond the size', planFor(message, [{ ...leaf, range: { start: leaf.range.start, end: message.length + 1 } }])],
      ['inverted', planFor(message, [{ ...leaf, range: { start: leaf.range.end, end: leaf.range.start } }])],
      ['header end outside', planFor(message, [{ ...leaf, headerEnd: leaf.range.end + 1 }])],
      ['not an integer', planFor(message, [{ ...leaf, headerEnd: leaf.headerEnd + 0.5 }])],
      ['region with a header', planFor(message, [{ ...leaf, kind: 'region' }])],
      ['inside the root header', planFor(message, [{ ...leaf, range: { start: 10, end: leaf.range.end } }])],
      ['region over the root header', planFor(message, [{ ...leaf, kind: 'region', range: { start: 0, end: 100 }, headerEnd: 0 }])],
      ['root header beyond the size', { ...planFor(message), rootHeader: { start: 0, end: message.length + 1 } }],
      ['bad sha256', { ...planFor(message), sha256: 'abc' }],
      ['header block too big', planFor(message, [{ ...leaf, range: { start: leaf.range.start, end: leaf.range.start + SPLICE_HEADER_LIMIT + 10 }, headerEnd: leaf.range.start + SPLICE_HEADER_LIMIT + 1 }])],
    ];
    for (const [what, plan] of bad) {
      if (what === 'header block too big') plan.size = plan.replace[0]!.range.end;
      assert.throws(() => spliceMessage(source(message), plan), SplicePlanError, what);
    }
  });

  it('errors the output when the message is not the one of the plan (size, sha256)', async () => {
    const { message } = eicarMessage();
    const plan = planFor(message, [node(message, 'Content-Type: application/octet-stream', 'outer')]);
    const cases: [string, Buffer, SplicePlan][] = [
      ['shorter', message.subarray(0, -1), plan],
      ['longer', Buffer.concat([message, Buffer.from('x')]), plan],
      ['other bytes', Buffer.from(message.toString('latin1').replace('Hello', 'Hallo'), 'latin1'), plan],
      ['other sha256', message, { ...plan, sha256: sha256(Buffer.from('x')) }],
    ];
    for (const [what, input, p] of cases) {
      await assert.rejects(splice(input, p, 16), SplicePlanError, what);
    }
  });

  it('passes a source error on to the output', async () => {
    const { message } = eicarMessage();
    const failing = new Readable({
      read() {
        this.push(message.subarray(0, 100));
        this.destroy(new Error('S3 read failed'));
      },
    });
    await assert.rejects(collect(spliceMessage(failing, planFor(message))), /S3 read failed/);
  });

  it('keeps memory bounded on a 30 MB message with a 25 MB part replaced, honouring backpressure', async (t) => {
    const REPLACED = 25 * 1024 * 1024;
    const KEPT = 5 * 1024 * 1024;
    const head = Buffer.from('From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="big"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n');
    const bigHeader = Buffer.from('--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="big.bin"\r\n\r\n');
    const keptHeader = Buffer.from('\r\n--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n');
    const line = Buffer.from('QUJDRA'.repeat(12) + 'QUJD\r\n'); // 78 bytes
    const lines = (bytes: number): number => Math.floor(bytes / line.length);
    let produced = 0;
    function* generate(): Generator<Buffer> {
      const block = Buffer.concat(Array.from({ length: 840 }, () => line)); // 65520 bytes
      for (const [header, bytes] of [
        [Buffer.concat([head, bigHeader]), REPLACED],
        [keptHeader, KEPT],
      ] as const) {
        produced += header.length;
        yield header;
        for (let left = lines(bytes); left > 0; left -= 840) {
          const out = left >= 840 ? block : block.subarray(0, left * line.length);
          produced += out.length;
          yield out;
        }
      }
      const end = Buffer.from('\r\n--big--\r\n');
      produced += end.length;
      yield end;
    }
    // a first pass for the part map (size, hash)
    const hash = createHash('sha256');
    for (const chunk of generate()) hash.update(chunk);
    const size = produced;
    const start = head.length + '--big\r\n'.length;
    const replacedEnd = head.length + bigHeader.length + lines(REPLACED) * line.length; // where keptHeader's CRLF begins
    const plan: SplicePlan = {
      size,
      sha256: hash.digest('hex'),
      rootHeader: { start: 0, end: head.indexOf('\r\n\r\n') + 4 },
      replace: [{ kind: 'leaf', range: { start, end: replacedEnd }, headerEnd: head.length + bigHeader.length, noticeText: 'removed', noticeFilename: 'big.bin.txt' }],
    };

    produced = 0;
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    let written = 0;
    let maxLead = 0;
    try {
      await pipeline(
        spliceMessage(Readable.from(generate()), plan),
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            written += chunk.length;
            maxLead = Math.max(maxLead, produced - written);
            setImmediate(cb); // a consumer a bit slower than memory
          },
        }),
      );
    } finally {
      clearInterval(timer);
    }
    const dropped = size - written;
    assert.ok(dropped > REPLACED - 1000, `dropped ${dropped}`);
    // how far the source got ahead of the consumer, beyond the bytes dropped: stream buffers only
    assert.ok(maxLead - dropped < 2 * 1024 * 1024, `source ran ${((maxLead - dropped) / 1048576).toFixed(1)} MB ahead`);
    const growth = Math.max(peak, process.memoryUsage().rss) - base;
    t.diagnostic(`output ${written} bytes, source ahead by at most ${maxLead - dropped} bytes beyond the dropped ones, RSS +${(growth / 1048576).toFixed(1)} MB`);
    assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MB`);
  });
});
