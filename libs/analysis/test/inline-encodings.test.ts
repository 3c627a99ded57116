import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EICAR } from '@mailwarden/testkit';
import { findInlineEncodings } from '../src/inline-encodings.js';
import { analyse, crlf, flagged } from './helpers.js';

const eicar64 = EICAR.toString('base64');
const html = (...body: string[]): Buffer =>
  crlf(['From: a@example.org', 'To: b@example.test', 'Subject: t', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'clean', '--b', 'Content-Type: text/html', '', ...body, '--b--', '']);
const find = (line: string) => findInlineEncodings(Buffer.from(line, 'latin1'), line.length);

describe('inline encodings: HTML smuggling', () => {
  it('finds a base64 data: URI in markup, in any case of the marker, and where its data ends', () => {
    const line = `<a href="data:application/octet-stream;BASE64,${eicar64}" download>x</a>`;
    const [found, ...rest] = find(line);
    assert.equal(rest.length, 0);
    assert.equal(found!.kind, 'base64');
    assert.equal(line.slice(found!.from, found!.to), eicar64);
    assert.equal(found!.open, false);
  });

  it('a percent-encoded data: URI only when it has escapes; a quoted base64 string of 64+ characters', () => {
    assert.deepEqual(find('<img src="data:image/gif,GIF89a">').length, 0);
    assert.equal(find('<a href="data:text/plain,%58%35%4F">x</a>')[0]!.kind, 'percent');
    assert.equal(find(`var s = '${eicar64}';`)[0]!.via, 'quoted base64 string');
    assert.equal(find(`var s = 'short0base64';`).length, 0);
  });

  it('ordinary markup and prose find nothing: links, styles, long URL tokens', () => {
    for (const line of [
      '<a href="https://example.com/track/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWx?u=1">read</a>',
      '<td style="color: red; font-family: Arial, sans-serif">Dear customer, your order: 12345</td>',
      'Note: the meeting is at 10:00, see you there.',
    ]) assert.deepEqual(find(line), [], line);
  });

  it('a data: URI in a raw HTML part is a region: only its lines are flagged, the rest of the part stays', async () => {
    const a = await analyse(html('<p>keep me</p>', `<a href="data:application/octet-stream;base64,${eicar64}">x</a>`, '<p>keep me too</p>'));
    const paths = flagged(a);
    assert.equal(paths.length, 1);
    assert.match(paths[0]!, /^1\.2\.r\d+$/);
  });

  it('a data: URI wrapped over lines, a percent-encoded one, an atob() string: each is found', async () => {
    const wrapped = eicar64.match(/.{1,40}/g)!.map((s, i) => (i ? `    ${s}` : `<a href="data:application/x-msdownload;base64,${s}`));
    const percent = [...EICAR].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    for (const body of [[...wrapped.slice(0, -1), `${wrapped.at(-1)!}">x</a>`], [`<a href="data:application/octet-stream,${percent}">x</a>`], ['<script>', `const s = "${eicar64}";`, '</script>']]) {
      // the region of the lines that carry it (a body that is mostly such a line is also flagged whole)
      assert.ok(flagged(await analyse(html(...body))).some((p) => /^1\.2\.r\d+$/.test(p)), body.join('\n'));
    }
  });
});
