// Robustness over real-world and malformed mail (../shared/corpus, when present): every message
// sent through the gateway by a real client (Python smtplib, bytes as they are in the file, bare
// LF included) is delivered byte-for-byte in its CRLF form, or refused with a clear permanent
// reply (NUL bytes); nothing crashes a service and nothing is left in temporary failure.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startGatewayStack, type GatewayStack } from '../support/gateway-stack.js';
import { delivered } from '../support/mailbox.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const corpus = process.env.MAILWARDEN_CORPUS ?? join(repo, '..', 'shared', 'corpus');
const present = existsSync(join(corpus, 'MANIFEST.tsv'));

// One smtplib session sends every file (RSET between messages) and reports each DATA reply.
const SENDER = String.raw`
import json, smtplib, sys
args = json.loads(sys.argv[1])
s = smtplib.SMTP(args["host"], args["port"], timeout=60)
s.ehlo("corpus.example.org")
out = []
for i, path in enumerate(args["files"]):
    data = open(path, "rb").read()
    try:
        s.mail("corpus@example.org")
        s.rcpt("c%d@example.test" % i)
        code, msg = s.data(data)
    except smtplib.SMTPResponseException as e:
        code, msg = e.smtp_code, e.smtp_error
    except smtplib.SMTPServerDisconnected:
        s = smtplib.SMTP(args["host"], args["port"], timeout=60); s.ehlo("corpus.example.org")
        code, msg = 0, b"disconnected"
    out.append([code, msg.decode("latin1")])
    try: s.rset()
    except Exception: pass
print(json.dumps(out))
`;

/** What upstream must get: what smtplib sent (it adds CRLF unless the data ends with one), in CRLF. */
function normalised(data: Buffer): Buffer {
  let s = data.toString('latin1');
  if (!s.endsWith('\r\n')) s += '\r\n';
  return Buffer.from(s.replace(/\r\n|\n|\r/g, '\r\n'), 'latin1');
}

let gw: GatewayStack;
before(async () => {
  if (present) gw = await startGatewayStack();
});
after(async () => {
  await gw?.stop();
});

test('every corpus message is delivered identical, or refused with a clear 5xx', { skip: present ? false : `no corpus at ${corpus}` }, async () => {
  const files = readFileSync(join(corpus, 'MANIFEST.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => join(corpus, l.split('\t')[0]!));
  const replies = await new Promise<[number, string][]>((resolve, reject) => {
    const p = spawn('/usr/bin/python3', ['-c', SENDER, JSON.stringify({ ...gw.smtp, files })]);
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('close', () => {
      try {
        resolve(JSON.parse(out) as [number, string][]);
      } catch {
        reject(new Error(`corpus sender failed: ${err}`));
      }
    });
  });
  assert.equal(replies.length, files.length);
  const problems: string[] = [];
  let identical = 0;
  for (const [i, file] of files.entries()) {
    const [code, text] = replies[i]!;
    const name = file.slice(corpus.length + 1);
    const wire = normalised(readFileSync(file));
    const got = await delivered(gw.mailRoot, `c${i}`);
    if (code === 250) {
      if (got.length !== 1) problems.push(`${name}: 250 but ${got.length} deliveries`);
      else if (got[0]!.equals(wire)) identical++;
      else if (!got[0]!.includes('removed the attachment')) problems.push(`${name}: delivered changed although nothing was removed`);
    } else if (code >= 500) {
      if (got.length) problems.push(`${name}: refused with ${code} but delivered`);
      if (wire.includes(0) !== /NUL/.test(text) && !/structure/i.test(text)) problems.push(`${name}: unexpected refusal ${code} ${text}`);
    } else {
      problems.push(`${name}: ${code} ${text}`);
    }
  }
  const codes = replies.reduce<Record<string, number>>((m, [c, t]) => ((m[`${c} ${t.slice(0, 60)}`] = (m[`${c} ${t.slice(0, 60)}`] ?? 0) + 1), m), {});
  assert.deepEqual(problems, [], JSON.stringify(codes));
  assert.ok(identical > files.length * 0.9, `only ${identical} of ${files.length} delivered byte-identical: ${JSON.stringify(codes)}`);
  // The services survived all of it.
  for (const svc of Object.values(gw.services).flat()) assert.equal(svc.output().includes('"level":60'), false, `${svc.name} logged a fatal error`);
});
