/**
 * A raw TCP client for hostile sessions: writes exactly the bytes given, reads replies line by
 * line, and records what was sent (the reproducer) and received. Every wait has a deadline.
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export class RawConn {
  readonly sent: Buffer[] = [];
  private buf = '';
  transcript = '';
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      const s = d.toString('latin1');
      this.buf += s;
      if (this.transcript.length < 64 * 1024) this.transcript += s;
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(host: string, port: number, timeoutMs = 5000): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect: no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new RawConn(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async until<T>(test: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = test();
      if (v !== undefined) return v;
      if (this.closed) return test();
      const left = end - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  write(data: Buffer | string): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.sent.reduce((n, x) => n + x.length, 0) < 16 * 1024 * 1024) this.sent.push(b);
    if (this.closed || this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise((resolve) => {
      const ok = this.socket.write(b, () => resolve());
      if (!ok) this.socket.once('drain', () => resolve());
    });
  }

  /** One text line (without CRLF); undefined on timeout or close. */
  line(timeoutMs: number): Promise<string | undefined> {
    return this.until(() => {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) return undefined;
      const l = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      return l;
    }, timeoutMs);
  }

  /** One SMTP reply (continuation lines folded in): its code, or undefined on timeout/close. */
  async smtpReply(timeoutMs: number): Promise<{ code: number; text: string } | undefined> {
    const end = Date.now() + timeoutMs;
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(Math.max(1, end - Date.now()));
      if (l === undefined) return undefined;
      lines.push(l);
      if (!/^\d{3}-/.test(l)) return { code: Number(l.slice(0, 3)) || 0, text: lines.map((x) => x.slice(4)).join(' ') };
    }
  }

  /** A POP3 multi-line body up to the lone dot (dot-unstuffed); undefined on timeout/close. */
  async pop3Multiline(timeoutMs: number): Promise<Buffer | undefined> {
    const v = await this.until(() => {
      const i = this.buf.startsWith('.\r\n') ? 0 : this.buf.indexOf('\r\n.\r\n');
      if (i < 0) return undefined;
      const body = i === 0 ? '' : this.buf.slice(0, i + 2);
      this.buf = this.buf.slice(i === 0 ? 3 : i + 5);
      return body;
    }, timeoutMs);
    return v === undefined ? undefined : Buffer.from(v.replace(/(^|\r\n)\.\./g, '$1.'), 'latin1');
  }

  /** Whatever arrived and was not consumed yet. */
  drain(): string {
    const b = this.buf;
    this.buf = '';
    return b;
  }

  /** Waits for the peer to close; true when it did. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    return (await this.until(() => (this.closed ? true : undefined), timeoutMs)) ?? false;
  }

  /** Half-close: FIN, keep reading. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Writes one byte at a time, `gapMs` apart, for at most `maxMs`; returns how many were sent. */
  async trickle(data: string, gapMs: number, maxMs: number): Promise<number> {
    const end = Date.now() + maxMs;
    let n = 0;
    for (const ch of data) {
      if (this.closed || Date.now() >= end) break;
      await this.write(ch);
      n++;
      await sleep(gapMs);
    }
    return n;
  }

  /** All bytes sent, for the reproducer file. */
  sentBytes(): Buffer {
    return Buffer.concat(this.sent);
  }
}
