/**
 * Load generator: a pool of SMTP connections on raw sockets (no pipelining), one per concurrent
 * worker, each reused for message after message. Latency is measured from the first byte of
 * MAIL FROM to the final reply after DATA. Bounded by a message count and by time: when either
 * runs out no new message starts, and the ones in flight finish.
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SmtpReply {
  code: number;
  text: string;
}

export class SmtpError extends Error {
  override name = 'SmtpError';
}

/** One client connection: greeting and EHLO done at open, then one transaction at a time. */
export class SmtpConnection {
  private buffer = '';
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private lines: string[] = [];

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

  static async open(host: string, port: number, timeoutMs = 180_000): Promise<SmtpConnection> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const c = new SmtpConnection(socket, timeoutMs);
    const greeting = await c.read();
    if (greeting.code !== 220) throw new SmtpError(`greeting ${greeting.code} ${greeting.text}`);
    const ehlo = await c.command('EHLO bench.example');
    if (ehlo.code !== 250) throw new SmtpError(`EHLO ${ehlo.code} ${ehlo.text}`);
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
    const mail = await this.command(`MAIL FROM:<${from}>`);
    if (mail.code !== 250) return this.abort(mail);
    for (const rcpt of to) {
      const r = await this.command(`RCPT TO:<${rcpt}>`);
      if (r.code !== 250 && r.code !== 251) return this.abort(r);
    }
    const go = await this.command('DATA');
    if (go.code !== 354) return this.abort(go);
    if (!this.socket.write(data)) await new Promise((r) => this.socket.once('drain', r));
    this.socket.write(data.subarray(-2).equals(Buffer.from('\r\n')) ? '.\r\n' : '\r\n.\r\n');
    return this.read();
  }

  /** QUIT, waiting at most `waitMs` for the 221 (a client does not need it), then closes. */
  async quit(waitMs = 5000): Promise<void> {
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

export interface LoadOptions {
  host: string;
  port: number;
  concurrency: number;
  maxMessages: number;
  maxSeconds: number;
  /** Builds message `i` (called before its clock starts). */
  message: (i: number) => { data: Buffer; to?: string[]; infected?: boolean };
  /**
   * A new connection for every message (connect, EHLO, transaction, QUIT) instead of a pool of
   * reused ones; latency then runs from connect() to the final reply after DATA.
   */
  connectionPerMessage?: boolean;
  /** A 5xx final reply to an infected message is a verdict (Haraka answers 550), not an error. */
  infectedRejectIsVerdict?: boolean;
  /** Deadline of each reply (default 180 s). */
  replyTimeoutMs?: number;
  /**
   * Worker `i` opens its first connection `i × rampMs` ms after the start (default 0: all at
   * once). ClamSMTP listens with a backlog of 5: 32 simultaneous connects overflow its accept
   * queue, and the kernel's SYN-ACK retransmit backoff then stalls some for tens of seconds.
   */
  rampMs?: number;
}

export interface LoadResult {
  /** Messages that got a 250 final reply. */
  ok: number;
  /** Everything else, by reply code ("conn" for a dropped connection). */
  errors: Record<string, number>;
  errorSamples: string[];
  infectedOk: number;
  /** Infected messages answered 5xx (only with infectedRejectIsVerdict; latency recorded). */
  rejectedInfected: number;
  /** Seconds from the start to the last final reply. */
  elapsedS: number;
  /** Latency of each accepted message (and of each rejected infected one, see above), ms. */
  latenciesMs: number[];
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const perMessage = opts.connectionPerMessage ?? false;
  const ramp = opts.rampMs ?? 0;
  const pool: (SmtpConnection | undefined)[] = perMessage
    ? Array.from({ length: opts.concurrency }, () => undefined)
    : await Promise.all(
        Array.from({ length: opts.concurrency }, async (_, i) => {
          if (ramp) await sleep(i * ramp);
          return SmtpConnection.open(opts.host, opts.port, opts.replyTimeoutMs);
        }),
      );
  const result: LoadResult = { ok: 0, errors: {}, errorSamples: [], infectedOk: 0, rejectedInfected: 0, elapsedS: 0, latenciesMs: [] };
  const fail = (key: string, text: string): void => {
    result.errors[key] = (result.errors[key] ?? 0) + 1;
    if (result.errorSamples.length < 5) result.errorSamples.push(text);
  };
  let next = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + opts.maxSeconds * 1000;
  let last = started;
  const worker = async (slot: number): Promise<void> => {
    if (perMessage && ramp) await sleep(slot * ramp);
    while (next < opts.maxMessages && Date.now() < deadline) {
      const i = next++;
      const m = opts.message(i);
      try {
        const t0 = process.hrtime.bigint();
        let conn = pool[slot];
        if (!conn?.alive) {
          conn = pool[slot] = await SmtpConnection.open(opts.host, opts.port, opts.replyTimeoutMs).catch((err: Error) => {
            throw new SmtpError(`connect/greeting/EHLO: ${err.message}`);
          });
        }
        const reply = await conn.send('sender@bench.example', m.to ?? ['user@example.test'], m.data);
        const t1 = process.hrtime.bigint();
        if (t1 > last) last = t1;
        if (perMessage) {
          pool[slot] = undefined;
          void conn.quit(); // the verdict is in; the 221 is not waited for
        }
        if (reply.code === 250) {
          result.ok++;
          if (m.infected) result.infectedOk++;
          result.latenciesMs.push(Number(t1 - t0) / 1e6);
        } else if (m.infected && opts.infectedRejectIsVerdict && reply.code >= 500 && reply.code < 600) {
          result.rejectedInfected++;
          result.latenciesMs.push(Number(t1 - t0) / 1e6);
        } else {
          fail(String(reply.code), `${reply.code} ${reply.text}`);
        }
      } catch (err) {
        fail('conn', (err as Error).message);
      }
    }
  };
  await Promise.all(pool.map((_, slot) => worker(slot)));
  result.elapsedS = Number(last - started) / 1e9;
  await Promise.all(pool.map((c) => c?.quit()));
  return result;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}
