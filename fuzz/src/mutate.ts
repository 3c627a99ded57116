/**
 * Message mutators: each takes a message and returns a hostile variant of it. All randomness comes
 * from the Rng, so a (seed, index) pair always yields the same bytes.
 */
import type { Rng } from './rng.js';

export const MAX_MUTATED_BYTES = 6 * 1024 * 1024;

export interface Mutator {
  name: string;
  apply(rng: Rng, msg: Buffer, other: () => Buffer): Buffer;
}

function headerEnd(msg: Buffer): number {
  const a = msg.indexOf('\r\n\r\n');
  const b = msg.indexOf('\n\n');
  if (a < 0) return b < 0 ? msg.length : b + 1;
  if (b < 0) return a + 2;
  return Math.min(a + 2, b + 1);
}

/** Offsets just after each LF (line starts), the first one being 0. */
function lineStarts(msg: Buffer, from = 0, to = msg.length): number[] {
  const out = [from];
  for (let i = msg.indexOf(10, from); i >= 0 && i < to; i = msg.indexOf(10, i + 1)) out.push(i + 1);
  return out;
}

const insertAt = (msg: Buffer, at: number, what: Buffer | string): Buffer =>
  Buffer.concat([msg.subarray(0, at), typeof what === 'string' ? Buffer.from(what, 'latin1') : what, msg.subarray(at)]);

/** The header lines (with their folded continuations) of the top header block. */
function headerFields(msg: Buffer): { start: number; end: number }[] {
  const end = headerEnd(msg);
  const starts = lineStarts(msg, 0, end).filter((s) => s < end);
  const fields: { start: number; end: number }[] = [];
  for (const s of starts) {
    const c = msg[s];
    if ((c === 0x20 || c === 0x09) && fields.length) fields[fields.length - 1]!.end = nextLine(msg, s, end);
    else fields.push({ start: s, end: nextLine(msg, s, end) });
  }
  return fields.filter((f) => f.end > f.start && msg[f.start] !== 13 && msg[f.start] !== 10);
}

const nextLine = (msg: Buffer, s: number, limit: number): number => {
  const nl = msg.indexOf(10, s);
  return nl < 0 || nl >= limit ? limit : nl + 1;
};

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export const MUTATORS: Mutator[] = [
  {
    name: 'byte-flip',
    apply(rng, msg) {
      const out = Buffer.from(msg);
      if (!out.length) return out;
      const k = rng.weighted([[rng.int(1, 4), 5], [rng.int(5, 40), 3], [rng.int(41, 400), 1]] as const);
      for (let i = 0; i < k; i++) {
        const at = rng.int(0, out.length - 1);
        out[at] = rng.chance(0.5) ? out[at]! ^ (1 << rng.int(0, 7)) : rng.pick([0x0d, 0x0a, 0x2d, 0x3d, 0x3a, 0x22, 0x3b, 0x2e, 0x20, rng.int(0, 255)]);
      }
      return out;
    },
  },
  {
    name: 'truncate',
    apply(rng, msg) {
      return msg.subarray(0, rng.int(0, msg.length));
    },
  },
  {
    name: 'duplicate-headers',
    apply(rng, msg) {
      const fields = headerFields(msg);
      if (!fields.length) return msg;
      const f = rng.pick(fields);
      const line = msg.subarray(f.start, f.end);
      const n = rng.weighted([[rng.int(2, 10), 4], [rng.int(100, 2000), 3], [rng.int(2000, 60_000), 2]] as const);
      const copies = Math.max(1, Math.min(n, Math.floor((4 * 1024 * 1024) / Math.max(1, line.length))));
      return insertAt(msg, f.end, Buffer.concat(Array.from({ length: copies }, () => line)));
    },
  },
  {
    name: 'huge-header',
    apply(rng, msg) {
      const size = rng.weighted([[rng.int(1000, 100_000), 3], [rng.int(100_000, 1_100_000), 3], [rng.int(1_100_000, 3_500_000), 2]] as const);
      const kind = rng.pick(['single-line', 'folded', 'params', 'subject-encoded-words']);
      let header: string;
      if (kind === 'single-line') header = `X-Fuzz-Huge: ${'A'.repeat(size)}\r\n`;
      else if (kind === 'folded') header = `X-Fuzz-Folded: ${Array.from({ length: Math.ceil(size / 78) }, () => 'x'.repeat(76)).join('\r\n ')}\r\n`;
      else if (kind === 'params')
        header = `Content-Type: multipart/mixed; ${Array.from({ length: Math.ceil(size / 24) }, (_, i) => `p${i}*${i % 3}="v${i}"`).join('; ')}; boundary="b1"\r\n`;
      else header = `Subject: ${Array.from({ length: Math.ceil(size / 40) }, () => '=?utf-8?B?w7zDtsOkw5/DqcOo?=').join(' ')}\r\n`;
      const fields = headerFields(msg);
      const at = fields.length && rng.chance(0.7) ? rng.pick(fields).start : 0;
      return insertAt(msg, at, header);
    },
  },
  {
    name: 'deep-nesting',
    apply(rng, msg) {
      const depth = rng.weighted([[rng.int(20, 60), 2], [rng.int(150, 250), 3]] as const);
      const rfc822 = rng.chance(0.3);
      const head: string[] = [];
      const tail: string[] = [];
      for (let d = 0; d < depth; d++) {
        if (rfc822) {
          head.push(`Subject: level ${d}\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n`);
        } else {
          head.push(`Content-Type: multipart/mixed; boundary="n${d}"\r\n\r\n--n${d}\r\n`);
          tail.unshift(`\r\n--n${d}--\r\n`);
        }
      }
      return Buffer.concat([Buffer.from('From: a@example.org\r\nTo: user@example.test\r\nMIME-Version: 1.0\r\n' + head.join(''), 'latin1'), msg, Buffer.from(tail.join(''), 'latin1')]);
    },
  },
  {
    name: 'many-parts',
    apply(rng, msg) {
      const n = rng.weighted([[rng.int(100, 900), 2], [rng.int(1000, 6000), 3]] as const);
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(`--mp\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`);
      const pos = rng.int(0, n);
      const body = [...parts.slice(0, pos), '--mp\r\nContent-Type: message/rfc822\r\n\r\n', msg.toString('latin1'), '\r\n', ...parts.slice(pos), '--mp--\r\n'].join('');
      return Buffer.from('From: a@example.org\r\nTo: user@example.test\r\nSubject: many parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="mp"\r\n\r\n' + body, 'latin1');
    },
  },
  {
    name: 'invalid-encoding',
    apply(rng, msg) {
      let s = msg.toString('latin1');
      const kind = rng.pick(['cte-garbage', 'base64-junk', 'qp-junk', 'charset-garbage', 'encoded-word-garbage', 'invalid-utf8']);
      if (kind === 'cte-garbage') {
        const v = rng.pick(['base64x', 'b a s e 6 4', 'x-uuencode', 'quoted-printable; foo=bar', '7bit base64', 'BASE64\x00', '"base64"', 'binary', 'base64, quoted-printable', '']);
        s = /content-transfer-encoding:[^\r\n]*/i.test(s) ? s.replace(/content-transfer-encoding:[^\r\n]*/gi, () => `Content-Transfer-Encoding: ${rng.chance(0.5) ? v : rng.pick(['base64', 'quoted-printable', '8bit'])}`) : `Content-Transfer-Encoding: ${v}\r\n${s}`;
      } else if (kind === 'base64-junk') {
        s = s.replace(/^[A-Za-z0-9+/]{40,}={0,2}$/gm, (line) => {
          if (!rng.chance(0.3)) return line;
          const at = rng.int(0, line.length);
          return line.slice(0, at) + rng.pick(['!', '=', '==', '*', '\t', ' ', '-', '.', '\xff', '%%']) + line.slice(at);
        });
      } else if (kind === 'qp-junk') {
        s = s.replace(/=([0-9A-F]{2})/g, (m) => (rng.chance(0.4) ? rng.pick(['=ZZ', '=\r', '=', '=4', '= \r\n']) : m));
        s += '\r\nSoft break at end =';
      } else if (kind === 'charset-garbage') {
        s = s.replace(/charset="?[\w-]+"?/gi, () => `charset=${rng.pick(['x-unknown', '"', 'utf-7', 'utf-16', "''", 'iso-2022-jp; charset=utf-8', 'a'.repeat(5000)])}`);
      } else if (kind === 'encoded-word-garbage') {
        s = s.replace(/^(Subject|From|To):[^\r\n]*/im, (_m, name: string) => `${name}: =?${rng.pick(['utf-8', 'x', ''])}?${rng.pick(['B', 'Q', 'X'])}?${rng.text(rng.int(1, 300), B64 + '=?_')}?= =?utf-8?B?====?=`);
      } else {
        const bad = Buffer.from([0xc3, 0x28, 0xe2, 0x82, 0xed, 0xa0, 0x80, 0xf8, 0x88, 0x80, 0x80, 0x80, 0xfe, 0xff]);
        const out = Buffer.from(s, 'latin1');
        return insertAt(out, rng.int(0, out.length), bad);
      }
      return Buffer.from(s, 'latin1');
    },
  },
  {
    name: 'nul-and-8bit',
    apply(rng, msg) {
      let out = msg;
      const withNul = rng.chance(0.5);
      const k = rng.int(1, 30);
      for (let i = 0; i < k; i++) {
        const b = withNul && i === 0 ? Buffer.from([0]) : Buffer.from([rng.int(0x80, 0xff), rng.int(0x80, 0xff)]);
        out = insertAt(out, rng.int(0, out.length), b);
      }
      return out;
    },
  },
  {
    name: 'long-line',
    apply(rng, msg) {
      const size = rng.int(200_000, 2_200_000);
      const kind = rng.pick(['A', 'base64', 'printable']);
      const line = kind === 'A' ? 'A'.repeat(size) : kind === 'base64' ? rng.text(Math.min(size, 400_000), B64).repeat(Math.ceil(size / 400_000)) : rng.text(Math.min(size, 200_000)).repeat(Math.ceil(size / 200_000));
      const starts = lineStarts(msg);
      const at = rng.pick(starts);
      return insertAt(msg, at, line + (rng.chance(0.8) ? '\r\n' : ''));
    },
  },
  {
    name: 'line-endings',
    apply(rng, msg) {
      const s = msg.toString('latin1');
      const kind = rng.pick(['all-lf', 'some-lf', 'some-cr', 'mixed']);
      if (kind === 'all-lf') return Buffer.from(s.replace(/\r\n/g, '\n'), 'latin1');
      return Buffer.from(
        s.replace(/\r\n/g, (m) => (rng.chance(0.2) ? (kind === 'some-lf' ? '\n' : kind === 'some-cr' ? '\r' : rng.pick(['\n', '\r', '\r\r\n', '\n\r'])) : m)),
        'latin1',
      );
    },
  },
  {
    name: 'boundary-mangle',
    apply(rng, msg) {
      let s = msg.toString('latin1');
      const m = /boundary=("?)([^";\r\n]+)\1/i.exec(s);
      if (!m) return Buffer.from(`Content-Type: multipart/mixed; boundary=${rng.text(rng.int(0, 100), B64 + '"\'-= ')}\r\n` + s, 'latin1');
      const b = m[2]!;
      const kind = rng.pick(['drop-close', 'change-param', 'dup-param', 'empty', 'close-early', 'spaces']);
      if (kind === 'drop-close') s = s.split(`--${b}--`).join('');
      else if (kind === 'change-param') s = s.replace(m[0], `boundary="${b}x"`);
      else if (kind === 'dup-param') s = s.replace(m[0], `boundary="${rng.text(8)}"; ${m[0]}; boundary=${b.slice(0, -1)}`);
      else if (kind === 'empty') s = s.replace(m[0], 'boundary=""');
      else if (kind === 'close-early') s = s.replace(`--${b}\r\n`, `--${b}--\r\n`);
      else s = s.replace(m[0], `boundary = " ${b} "`);
      return Buffer.from(s, 'latin1');
    },
  },
  {
    name: 'crossover',
    apply(rng, msg, other) {
      const o = other();
      const a = rng.int(0, msg.length);
      const b = rng.int(0, o.length);
      return Buffer.concat([msg.subarray(0, a), o.subarray(b)]);
    },
  },
];

/** One to three mutators applied in turn; the result is cut at MAX_MUTATED_BYTES. */
export function mutateMessage(rng: Rng, seed: Buffer, other: () => Buffer): { bytes: Buffer; mutators: string[] } {
  const n = rng.weighted([[1, 6], [2, 3], [3, 1]] as const);
  let bytes = seed;
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const m = rng.pick(MUTATORS);
    names.push(m.name);
    bytes = m.apply(rng, bytes, other);
    if (bytes.length > MAX_MUTATED_BYTES) bytes = bytes.subarray(0, MAX_MUTATED_BYTES);
  }
  return { bytes, mutators: names };
}

/** SMTP dot-stuffing after every LF (bare LF included), plus the CRLF the final dot needs. */
export function dotStuff(msg: Buffer): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  if (msg[0] === 0x2e) parts.push(Buffer.from('.'));
  for (let i = msg.indexOf(10); i >= 0; i = msg.indexOf(10, i + 1)) {
    if (msg[i + 1] === 0x2e) {
      parts.push(msg.subarray(last, i + 1), Buffer.from('.'));
      last = i + 1;
    }
  }
  parts.push(msg.subarray(last));
  const out = Buffer.concat(parts);
  return out.subarray(-2).equals(Buffer.from('\r\n')) ? out : Buffer.concat([out, Buffer.from('\r\n')]);
}
