import { spawn } from 'node:child_process';

export interface SmtpExchange {
  /** Present when the session used TLS: protocol version and the server certificate (DER, base64). */
  tls?: { version: string; cert: string };
  starttls?: [number, string];
  ehlo?: [number, string];
  mail?: [number, string];
  rcpt: [number, string][];
  data?: [number, string];
  error?: string;
}

// Python's smtplib is a real, independent SMTP client: each step's reply is reported, nothing raised.
const SCRIPT = String.raw`
import base64, json, smtplib, ssl, sys
args = json.loads(sys.argv[1])
msg = sys.stdin.buffer.read()
out = {"rcpt": []}
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def tlsinfo(s):
    out["tls"] = {"version": s.sock.version(), "cert": base64.b64encode(s.sock.getpeercert(binary_form=True)).decode()}
try:
    if args.get("ssl"):
        s = smtplib.SMTP_SSL(args["host"], args["port"], timeout=args.get("timeout", 60), context=ctx)
        tlsinfo(s)
    else:
        s = smtplib.SMTP(args["host"], args["port"], timeout=args.get("timeout", 60))
    c, m = s.ehlo("client.example.org"); out["ehlo"] = [c, m.decode("latin1")]
    if args.get("starttls"):
        c, m = s.starttls(context=ctx); out["starttls"] = [c, m.decode("latin1")]
        tlsinfo(s)
        c, m = s.ehlo("client.example.org"); out["ehlo"] = [c, m.decode("latin1")]
    c, m = s.mail(args["from"]); out["mail"] = [c, m.decode("latin1")]
    ok = c == 250
    any_rcpt = False
    for r in args["to"]:
        c, m = s.rcpt(r); out["rcpt"].append([c, m.decode("latin1")])
        any_rcpt = any_rcpt or c in (250, 251)
    if ok and any_rcpt:
        c, m = s.data(msg); out["data"] = [c, m.decode("latin1")]
    try: s.quit()
    except Exception: pass
except Exception as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
`;

/** Sends one message with Python's smtplib; resolves with every reply the client saw. */
export function sendWithSmtplib(opts: {
  host: string;
  port: number;
  from?: string;
  to: string[];
  message: Buffer;
  timeoutS?: number;
  /** Upgrade with STARTTLS after EHLO (certificate not verified: tests use self-signed ones). */
  starttls?: boolean;
  /** Implicit TLS from the first byte (SMTPS). */
  ssl?: boolean;
}): Promise<SmtpExchange> {
  return new Promise((resolve, reject) => {
    const args = JSON.stringify({ host: opts.host, port: opts.port, from: opts.from ?? 'sender@example.org', to: opts.to, timeout: opts.timeoutS ?? 60, starttls: !!opts.starttls, ssl: !!opts.ssl });
    const p = spawn('/usr/bin/python3', ['-c', SCRIPT, args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('error', reject);
    p.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as SmtpExchange);
      } catch {
        reject(new Error(`smtplib client failed (exit ${code}): ${err || out}`));
      }
    });
    p.stdin.end(opts.message);
  });
}
