/** A bare POP3 client for unit tests: raw lines in, raw responses out, so tests see the exact wire. */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** Client TLS options for tests: self-signed certificates are accepted (the test checks which one it got). */
const TEST_TLS: ConnectionOptions = { rejectUnauthorized: false };

export class Pop3TestClient {
  private buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed = false;
  private readonly onData = (c: Buffer): void => {
    this.buffer = Buffer.concat([this.buffer, c]);
    this.wake?.();
  };
  private readonly onClose = (): void => {
    this.closed = true;
    this.wake?.();
  };

  private constructor(public socket: Socket) {
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<{ client: Pop3TestClient; greeting: string }> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    const client = new Pop3TestClient(socket);
    return { client, greeting: await client.line() };
  }

  /** POP3S: TLS from the first byte. */
  static async connectTls(port: number, tls: ConnectionOptions = {}): Promise<{ client: Pop3TestClient; greeting: string; tls: TLSSocket }> {
    const socket = await handshake(tlsConnect({ host: '127.0.0.1', port, ...TEST_TLS, ...tls }));
    const client = new Pop3TestClient(socket);
    return { client, greeting: await client.line(), tls: socket };
  }

  /**
   * STLS and, on `+OK`, the TLS handshake on this connection. `pipelined` is sent in the same
   * packet as STLS (a STARTTLS-injection attempt). Returns the status line and the TLS socket.
   */
  async stls(opts: { pipelined?: string; tls?: ConnectionOptions } = {}): Promise<{ status: string; tls?: TLSSocket }> {
    this.socket.write(`STLS\r\n${opts.pipelined ?? ''}`);
    const status = await this.line();
    if (!status.startsWith('+OK')) return { status };
    if (this.buffer.length) throw new Error(`server sent ${this.buffer.length} bytes after +OK before TLS`);
    const raw = this.socket;
    raw.off('data', this.onData);
    raw.off('close', this.onClose);
    const secure = await handshake(tlsConnect({ socket: raw, ...TEST_TLS, ...opts.tls }));
    this.socket = secure;
    this.attach(secure);
    return { status, tls: secure };
  }

  /** Next line without CRLF; rejects when the connection closes first or after `timeoutMs`. */
  async line(timeoutMs = 10_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.buffer.indexOf('\r\n');
      if (nl >= 0) {
        const line = this.buffer.subarray(0, nl).toString('latin1');
        this.buffer = this.buffer.subarray(nl + 2);
        return line;
      }
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > until) throw new Error('timed out waiting for a line');
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, until - Date.now()));
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  async command(line: string, timeoutMs?: number): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.line(timeoutMs);
  }

  /** A command with a multi-line answer: the status line and, after +OK, the body unstuffed (CRLF kept). */
  async multi(line: string, timeoutMs?: number): Promise<{ status: string; body?: Buffer }> {
    const status = await this.command(line, timeoutMs);
    if (!status.startsWith('+OK')) return { status };
    const lines: Buffer[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === '.') break;
      lines.push(Buffer.from((l.startsWith('.') ? l.slice(1) : l) + '\r\n', 'latin1'));
    }
    return { status, body: Buffer.concat(lines) };
  }

  async login(user = 'alice', password = 'password'): Promise<void> {
    const u = await this.command(`USER ${user}`);
    const p = await this.command(`PASS ${password}`);
    if (!u.startsWith('+OK') || !p.startsWith('+OK')) throw new Error(`login failed: ${u} / ${p}`);
  }

  /** Resolves once the server closed the connection. */
  async closedByServer(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > until) throw new Error('server did not close the connection');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

function handshake(s: TLSSocket): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    s.once('secureConnect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}
