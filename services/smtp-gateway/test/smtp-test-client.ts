/** A raw SMTP client for tests: one reply per command, and direct access to the socket to misbehave. */
import { connect, type Socket } from 'node:net';

export interface Reply {
  code: number;
  text: string;
}

export class SmtpTestClient {
  private buffer = '';
  private waiters: ((r: Reply) => void)[] = [];
  private replies: Reply[] = [];
  private lines: string[] = [];
  closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => this.onData(d));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<{ client: SmtpTestClient; greeting: Reply }> {
    const socket = connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpTestClient(socket);
    return { client, greeting: await client.reply() };
  }

  /** The next reply; rejects when the connection closes first. */
  reply(timeoutMs = 10_000): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply in time')), timeoutMs);
      const onClose = () => {
        clearTimeout(timer);
        reject(new Error('connection closed without a reply'));
      };
      this.socket.once('close', onClose);
      this.waiters.push((r) => {
        clearTimeout(timer);
        this.socket.off('close', onClose);
        resolve(r);
      });
    });
  }

  async command(line: string, timeoutMs?: number): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** EHLO, MAIL, RCPT and DATA up to the 354. */
  async begin(helo = 'client.example.test', rcpt = 'rcpt@example.test'): Promise<void> {
    for (const [line, code] of [
      [`EHLO ${helo}`, 250],
      ['MAIL FROM:<sender@example.org>', 250],
      [`RCPT TO:<${rcpt}>`, 250],
      ['DATA', 354],
    ] as const) {
      const r = await this.command(line);
      if (r.code !== code) throw new Error(`${line}: ${r.code} ${r.text}`);
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.buffer += d.toString('latin1');
    let nl: number;
    while ((nl = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 2);
      this.lines.push(line.slice(4));
      if (line[3] === '-') continue;
      const reply = { code: Number(line.slice(0, 3)), text: this.lines.join('\n') };
      this.lines = [];
      const w = this.waiters.shift();
      if (w) w(reply);
      else this.replies.push(reply);
    }
  }
}

/** A message of about `bytes` bytes, CRLF lines of 'A's. */
export function bigMessage(bytes: number, subject = 'big'): Buffer {
  const line = 'A'.repeat(998) + '\r\n';
  const head = `From: sender@example.org\r\nTo: rcpt@example.test\r\nSubject: ${subject}\r\n\r\n`;
  return Buffer.from(head + line.repeat(Math.ceil(bytes / line.length)), 'latin1');
}
