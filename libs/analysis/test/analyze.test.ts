import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR, buildZip } from '@mailwarden/testkit';
import { AnalysisLimitError, analyzeMessage, MemorySource } from '../src/index.js';
import { analyse, b64, crlf, fakeEngine, flagged, uuencode } from './helpers.js';

const head = ['From: a@example.org', 'To: b@example.test', 'Subject: test', 'MIME-Version: 1.0'];
const mixed = (contentType: string, parts: string[][], tail = '--b--'): Buffer =>
  crlf([...head, `Content-Type: ${contentType}`, '', ...parts.flatMap((p) => ['--b', ...p]), tail, '']);
const text = ['Content-Type: text/plain', '', 'clean text'];
const attachment = (headers: string[], body: string): string[] => [...headers, '', body];

describe('analyzeMessage: the part map', () => {
  it('maps each node to its byte range; a plain attachment is found and only it is flagged', async () => {
    const msg = mixed('multipart/mixed; boundary="b"', [text, attachment(['Content-Type: application/octet-stream; name="e.com"', 'Content-Transfer-Encoding: base64'], b64(EICAR))]);
    const a = await analyse(msg);
    assert.deepEqual(flagged(a), ['1.2']);
    const leaf = a.parts.find((p) => p.path === '1.2')!;
    assert.equal(leaf.filename, 'e.com');
    assert.ok(msg.subarray(leaf.range.start, leaf.range.end).toString().startsWith('Content-Type: application/octet-stream'));
    assert.ok(msg.subarray(leaf.range.end, leaf.range.end + 5).toString() === '\r\n--b');
    assert.equal(leaf.size, EICAR.length);
    assert.deepEqual(a.rootHeader, { start: 0, end: msg.indexOf('\r\n\r\n') + 4 });
    assert.equal(a.subject, 'test');
  });

  it('a clean message: every part clean, one scan per distinct content', async () => {
    const engine = fakeEngine();
    const msg = mixed('multipart/mixed; boundary=b', [text, text, attachment(['Content-Type: application/pdf', 'Content-Transfer-Encoding: base64'], b64(Buffer.alloc(3000, 7)))]);
    const a = await analyzeMessage(new MemorySource(msg), { scan: engine.scan });
    assert.deepEqual(flagged(a), []);
    assert.equal(engine.scans, 2, 'the two identical text parts cost one scan');
  });

  it('three message/rfc822 levels deep: only the infected leaf is flagged, the clean text at every level is not', async () => {
    const level = (n: number, inner: string[]): string[] => [
      'Content-Type: message/rfc822',
      '',
      `Subject: level ${n}`,
      `Content-Type: multipart/mixed; boundary="l${n}"`,
      '',
      `--l${n}`,
      'Content-Type: text/plain',
      '',
      `clean text at level ${n}`,
      `--l${n}`,
      ...inner,
      `--l${n}--`,
    ];
    const payload = ['Content-Type: application/octet-stream; name="e.com"', 'Content-Transfer-Encoding: base64', '', b64(EICAR)];
    const msg = mixed('multipart/mixed; boundary=b', [text, level(1, level(2, level(3, payload)))]);
    const a = await analyse(msg);
    assert.deepEqual(flagged(a), ['1.2.1.2.1.2.1.2']);
  });
});

describe('analyzeMessage: every reading a lenient client could make', () => {
  const eicarPart = (cte: string[]): string[] => attachment(['Content-Type: application/octet-stream; name="e.com"', ...cte], b64(EICAR));
  const cases: [string, Buffer][] = [
    ['CTE with parameters', mixed('multipart/mixed; boundary=b', [text, eicarPart(['Content-Transfer-Encoding: base64; x-junk="1"'])])],
    ['CTE in upper case with blanks', mixed('multipart/mixed; boundary=b', [text, eicarPart(['Content-Transfer-Encoding:   BASE64  '])])],
    ['two CTE headers that disagree', mixed('multipart/mixed; boundary=b', [text, eicarPart(['Content-Transfer-Encoding: 7bit', 'Content-Transfer-Encoding: base64'])])],
    ['no CTE on a base64 body', mixed('multipart/mixed; boundary=b', [text, eicarPart([])])],
    ['a wrong CTE on a base64 body', mixed('multipart/mixed; boundary=b', [text, eicarPart(['Content-Transfer-Encoding: quoted-printable'])])],
    ['"base 64"', mixed('multipart/mixed; boundary=b', [text, eicarPart(['Content-Transfer-Encoding: base 64'])])],
    ['space before the colon', mixed('multipart/mixed; boundary=b', [text, eicarPart(['Content-Transfer-Encoding : base64'])])],
    ['whitespace inside the boundary quotes', mixed('multipart/mixed; boundary=" b"', [text, eicarPart(['Content-Transfer-Encoding: base64'])])],
    ['single-quoted boundary', mixed("multipart/mixed; boundary='b'", [text, eicarPart(['Content-Transfer-Encoding: base64'])])],
    ['whitespace around =', mixed('multipart/mixed; boundary = b', [text, eicarPart(['Content-Transfer-Encoding: base64'])])],
    ['two boundary parameters', mixed('multipart/mixed; boundary="x"; boundary="b"', [text, eicarPart(['Content-Transfer-Encoding: base64'])])],
    ['no closing boundary', mixed('multipart/mixed; boundary=b', [text, eicarPart(['Content-Transfer-Encoding: base64'])], '')],
    ['multipart without a boundary parameter', mixed('multipart/mixed', [text, eicarPart(['Content-Transfer-Encoding: base64'])])],
    ['a part after the close delimiter', crlf([...head, 'Content-Type: multipart/mixed; boundary=b', '', '--b', ...text, '--b--', '--b', ...eicarPart(['Content-Transfer-Encoding: base64']), '--b--', ''])],
    ['base64 in the preamble', crlf([...head, 'Content-Type: multipart/mixed; boundary=b', '', b64(EICAR), '--b', ...text, '--b--', ''])],
    ['uuencoded block in a text body', crlf([...head, 'Content-Type: text/plain', '', 'hello', 'begin 644 e.com', uuencode(EICAR) + 'end', 'bye', ''])],
    ['x-uuencode CTE', mixed('multipart/mixed; boundary=b', [text, attachment(['Content-Type: application/octet-stream', 'Content-Transfer-Encoding: x-uuencode'], `begin 644 e.com\r\n${uuencode(EICAR)}end`)])],
    ['begin-base64 block', crlf([...head, 'Content-Type: text/plain', '', 'hello', 'begin-base64 644 e.com', b64(EICAR), '====', ''])],
    ['quoted-printable with lower-case hex', mixed('multipart/mixed; boundary=b', [text, attachment(['Content-Type: text/plain', 'Content-Transfer-Encoding: quoted-printable'], EICAR.toString('latin1').replace(/[=!$%]/g, (c) => `=${c.charCodeAt(0).toString(16)}`))])],
    ['base64 with junk lines and no padding', mixed('multipart/mixed; boundary=b', [text, attachment(['Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64'], b64(EICAR, 10).replace(/=+/g, '').replace(/\r\n/g, '\r\n!!!\r\n'))])],
    ['base64 with 8-bit junk bytes in its lines and a garbled CTE header (fuzz finding)', mixed('multipart/mixed; boundary=b', [text, attachment(['Content-Type: application/octet-stream', 'Content-Transfer-Encodin\u0098g: base64'], b64(EICAR, 20).replace(/(.{7})/g, '$1\u00e9\u0000'))])],
    ['base64-encoded message/rfc822', mixed('multipart/mixed; boundary=b', [text, attachment(['Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64'], b64(crlf(['Subject: inner', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', b64(EICAR)])))])],
    ['a single-part message whose body is the attachment', crlf([...head, 'Content-Type: application/octet-stream; name=e.com', 'Content-Disposition: attachment', 'Content-Transfer-Encoding: base64', '', b64(EICAR), ''])],
    ['duplicate Content-Type: text first, multipart second', crlf([...head, 'Content-Type: text/plain', 'Content-Type: multipart/mixed; boundary=b', '', '--b', ...text, '--b', ...eicarPart(['Content-Transfer-Encoding: base64']), '--b--', ''])],
    ['RFC 2231 boundary continuation', crlf([...head, 'Content-Type: multipart/mixed; boundary*0="b"; boundary*1="x"', '', '--bx', ...text, '--bx', ...eicarPart(['Content-Transfer-Encoding: base64']), '--bx--', ''])],
  ];
  for (const [name, message] of cases) {
    it(name, async () => {
      const a = await analyse(message);
      assert.ok(flagged(a).length > 0, `${name}: payload not found; parts ${JSON.stringify(a.parts.map((p) => [p.path, p.kind, p.verdict.kind]))}`);
    });
  }

  it('a uuencoded block in a raw text body is removable on its own: the text around it stays', async () => {
    const a = await analyse(crlf([...head, 'Content-Type: text/plain', '', 'hello', 'begin 644 e.com', uuencode(EICAR) + 'end', 'bye', '']));
    const region = a.parts.find((p) => p.kind === 'region' && p.verdict.kind === 'infected');
    assert.ok(region, 'a region for the block');
    assert.equal(a.parts.find((p) => p.path === '1')?.verdict.kind, 'clean');
  });

  it('whitespace inside the boundary quotes: the part map splits the parts, so the clean text is kept', async () => {
    const a = await analyse(mixed('multipart/mixed; boundary=" b"', [text, eicarPart(['Content-Transfer-Encoding: base64'])]));
    assert.deepEqual(flagged(a), ['1.2']);
  });

  it('a damaged archive is unscannable (corrupt), and what the check recovers from it is scanned too', async () => {
    const zip = buildZip([{ name: 'e.com', data: EICAR }]);
    const check = (bytes: Buffer) => (bytes.equals(zip) ? { format: 'zip', status: 'corrupt' as const, detail: 'local header damaged', members: [{ name: 'e.com', content: EICAR, via: 'carve' }] } : undefined);
    const a = await analyse(mixed('multipart/mixed; boundary=b', [text, attachment(['Content-Type: application/zip', 'Content-Transfer-Encoding: base64'], b64(zip))]), check);
    const leaf = a.parts.find((p) => p.path === '1.2')!;
    assert.equal(leaf.verdict.kind, 'infected', 'the recovered member is infected, which outranks corrupt');
  });
});

describe('analyzeMessage: limits', () => {
  it('too many parts is a limit error, not a crash or a hang', async () => {
    const parts = Array.from({ length: 50 }, () => text);
    await assert.rejects(analyzeMessage(new MemorySource(mixed('multipart/mixed; boundary=b', parts)), { scan: fakeEngine().scan, limits: { maxParts: 20 } }), AnalysisLimitError);
  });

  it('nesting deeper than the limit is a limit error', async () => {
    let body = text;
    for (let i = 0; i < 60; i++) body = [`Content-Type: multipart/mixed; boundary=n${i}`, '', `--n${i}`, ...body, `--n${i}--`];
    await assert.rejects(analyzeMessage(new MemorySource(crlf([...head, ...body, ''])), { scan: fakeEngine().scan }), AnalysisLimitError);
  });
});

describe('analyzeMessage: second opinion (rawScan)', () => {
  const engine = {
    async scan(c: { open(): NodeJS.ReadableStream }) {
      const chunks: Buffer[] = [];
      for await (const x of c.open()) chunks.push(x as Buffer);
      return Buffer.concat(chunks).includes('RAW-ONLY') ? { kind: 'infected' as const, detail: 'Raw.Only' } : { kind: 'clean' as const };
    },
  };
  // only the whole message contains the marker: it sits in the root header, which no part holds
  const msg = crlf(['From: a@example.org', 'X-Note: RAW-ONLY', 'Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: text/plain', '', 'hello', '--b', 'Content-Type: application/pdf', '', 'data', '--b--', '']);

  it('a detection in the whole message that no part explains makes every part unscannable', async () => {
    const a = await analyzeMessage(new MemorySource(msg), { scan: engine.scan, rawScan: true });
    const leaves = a.parts.filter((p) => p.kind === 'leaf');
    assert.equal(leaves.length, 2);
    for (const p of leaves) {
      assert.equal(p.verdict.kind, 'unscannable');
      assert.equal(p.verdict.reason, 'corrupt');
      assert.match(p.verdict.detail ?? '', /RawMessage\.Raw\.Only/);
    }
  });

  it('off by default: the same message is clean', async () => {
    const a = await analyzeMessage(new MemorySource(msg), { scan: engine.scan });
    assert.deepEqual(flagged(a), []);
  });
});
