import { spawnSync } from 'node:child_process';

/** A MIME tree as Python's email package (policy.default) reads it: an independent parser. */
export interface PyPart {
  type: string;
  filename: string | null;
  disposition: string | null;
  /** Defects the parser found in this part (e.g. a missing closing boundary). */
  defects: string[];
  /** Header names in order. */
  headers: string[];
  /** Decoded subject, on message parts. */
  subject: string | null;
  /** Children of a multipart. */
  parts?: PyPart[];
  /** The embedded message of a message/rfc822 part. */
  message?: PyPart;
  /** Decoded body of any other part. */
  data?: Buffer;
}

const SCRIPT = `
import sys, json, base64, email
from email import policy
def walk(p):
    d = {'type': p.get_content_type(), 'filename': p.get_filename(), 'disposition': p.get_content_disposition(),
         'defects': [type(x).__name__ for x in p.defects], 'headers': list(p.keys()),
         'subject': str(p['subject']) if p['subject'] is not None else None}
    if p.get_content_maintype() == 'multipart':
        d['parts'] = [walk(c) for c in p.get_payload()]
    elif p.get_content_type() == 'message/rfc822':
        d['message'] = walk(p.get_payload(0))
    else:
        d['data'] = base64.b64encode(p.get_payload(decode=True) or b'').decode()
    return d
print(json.dumps(walk(email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default))))
`;

const SUBJECTS_SCRIPT = `
import sys, json, base64, email
from email import policy
def subject(raw):
    try:
        m = email.message_from_bytes(base64.b64decode(raw), policy=policy.default)
        s = m['subject']
        return {'subject': str(s) if s is not None else None, 'defects': [type(x).__name__ for x in m.defects]}
    except Exception as e:
        return {'error': type(e).__name__ + ': ' + str(e)}
print(json.dumps([subject(m) for m in json.load(sys.stdin)]))
`;

/** Runs a Python script on `input`, giving back its stdout parsed as JSON. */
function runPython(script: string, input: Buffer | string): unknown {
  const result = spawnSync('python3', ['-c', script], { input, maxBuffer: 256 * 1024 * 1024 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr.toString()}`);
  return JSON.parse(result.stdout.toString());
}

/** Parses `message` with Python's email package (python3 must be on the PATH). */
export function pythonParse(message: Buffer): PyPart {
  const revive = (part: PyPart & { data?: unknown }): PyPart => ({
    ...part,
    ...(part.parts ? { parts: part.parts.map(revive) } : {}),
    ...(part.message ? { message: revive(part.message) } : {}),
    ...(typeof part.data === 'string' ? { data: Buffer.from(part.data, 'base64') } : {}),
  });
  return revive(runPython(SCRIPT, message) as PyPart);
}

/** A message's root header as Python reads it: the decoded Subject (null without one), the root's defects. */
export interface PySubject {
  subject?: string | null;
  defects?: string[];
  /** What Python raised instead. */
  error?: string;
}

/** The root Subject of each message as Python's email package reads it; many messages in one python3 run. */
export function pythonSubjects(messages: Buffer[]): PySubject[] {
  return runPython(SUBJECTS_SCRIPT, JSON.stringify(messages.map((m) => m.toString('base64')))) as PySubject[];
}

/** Whether python3 can be run (the structure checks are skipped without it). */
export const hasPython = spawnSync('python3', ['-c', 'import email'], { stdio: 'ignore' }).status === 0;
