import { spawn } from 'node:child_process';

/** One poplib call. `drop` closes the socket without QUIT (a client that goes away). */
export type Pop3Step =
  | { cmd: 'user'; arg: string }
  | { cmd: 'pass'; arg: string }
  | { cmd: 'apop'; user: string; secret: string }
  | { cmd: 'stat' }
  | { cmd: 'list'; n?: number }
  | { cmd: 'uidl'; n?: number }
  | { cmd: 'retr'; n: number; digest?: boolean }
  | { cmd: 'top'; n: number; lines: number }
  | { cmd: 'dele'; n: number }
  | { cmd: 'rset' }
  | { cmd: 'noop' }
  | { cmd: 'capa' }
  /** STLS (certificate not verified: tests use self-signed ones); `force` sends it even when CAPA does not list it. */
  | { cmd: 'stls'; force?: boolean }
  | { cmd: 'quit' }
  | { cmd: 'drop' }
  | { cmd: 'sleep'; seconds: number };

export interface Pop3StepResult {
  cmd: Pop3Step['cmd'];
  /** The status line poplib got (for `+OK` answers). */
  resp?: string;
  /** What poplib raised (error_proto carries the `-ERR` line), as `Type: message`. */
  error?: string;
  /** RETR/TOP: the message as poplib hands it over (lines joined with CRLF), unless `digest`. */
  body?: Buffer;
  /** RETR with `digest`: sha256 (hex) and size of that message, for large ones. */
  sha256?: string;
  size?: number;
  /** STAT: message count and size. */
  count?: number;
  /** LIST/UIDL without n: the lines. */
  lines?: string[];
  /** CAPA: tag → arguments. */
  capa?: Record<string, string[]>;
}

export interface PoplibSession {
  welcome?: string;
  /** Present when the session used TLS (POP3_SSL, or STLS succeeded): protocol version and the server certificate (DER, base64). */
  tls?: { version: string; cert: string };
  /** Connecting failed (nothing else was tried). */
  error?: string;
  results: Pop3StepResult[];
}

// Python's poplib is a real, independent POP3 client: each step's answer is reported, errors included.
const SCRIPT = String.raw`
import base64, hashlib, json, poplib, ssl, sys, time
args = json.loads(sys.argv[1])
out = {"results": []}
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def tlsinfo(p):
    out["tls"] = {"version": p.sock.version(), "cert": base64.b64encode(p.sock.getpeercert(binary_form=True)).decode()}
def text(v):
    if isinstance(v, bytes): return v.decode("latin1")
    return str(v)
def err(e):
    a = e.args[0] if e.args else ""
    return type(e).__name__ + ": " + text(a)
try:
    if args.get("ssl"):
        p = poplib.POP3_SSL(args["host"], args["port"], timeout=args.get("timeout", 60), context=ctx)
        tlsinfo(p)
    else:
        p = poplib.POP3(args["host"], args["port"], timeout=args.get("timeout", 60))
    out["welcome"] = text(p.getwelcome())
    if args.get("stls"):
        # A client that insists on TLS: no STLS, no session.
        p.stls(context=ctx)
        tlsinfo(p)
except Exception as e:
    out["error"] = err(e)
    print(json.dumps(out)); sys.exit(0)
for step in args["steps"]:
    cmd = step["cmd"]; r = {"cmd": cmd}
    try:
        if cmd == "user": r["resp"] = text(p.user(step["arg"]))
        elif cmd == "pass": r["resp"] = text(p.pass_(step["arg"]))
        elif cmd == "apop": r["resp"] = text(p.apop(step["user"], step["secret"]))
        elif cmd == "stat":
            c, s = p.stat(); r["count"] = c; r["size"] = s
        elif cmd in ("list", "uidl"):
            f = p.list if cmd == "list" else p.uidl
            if step.get("n") is not None: r["resp"] = text(f(step["n"]))
            else:
                resp, lines, _ = f(); r["resp"] = text(resp); r["lines"] = [text(l) for l in lines]
        elif cmd in ("retr", "top"):
            resp, lines, _ = p.retr(step["n"]) if cmd == "retr" else p.top(step["n"], step["lines"])
            body = b"".join(l + b"\r\n" for l in lines)
            r["resp"] = text(resp)
            if step.get("digest"):
                r["sha256"] = hashlib.sha256(body).hexdigest(); r["size"] = len(body)
            else: r["body"] = base64.b64encode(body).decode()
        elif cmd == "dele": r["resp"] = text(p.dele(step["n"]))
        elif cmd == "rset": r["resp"] = text(p.rset())
        elif cmd == "noop": r["resp"] = text(p.noop())
        elif cmd == "capa": r["capa"] = {text(k): [text(x) for x in v] for k, v in p.capa().items()}
        elif cmd == "stls":
            if step.get("force"):
                # As poplib's stls() does, without its CAPA check first.
                r["resp"] = text(p._shortcmd("STLS"))
                p.sock = ctx.wrap_socket(p.sock, server_hostname=p.host)
                p.file = p.sock.makefile("rb")
                p._tls_established = True
            else: r["resp"] = text(p.stls(context=ctx))
            tlsinfo(p)
        elif cmd == "quit": r["resp"] = text(p.quit())
        elif cmd == "drop":
            p.sock.close(); p.file.close()
        elif cmd == "sleep": time.sleep(step["seconds"])
    except Exception as e:
        r["error"] = err(e)
    out["results"].append(r)
print(json.dumps(out))
`;

/**
 * Runs one POP3 session with Python's poplib (Debian's /usr/bin/python3): connects, runs `steps`
 * in order (a failing step is recorded and the next one still runs), and reports every answer.
 */
export function runPoplib(opts: {
  host: string;
  port: number;
  steps: Pop3Step[];
  timeoutS?: number;
  /** Implicit TLS from the first byte (POP3S, poplib.POP3_SSL). */
  ssl?: boolean;
  /** STLS right after the greeting; when it fails, `error` says why and no step runs. */
  stls?: boolean;
}): Promise<PoplibSession> {
  return new Promise((resolve, reject) => {
    const args = JSON.stringify({ host: opts.host, port: opts.port, steps: opts.steps, timeout: opts.timeoutS ?? 60, ssl: !!opts.ssl, stls: !!opts.stls });
    const p = spawn('/usr/bin/python3', ['-c', SCRIPT, args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c) => (err += c));
    p.on('error', reject);
    p.on('close', (code) => {
      try {
        const raw = JSON.parse(Buffer.concat(out).toString('utf8')) as PoplibSession & { results: (Pop3StepResult & { body?: string })[] };
        for (const r of raw.results) if (typeof r.body === 'string') (r as Pop3StepResult).body = Buffer.from(r.body, 'base64');
        resolve(raw as PoplibSession);
      } catch {
        reject(new Error(`poplib client failed (exit ${code}): ${err || Buffer.concat(out).toString().slice(0, 2000)}`));
      }
    });
  });
}

/** USER/PASS then `steps` (the usual case). */
export function poplibSession(opts: {
  host: string;
  port: number;
  user: string;
  password?: string;
  steps: Pop3Step[];
  timeoutS?: number;
  ssl?: boolean;
  stls?: boolean;
}): Promise<PoplibSession> {
  return runPoplib({
    host: opts.host,
    port: opts.port,
    timeoutS: opts.timeoutS,
    ssl: opts.ssl,
    stls: opts.stls,
    steps: [{ cmd: 'user', arg: opts.user }, { cmd: 'pass', arg: opts.password ?? 'password' }, ...opts.steps],
  });
}
