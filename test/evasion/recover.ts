/**
 * The recovery oracle: everything a lenient mail client or a determined user could get out of a
 * delivered message, found without the gateway's own parser. Three sources, applied repeatedly to
 * whatever they produce (a decoded blob may be a message, base64 again, or an archive):
 *
 *  - Python's `email` package (Debian's /usr/bin/python3), policies compat32 and default: every
 *    part of `walk()` (attached messages included), decoded and raw, plus preambles and epilogues;
 *    and Python's `zipfile` on anything that holds a zip.
 *  - brute force over the bytes: runs of base64 lines (strict, and lenient about junk characters,
 *    whitespace and padding), uuencoded blocks, begin-base64 blocks, yEnc blocks, and
 *    quoted-printable decoding of the whole blob.
 *  - archive carving: zip members by local headers and by central directory entries, inflated
 *    whatever method they claim; gzip members.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, gunzipSync, inflateRawSync } from 'node:zlib';
import type { Payload } from './build.js';

export interface Recovered {
  /** How the blob was obtained: the chain of steps from the delivered message, joined with " > ". */
  via: string;
  bytes: Buffer;
}

const MAX_BLOBS = 4000;
const MAX_ROUNDS = 6;
const MIN_BYTES = 4;

// Python's email package on each message, zipfile on each archive; blobs go back as base64 JSON.
const PYTHON = String.raw`
import base64, email, email.policy, io, json, sys, zipfile
req = json.load(sys.stdin)
out = []
def add(i, via, data):
    if data is None: return
    if isinstance(data, email.message.Message): data = data.as_bytes()
    if isinstance(data, str):
        try: data = data.encode("ascii", "surrogateescape")
        except UnicodeEncodeError: data = data.encode("utf-8", "surrogateescape")
    if len(data) >= 4: out.append([i, via, base64.b64encode(data).decode()])
for i, m in enumerate(req["messages"]):
    raw = base64.b64decode(m)
    for name, pol in (("compat32", email.policy.compat32), ("default", email.policy.default)):
        try: msg = email.message_from_bytes(raw, policy=pol)
        except Exception: continue
        try: parts = list(msg.walk())
        except Exception: parts = [msg]
        for n, part in enumerate(parts):
            tag = "python-%s part %d (%s)" % (name, n, part.get_content_type() if hasattr(part, "get_content_type") else "?")
            for attr in ("preamble", "epilogue"):
                try: add(i, "%s %s" % (tag, attr), getattr(part, attr, None))
                except Exception: pass
            try:
                if part.is_multipart(): continue
            except Exception: pass
            try: add(i, tag + " decoded", part.get_payload(decode=True))
            except Exception: pass
            try:
                r = part.get_payload()
                if isinstance(r, (str, bytes)): add(i, tag + " raw", r)
            except Exception: pass
            if name == "default":
                try: add(i, tag + " get_content", part.get_content())
                except Exception: pass
for i, z in enumerate(req["zips"]):
    j = len(req["messages"]) + i
    try: zf = zipfile.ZipFile(io.BytesIO(base64.b64decode(z)))
    except Exception: continue
    for info in zf.infolist():
        data = b""
        try:
            with zf.open(info) as f:
                while True:
                    chunk = f.read(65536)
                    if not chunk: break
                    data += chunk
        except Exception: pass
        add(j, "python-zipfile member " + info.filename, data)
print(json.dumps(out))
`;

function python(messages: Buffer[], zips: Buffer[]): Promise<{ index: number; via: string; bytes: Buffer }[]> {
  if (!messages.length && !zips.length) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/python3', ['-c', PYTHON], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c) => (err += c));
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      try {
        const rows = JSON.parse(Buffer.concat(out).toString('utf8')) as [number, string, string][];
        resolve(rows.map(([index, via, b]) => ({ index, via, bytes: Buffer.from(b, 'base64') })));
      } catch {
        reject(new Error(`recovery oracle: python failed (exit ${code}): ${err.slice(0, 2000)}`));
      }
    });
    p.stdin.end(JSON.stringify({ messages: messages.map((m) => m.toString('base64')), zips: zips.map((z) => z.toString('base64')) }));
  });
}

// ---- brute-force decoders -------------------------------------------------------------------

const B64_LINE = /^[A-Za-z0-9+/]{2,}={0,2}[ \t]*$/;
const HEADER_LINE = /^[\x21-\x39\x3b-\x7e]+[ \t]*:/;

const lines = (s: string): string[] => s.split(/\r\n|\n|\r/);

/** base64 of a cleaned string: as one stream, and split at "=" padding (each segment on its own). */
function decodeB64Variants(clean: string): Buffer[] {
  const out: Buffer[] = [];
  const whole = clean.replace(/=/g, '');
  if (whole.length >= 6) out.push(Buffer.from(whole, 'base64'));
  if (/=[A-Za-z0-9+/]/.test(clean)) {
    const segments = clean.split(/=+/).filter((s) => s.length >= 2);
    out.push(Buffer.concat(segments.map((s) => Buffer.from(s, 'base64'))));
  }
  return out;
}

/** Runs of base64-alphabet lines; `acrossBlank` lets a run continue over empty lines. */
function base64Runs(text: string, acrossBlank: boolean): string[] {
  const runs: string[] = [];
  let cur: string[] = [];
  const flush = () => {
    if (cur.join('').length >= 8) runs.push(cur.join(''));
    cur = [];
  };
  for (const line of lines(text)) {
    if (B64_LINE.test(line) && line.trim().length >= 4) cur.push(line.trim());
    else if (acrossBlank && line.trim() === '' && cur.length) continue;
    else flush();
  }
  flush();
  return runs;
}

/** Lenient: paragraphs (split at blank lines and "--" lines), header-like lines dropped, every non-alphabet character ignored. */
function base64Paragraphs(text: string): string[] {
  const out: string[] = [];
  for (const para of text.split(/\r?\n(?:[ \t]*\r?\n|--[^\r\n]*\r?\n)/)) {
    const ls = lines(para);
    let k = 0;
    while (k < ls.length && (HEADER_LINE.test(ls[k]!) || (k > 0 && /^[ \t]/.test(ls[k]!) && HEADER_LINE.test(ls[k - 1]!)))) k++;
    const clean = ls.slice(k).join('').replace(/[^A-Za-z0-9+/=]/g, '');
    if (clean.length >= 8) out.push(clean);
  }
  return out;
}

/** uuencoded blocks ("begin NNN name" … "end"), lenient about line lengths and the zero character. */
function uuBlocks(text: string): Buffer[] {
  const out: Buffer[] = [];
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    if (!/^begin +[0-7]{1,4} +\S/.test(ls[i]!)) continue;
    const bytes: number[] = [];
    for (let j = i + 1; j < ls.length; j++) {
      const line = ls[j]!;
      if (line.trim() === 'end') break;
      if (!line.length) continue;
      const n = (line.charCodeAt(0) - 32) & 63;
      if (n === 0) continue;
      const vals: number[] = [];
      for (let k = 1; k < 1 + Math.ceil(n / 3) * 4; k++) vals.push(((line.charCodeAt(k) || 32) - 32) & 63);
      const got: number[] = [];
      for (let k = 0; k < vals.length; k += 4) {
        const [a, b, c, d] = [vals[k] ?? 0, vals[k + 1] ?? 0, vals[k + 2] ?? 0, vals[k + 3] ?? 0];
        got.push(((a << 2) | (b >> 4)) & 255, ((b << 4) | (c >> 2)) & 255, ((c << 6) | d) & 255);
      }
      bytes.push(...got.slice(0, n));
    }
    if (bytes.length) out.push(Buffer.from(bytes));
  }
  return out;
}

/** begin-base64 blocks (uuencode -m): base64 lines up to "====". */
function beginBase64Blocks(text: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /^begin-base64 +[0-7]{1,4} +[^\r\n]*(?:\r\n|\n|\r)([\s\S]*?)(?:^====\s*$|$(?![\s\S]))/gm;
  for (const m of text.matchAll(re)) out.push(Buffer.from(m[1]!.replace(/[^A-Za-z0-9+/]/g, ''), 'base64'));
  return out;
}

/** yEnc blocks: "=ybegin" … "=yend", "=ypart" lines skipped, "=" escapes honoured. */
function yencBlocks(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const text = blob.toString('latin1');
  for (const m of text.matchAll(/^=ybegin [^\r\n]*(?:\r\n|\n|\r)([\s\S]*?)(?:^=yend|$(?![\s\S]))/gm)) {
    const bytes: number[] = [];
    for (const line of lines(m[1]!)) {
      if (line.startsWith('=ypart ')) continue;
      for (let i = 0; i < line.length; i++) {
        let c = line.charCodeAt(i);
        if (c === 0x3d && i + 1 < line.length) c = (line.charCodeAt(++i) - 64) & 0xff;
        bytes.push((c - 42) & 0xff);
      }
    }
    if (bytes.length) out.push(Buffer.from(bytes));
  }
  return out;
}

/** Quoted-printable decoding of the whole blob: soft breaks (with trailing whitespace, bare LF) and =XX in either case. */
function qpDecode(text: string): Buffer | undefined {
  if (!/=[0-9A-Fa-f]{2}|=[ \t]*(?:\r\n|\n|\r)/.test(text)) return undefined;
  const s = text.replace(/=[ \t]*(?:\r\n|\n|\r)/g, '');
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}

// ---- archive carving ------------------------------------------------------------------------

function inflateLenient(data: Buffer): Buffer | undefined {
  try {
    return inflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  } catch {
    return undefined;
  }
}

function indexesOf(blob: Buffer, needle: Buffer): number[] {
  const out: number[] = [];
  for (let i = blob.indexOf(needle); i >= 0 && out.length < 200; i = blob.indexOf(needle, i + 1)) out.push(i);
  return out;
}

const LOCAL = Buffer.from('PK\x03\x04', 'latin1');
const CENTRAL = Buffer.from('PK\x01\x02', 'latin1');
const EOCD = Buffer.from('PK\x05\x06', 'latin1');

/** Zip members by local headers and by central directory entries, inflated whatever the method says. */
function carveZip(blob: Buffer): { via: string; bytes: Buffer }[] {
  const out: { via: string; bytes: Buffer }[] = [];
  for (const off of indexesOf(blob, LOCAL)) {
    if (off + 30 > blob.length) continue;
    const method = blob.readUInt16LE(off + 8);
    const size = blob.readUInt32LE(off + 18);
    const start = off + 30 + blob.readUInt16LE(off + 26) + blob.readUInt16LE(off + 28);
    const end = size > 0 && start + size <= blob.length ? start + size : blob.length;
    const inflated = inflateLenient(blob.subarray(start, end));
    if (inflated?.length) out.push({ via: `zip local header @${off} (method ${method}) inflated`, bytes: inflated });
    if (size > 0 && end > start) out.push({ via: `zip local header @${off} stored`, bytes: blob.subarray(start, end) });
  }
  // Where the archive starts: 0, or as the EOCD record says (central directory offset vs position).
  const bases = new Set<number>([0]);
  for (const e of indexesOf(blob, EOCD)) {
    if (e + 22 > blob.length) continue;
    bases.add(e - blob.readUInt32LE(e + 12) - blob.readUInt32LE(e + 16));
  }
  for (const off of indexesOf(blob, CENTRAL)) {
    if (off + 46 > blob.length) continue;
    const nameLen = blob.readUInt16LE(off + 28);
    const size = blob.readUInt32LE(off + 20);
    const rel = blob.readUInt32LE(off + 42);
    for (const base of bases) {
      const local = base + rel;
      if (local < 0 || local + 30 > blob.length) continue;
      const intact = blob.subarray(local, local + 4).equals(LOCAL);
      const start = local + 30 + (intact ? blob.readUInt16LE(local + 26) + blob.readUInt16LE(local + 28) : nameLen);
      const end = size > 0 && start + size <= blob.length ? start + size : blob.length;
      const inflated = inflateLenient(blob.subarray(start, end));
      if (inflated?.length) out.push({ via: `zip central directory @${off} → data @${start} inflated`, bytes: inflated });
      if (!intact && size > 0) out.push({ via: `zip central directory @${off} → data @${start} stored`, bytes: blob.subarray(start, end) });
    }
  }
  return out;
}

function carveGzip(blob: Buffer): { via: string; bytes: Buffer }[] {
  const out: { via: string; bytes: Buffer }[] = [];
  for (const off of indexesOf(blob, Buffer.from([0x1f, 0x8b, 0x08]))) {
    try {
      out.push({ via: `gzip @${off}`, bytes: gunzipSync(blob.subarray(off), { finishFlush: constants.Z_SYNC_FLUSH }) });
    } catch {
      // not a gzip member after all
    }
  }
  return out;
}

/**
 * What a browser gets out of markup: data: URIs (base64, tabs/newlines/blanks dropped as the URL
 * parser and forgiving-base64 do; or percent-encoded) and base64 string literals a script could
 * pass to atob().
 */
function markupFiles(text: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(/data:[^,"'<>]*?;\s*base64\s*,([A-Za-z0-9+/=\s]+)/gi)) out.push(Buffer.from(m[1]!.replace(/\s/g, ''), 'base64'));
  for (const m of text.matchAll(/data:[^,"'<>;]*,([^"'<>\s)]+)/gi)) {
    out.push(Buffer.from(m[1]!.replace(/%([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1'));
  }
  for (const m of text.matchAll(/(["'`])([A-Za-z0-9+/=\s]{16,})\1/g)) out.push(Buffer.from(m[2]!.replace(/\s/g, ''), 'base64'));
  return out;
}

/** Everything the brute-force decoders and carvers get out of one blob (one step). */
export function bruteForce(blob: Buffer): { via: string; bytes: Buffer }[] {
  const out: { via: string; bytes: Buffer }[] = [];
  const text = blob.toString('latin1');
  for (const run of base64Runs(text, false)) for (const b of decodeB64Variants(run)) out.push({ via: 'base64 run', bytes: b });
  for (const run of base64Runs(text, true)) for (const b of decodeB64Variants(run)) out.push({ via: 'base64 run (across blank lines)', bytes: b });
  for (const para of base64Paragraphs(text)) for (const b of decodeB64Variants(para)) out.push({ via: 'base64 paragraph (lenient)', bytes: b });
  for (const b of uuBlocks(text)) out.push({ via: 'uuencode block', bytes: b });
  for (const b of beginBase64Blocks(text)) out.push({ via: 'begin-base64 block', bytes: b });
  for (const b of yencBlocks(blob)) out.push({ via: 'yEnc block', bytes: b });
  for (const b of markupFiles(text)) out.push({ via: 'data: URI or script string', bytes: b });
  const qp = qpDecode(text);
  if (qp) out.push({ via: 'quoted-printable (whole blob)', bytes: qp });
  if (blob.includes(LOCAL) || blob.includes(CENTRAL)) out.push(...carveZip(blob));
  out.push(...carveGzip(blob));
  return out.filter((r) => r.bytes.length >= MIN_BYTES);
}

const looksLikeMessage = (b: Buffer): boolean => {
  const head = b.subarray(0, 4096).toString('latin1');
  return HEADER_LINE.test(head) || /^(content-type|mime-version|content-transfer-encoding)[ \t]*:/im.test(head);
};

/** Every byte string a lenient client or a determined user could recover from `delivered`. */
export async function recover(delivered: Buffer): Promise<Recovered[]> {
  const seen = new Set<string>();
  const all: Recovered[] = [];
  const add = (via: string, bytes: Buffer): Recovered | undefined => {
    if (bytes.length < MIN_BYTES || all.length >= MAX_BLOBS) return undefined;
    const key = createHash('sha1').update(bytes).digest('hex');
    if (seen.has(key)) return undefined;
    seen.add(key);
    const r = { via, bytes };
    all.push(r);
    return r;
  };
  add('raw message', delivered);
  let bruteDone = 0;
  const sentToPython = new Set<Recovered>();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const before = all.length;
    // Brute force on every blob not yet brute-forced (including what it produces, up to the cap).
    for (; bruteDone < all.length; bruteDone++) {
      const r = all[bruteDone]!;
      for (const d of bruteForce(r.bytes)) add(`${r.via} > ${d.via}`, d.bytes);
    }
    const pending = all.filter((r) => !sentToPython.has(r));
    const messages = pending.filter((r) => looksLikeMessage(r.bytes)).slice(0, 200);
    const zips = pending.filter((r) => r.bytes.includes(LOCAL) || r.bytes.includes(EOCD)).slice(0, 200);
    for (const r of pending) sentToPython.add(r);
    for (const row of await python(messages.map((r) => r.bytes), zips.map((r) => r.bytes))) {
      const parent = row.index < messages.length ? messages[row.index]! : zips[row.index - messages.length]!;
      add(`${parent.via} > ${row.via}`, row.bytes);
    }
    if (all.length === before) break;
  }
  return all;
}

/** The recovered blobs that contain the payload (for EICAR: the EICAR string; otherwise the exact bytes). */
export function payloadHits(recovered: Recovered[], payload: Payload): Recovered[] {
  return recovered.filter((r) => r.bytes.includes(payload.bytes));
}

export function payloadRecovered(recovered: Recovered[], payload: Payload): boolean {
  return payloadHits(recovered, payload).length > 0;
}

/** Markers absent from every recovered blob. */
export function missingMarkers(recovered: Recovered[], markers: string[]): string[] {
  return markers.filter((m) => !recovered.some((r) => r.bytes.includes(m)));
}

/** Which clean markers can no longer be read in `delivered` (empty: all intact). */
export async function cleanIntact(delivered: Buffer, markers: string[]): Promise<string[]> {
  return missingMarkers(await recover(delivered), markers);
}
