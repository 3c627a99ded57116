/**
 * What the message mutators start from: the shared corpus of real messages (when present), the
 * evasion corpus (test/evasion/cases.ts, each case with EICAR and with a zip of EICAR), and a few
 * built-in messages so the fuzzer works in a bare clone.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { EICAR, buildZip, corpusDir, corpusFiles } from '@mailwarden/testkit';
import { CASES, DEFAULT_PAYLOADS, b64 } from '../../test/dist/evasion/cases.js';

export interface SeedMessage {
  /** `corpus:<path>`, `evasion:<case id>:<payload>` or `builtin:<name>`. */
  id: string;
  bytes: Buffer;
  /** The message hides EICAR (directly or in a zip): whatever of it gets delivered goes to the recovery oracle. */
  eicar: boolean;
}

const CRLF = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n', 'latin1');
const HEAD = (subject: string, extra: string[] = []): string[] => [
  'From: Fuzz Sender <sender@example.org>',
  'To: user@example.test',
  `Subject: ${subject}`,
  'Date: Fri, 27 Nov 2026 10:00:00 +0000',
  `Message-ID: <${subject.replace(/\W+/g, '-')}@fuzz.example>`,
  'MIME-Version: 1.0',
  ...extra,
];

function builtins(): SeedMessage[] {
  const zip = buildZip([{ name: 'eicar.com', data: EICAR }]);
  const attach = (name: string, bytes: Buffer, type = 'application/octet-stream'): string[] => [
    '--b1',
    `Content-Type: ${type}; name="${name}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${name}"`,
    '',
    b64(bytes),
  ];
  const text = ['--b1', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', 'Hello, see the attachment.'];
  const uu = (bytes: Buffer): string[] => {
    const out = ['begin 644 eicar.com'];
    for (let i = 0; i < bytes.length; i += 45) {
      const chunk = bytes.subarray(i, i + 45);
      let line = String.fromCharCode(32 + chunk.length);
      for (let j = 0; j < chunk.length; j += 3) {
        const [a = 0, b = 0, c = 0] = [chunk[j], chunk[j + 1], chunk[j + 2]];
        for (const v of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) line += v ? String.fromCharCode(32 + v) : '`';
      }
      out.push(line);
    }
    return [...out, '`', 'end'];
  };
  const inner = [...HEAD('inner message', ['Content-Type: multipart/mixed; boundary="b1"']), '', ...text, ...attach('eicar.com', EICAR), '--b1--'];
  return [
    { id: 'builtin:plain', eicar: false, bytes: CRLF([...HEAD('plain text', ['Content-Type: text/plain; charset=us-ascii']), '', 'Hello,', '', 'just text.', '-- ', 'sender']) },
    {
      id: 'builtin:eicar-attachment',
      eicar: true,
      bytes: CRLF([...HEAD('eicar attachment', ['Content-Type: multipart/mixed; boundary="b1"']), '', 'preamble', ...text, ...attach('eicar.com', EICAR), '--b1--', 'epilogue']),
    },
    {
      id: 'builtin:eicar-zip',
      eicar: true,
      bytes: CRLF([...HEAD('eicar zip', ['Content-Type: multipart/mixed; boundary="b1"']), '', ...text, ...attach('invoice.zip', zip, 'application/zip'), '--b1--']),
    },
    {
      id: 'builtin:nested-rfc822',
      eicar: true,
      bytes: CRLF([
        ...HEAD('forwarded', ['Content-Type: multipart/mixed; boundary="outer"']),
        '',
        '--outer',
        'Content-Type: text/plain',
        '',
        'Forwarded message below.',
        '--outer',
        'Content-Type: message/rfc822',
        '',
        ...inner,
        '--outer--',
      ]),
    },
    {
      id: 'builtin:alternative-qp',
      eicar: false,
      bytes: CRLF([
        ...HEAD('=?utf-8?q?gr=C3=BC=C3=9Fe?=', ['Content-Type: multipart/alternative; boundary="alt"']),
        '',
        '--alt',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: quoted-printable',
        '',
        'Gr=C3=BC=C3=9Fe, a long line that is soft-broken here =',
        'and continues.',
        '--alt',
        'Content-Type: text/html; charset=utf-8',
        'Content-Transfer-Encoding: quoted-printable',
        '',
        '<html><body><p>Gr=C3=BC=C3=9Fe</p><img src=3D"cid:x"></body></html>',
        '--alt--',
      ]),
    },
    { id: 'builtin:uuencoded', eicar: true, bytes: CRLF([...HEAD('uuencoded', ['Content-Type: text/plain']), '', 'See below.', '', ...uu(EICAR), '', 'Bye.']) },
    {
      id: 'builtin:clean-binary',
      eicar: false,
      bytes: CRLF([...HEAD('report', ['Content-Type: multipart/mixed; boundary="b1"']), '', ...text, ...attach('report.pdf', Buffer.from('%PDF-1.4\n' + 'x'.repeat(3000) + '\n%%EOF\n'), 'application/pdf'), '--b1--']),
    },
  ];
}

export function loadSeeds(): { seeds: SeedMessage[]; corpus: string | undefined; counts: Record<string, number> } {
  const seeds: SeedMessage[] = [];
  const dir = corpusDir();
  if (dir) {
    for (const file of corpusFiles(dir)) {
      const bytes = readFileSync(file);
      if (bytes.length > 2 * 1024 * 1024) continue;
      seeds.push({ id: `corpus:${relative(dir, file)}`, bytes, eicar: bytes.includes('EICAR-STANDARD-ANTIVIRUS-TEST-FILE') });
    }
  }
  const corpusCount = seeds.length;
  for (const c of CASES) {
    for (const p of DEFAULT_PAYLOADS) {
      if (c.textOnly && p !== DEFAULT_PAYLOADS[0]) continue;
      seeds.push({ id: `evasion:${c.id}:${p.name}`, bytes: c.build(p), eicar: true });
    }
  }
  const evasionCount = seeds.length - corpusCount;
  seeds.push(...builtins());
  return { seeds, corpus: dir, counts: { corpus: corpusCount, evasion: evasionCount, builtin: seeds.length - corpusCount - evasionCount } };
}
