/**
 * A minimal SMTP client on a raw socket (no pipelining), shared by the benchmark's load generator
 * (bench/src/smtp-load.ts) and the fault drill (drill/): greeting and EHLO at open, then one
 * transaction at a time on the same connection. `stage` says how far the current transaction got,
 * so a caller can tell a connection lost before the end of DATA (nothing can have been delivered)
 * from one lost while waiting for the final reply (the message may have been delivered).
 */
import { connect, type Socket } from 'node:net';

export interface SmtpReply {
  code: number;
  text: string;
}

export class SmtpError extends Error {
  override name = 'SmtpError';
  constructor(
    message: string,
    /** The server's reply, when the error is a refused greeting or EHLO. */
    readonly reply?: SmtpReply,
  ) {
    super(message);
  }
}

/** Where a transaction is: `final` = the final dot was written, the final reply not yet read. */
export type SmtpStage = 'idle' | 'greeting' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'body' | 'final' | 'quit';

/** One client connection: greeting and EHLO done at open, then one transaction at a time. */
export class SmtpConnection {
  private buffer = '';
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private lines: string[] = [];
  /** How far the current (or last) transaction got: the stage of its last reply or failure. */
  stage: SmtpStage = 'greeting';

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      this.pump();
    });
    socket.on('error', (err) => this.fail(new SmtpError(`socket: ${err.message}`)));
    socket.on('close', () => this.fail(new SmtpError('connection closed')));
  }

  static async open(host: string, port: number, timeoutMs = 180_000, helo = 'bench.example'): Promise<SmtpConnection> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const c = new SmtpConnection(socket, timeoutMs);
    try {
      const greeting = await c.read();
      if (greeting.code !== 220) throw new SmtpError(`greeting ${greeting.code} ${greeting.text}`, greeting);
      c.stage = 'ehlo';
      const ehlo = await c.command(`EHLO ${helo}`);
      if (ehlo.code !== 250) throw new SmtpError(`EHLO ${ehlo.code} ${ehlo.text}`, ehlo);
    } catch (err) {
      c.socket.destroy();
      throw err;
    }
    c.stage = 'idle';
    return c;
  }

  get alive(): boolean {
    return !this.failure;
  }

  command(line: string): Promise<SmtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.read();
  }

  /** One transaction; returns the first reply that is not the expected one, or the final reply. */
  async send(from: string, to: string[], data: Buffer): Promise<SmtpReply> {
    this.stage = 'mail';
    const mail = await this.command(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) return this.abort(mail);
    this.stage = 'rcpt';
    for (const rcpt of to) {
      const r = await this.command(`RCPT TO:<${rcpt}>`);
      if (r.code !== 250 && r.code !== 251) return this.abort(r);
    }
    this.stage = 'data';
    const go = await this.command('DATA');
    if (go.code !== 354) return this.abort(go);
    this.stage = 'body';
    // A connection lost while the buffer is full never drains: wait for either.
    if (!this.socket.write(data)) await new Promise((r) => (this.socket.once('drain', r), this.socket.once('close', r)));
    if (this.failure) throw this.failure;
    this.socket.write(data.subarray(-2).equals(Buffer.from('\r\n')) ? '.\r\n' : '\r\n.\r\n');
    this.stage = 'final';
    return this.read();
  }

  /** QUIT, waiting at most `waitMs` for the 221 (a client does not need it), then closes. */
  async quit(waitMs = 5000): Promise<void> {
    this.stage = 'quit';
    if (this.alive) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.command('QUIT').catch(() => undefined), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    this.socket.destroy();
  }

  private async abort(reply: SmtpReply): Promise<SmtpReply> {
    await this.command('RSET').catch(() => undefined);
    return reply;
  }

  private read(): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new SmtpError(`no reply within ${this.timeoutMs} ms`)), this.timeoutMs);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.pump();
    });
  }

  private pump(): void {
    let nl: number;
    while (this.waiter && (nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.lines.push(line);
      if (line[3] !== '-') {
        const reply = { code: Number(line.slice(0, 3)), text: this.lines.map((l) => l.slice(4)).join(' ') };
        this.lines = [];
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(reply);
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.socket.destroy();
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }
}
