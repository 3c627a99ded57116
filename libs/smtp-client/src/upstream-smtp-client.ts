import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import { DotStuffer } from '@mailwarden/mime';
import { connectUpstream, type UpstreamTlsOptions } from '@mailwarden/tls';
import { LineReader, LineTimeoutError } from '@mailwarden/line-socket';
import type { SmtpReply } from './smtp-reply.js';

export class UpstreamError extends Error {
  override name = 'UpstreamError';
}

const upstreamError = (message: string, cause?: Error): UpstreamError => new UpstreamError(message, cause ? { cause } : undefined);

export interface UpstreamOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** Deadline for each command's reply, and for upstream to take more of a message being sent. */
  commandTimeoutMs: number;
  /**
   * Deadline for the reply to the final dot (RFC 5321 4.5.3.2.6: 10 minutes; a before-queue filter
   * may take that long). Giving up earlier answers 451 for a message upstream may queue: a duplicate.
   * Default: commandTimeoutMs.
   */
  dataReplyTimeoutMs?: number;
}

export type { UpstreamTlsOptions } from '@mailwarden/tls';

/**
 * A minimal SMTP client for the upstream leg: one command at a time, a deadline on every reply,
 * and DATA streamed with backpressure. We write our own because the session must be mirrored
 * command by command (nodemailer's client only sends whole envelopes).
 */
export class UpstreamSmtpClient {
  capabilities = new Map<string, string>();
  private readonly lines = new LineReader({ maxLineBytes: MAX_LINE, onTooLong: () => void this.fail(new UpstreamError('upstream reply too long')) });
  /** A reply is being read (its lines may still be on their way). */
  private awaiting = false;
  private failure: Error | undefined;
  /** A message is being written: no command may be sent (it would land in the message body). */
  private sending = false;
  /** The command or DATA transfer in progress, if any. */
  private inFlight: Promise<unknown> | undefined;

  private readonly onSocketData = (chunk: Buffer) => this.lines.push(chunk);
  private readonly onSocketError = (err: Error) => this.fail(new UpstreamError(`upstream ${this.opts.host}:${this.opts.port}: ${err.message}`, { cause: err }));
  private readonly onSocketClose = () => this.fail(new UpstreamError(`upstream ${this.opts.host}:${this.opts.port} closed the connection`));

  private constructor(
    private socket: Socket,
    private readonly opts: UpstreamOptions,
  ) {
    socket.setNoDelay(true);
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onSocketData);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
  }

  private release(): Socket {
    const s = this.socket;
    s.off('data', this.onSocketData);
    s.off('error', this.onSocketError);
    s.off('close', this.onSocketClose);
    return s;
  }

  get encrypted(): boolean {
    return 'encrypted' in this.socket && (this.socket as TLSSocket).encrypted === true;
  }

  /** STARTTLS on the upstream leg (TLS 1.2+), then EHLO again as RFC 3207 requires. */
  async startTls(helloName: string, tls: UpstreamTlsOptions): Promise<void> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) throw new UpstreamError(`upstream refused STARTTLS: ${reply.code} ${reply.lines.join(' ')}`);
    const secure = await connectUpstream({ host: this.opts.host, port: this.opts.port, timeoutMs: this.opts.connectTimeoutMs, tls, socket: this.release(), fail: upstreamError });
    this.socket = secure;
    this.attach(secure);
    const hello = await this.hello(helloName);
    if (hello.code !== 250) throw new UpstreamError(`upstream EHLO after STARTTLS: ${hello.code} ${hello.lines.join(' ')}`);
  }

  /**
   * Sends STARTTLS for a client that will do the handshake with upstream itself, and hands over
   * the raw socket: from here on the gateway only relays bytes (TLS passthrough, unscanned).
   */
  async handOver(): Promise<Socket | undefined> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return undefined;
    return this.release();
  }

  static async connect(opts: UpstreamOptions): Promise<{ client: UpstreamSmtpClient; greeting: SmtpReply }> {
    const socket = await connectUpstream({ host: opts.host, port: opts.port, timeoutMs: opts.connectTimeoutMs, fail: upstreamError });
    const client = new UpstreamSmtpClient(socket, opts);
    const greeting = await client.read();
    if (greeting.code !== 220) {
      client.close();
      throw new UpstreamError(`upstream greeting: ${greeting.code} ${greeting.lines.join(' ')}`);
    }
    return { client, greeting };
  }

  get alive(): boolean {
    return !this.failure && !this.socket.destroyed;
  }

  /** EHLO, falling back to HELO for servers that do not know it; records the capabilities. */
  async hello(name: string): Promise<SmtpReply> {
    let reply = await this.command(`EHLO ${name}`);
    this.capabilities.clear();
    if (reply.code === 250) {
      for (const line of reply.lines.slice(1)) {
        const [kw, ...rest] = line.split(' ');
        if (kw) this.capabilities.set(kw.toUpperCase(), rest.join(' '));
      }
    } else if (reply.code >= 500) {
      reply = await this.command(`HELO ${name}`);
    }
    return reply;
  }

  has(capability: string): boolean {
    return this.capabilities.has(capability);
  }

  async command(line: string): Promise<SmtpReply> {
    if (/[\r\n\0]/.test(line)) throw new UpstreamError('refusing to send a command with CR, LF or NUL');
    if (this.sending) throw new UpstreamError(`refusing to send ${line.split(' ')[0]} while a message is being sent`);
    // One command at a time: a second one would take the first one's reply.
    if (this.awaiting) throw new UpstreamError(`refusing to send ${line.split(' ')[0]} while a reply is awaited`);
    this.write(`${line}\r\n`);
    return this.track(this.read());
  }

  /** DATA: waits for 354, streams the (CRLF) message dot-stuffed, returns the final reply. */
  async data(message: Readable): Promise<SmtpReply> {
    const go = await this.command('DATA');
    if (go.code !== 354) {
      message.destroy();
      return go;
    }
    return this.track(this.send(message));
  }

  /** The message body and the final dot; then the final reply, under its own deadline. */
  private async send(message: Readable): Promise<SmtpReply> {
    const stuffed = message.pipe(new DotStuffer());
    message.once('error', (err) => stuffed.destroy(err));
    this.sending = true;
    try {
      for await (const chunk of stuffed) {
        if (this.failure || this.socket.destroyed) throw this.failure ?? new UpstreamError('upstream connection closed while sending the message');
        if (!this.socket.write(chunk as Buffer)) await this.drained();
      }
    } catch (err) {
      // A half-sent message cannot be taken back: drop the connection (no final dot) so upstream discards it.
      message.destroy();
      this.close();
      throw err instanceof UpstreamError ? err : new UpstreamError(`sending message upstream failed: ${(err as Error).message}`, { cause: err });
    } finally {
      this.sending = false;
    }
    return this.read(this.opts.dataReplyTimeoutMs ?? this.opts.commandTimeoutMs);
  }

  /**
   * Ends the session. A message half sent is abandoned by dropping the connection (never a command
   * inside DATA, never a final dot); a reply still awaited is awaited first (after the final dot
   * upstream decides, and the log should say what), then QUIT.
   */
  async quit(): Promise<void> {
    if (this.sending) return this.close();
    await this.inFlight?.catch(() => undefined);
    if (!this.alive) return;
    try {
      await this.command('QUIT');
    } catch {
      // Closing anyway.
    }
    this.close();
  }

  /** Whether a message is being written upstream right now. */
  get sendingMessage(): boolean {
    return this.sending;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight = p;
    const clear = () => {
      if (this.inFlight === p) this.inFlight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  close(): void {
    this.socket.destroy();
  }

  private write(data: string): void {
    if (this.failure) throw this.failure;
    this.socket.write(data);
  }

  /** Upstream took the buffered bytes; rejects when it stalls past the command deadline or the connection closes. */
  private drained(): Promise<void> {
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.failure ?? new UpstreamError('upstream connection closed while receiving the message'));
      const timer = setTimeout(() => {
        this.close();
        done(new UpstreamError(`upstream stalled for ${this.opts.commandTimeoutMs} ms while receiving the message`));
      }, this.opts.commandTimeoutMs);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  /** One reply, all its lines, within `timeoutMs`; past it the connection is dropped (its reply would come late, to the wrong command). */
  private async read(timeoutMs = this.opts.commandTimeoutMs): Promise<SmtpReply> {
    if (this.failure) throw this.failure;
    const until = Date.now() + timeoutMs;
    const texts: string[] = [];
    this.awaiting = true;
    try {
      for (;;) {
        const line = await this.lines.next(Math.max(until - Date.now(), 1)).catch((err: unknown) => {
          if (!(err instanceof LineTimeoutError)) throw err;
          this.close();
          throw new UpstreamError(`upstream did not answer within ${timeoutMs} ms`);
        });
        const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
        if (!m) throw this.fail(new UpstreamError(`malformed upstream reply: ${JSON.stringify(line.slice(0, 100))}`));
        texts.push(m[3]!);
        if (m[2] !== '-') return { code: Number(m[1]), lines: texts };
      }
    } finally {
      this.awaiting = false;
    }
  }

  private fail(err: Error): Error {
    if (!this.failure) this.failure = err;
    this.socket.destroy();
    this.lines.fail(this.failure);
    return this.failure;
  }
}

/** Replies are short lines; anything longer is not an SMTP server talking. */
const MAX_LINE = 64 * 1024;
