import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import { connectUpstream, type UpstreamTlsOptions } from '@mailwarden/tls';
import { LineReader, LineTimeoutError } from '@mailwarden/line-socket';
import { hasCapability } from './capabilities.js';
import { MultilineBodyReader } from './multiline-body-reader.js';
import { parseReply, type Pop3Reply } from './pop3-reply.js';
import { UpstreamError } from './upstream-error.js';

export interface UpstreamPop3Options {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /**
   * Deadline for every status line and every line of a listing; in a message body, the longest
   * upstream may stay silent while we are ready to read (time we spend applying backpressure
   * does not count).
   */
  replyTimeoutMs: number;
  /** Implicit TLS from the first byte (a POP3S upstream, POP3_UPSTREAM_TLS=implicit). */
  tls?: UpstreamTlsOptions;
}

export type { UpstreamTlsOptions } from '@mailwarden/tls';

/** A multi-line response's body, dot-unstuffed (RFC 1939 3). */
export interface MultilineBody {
  /** The message; destroying it makes the client read and drop the rest of the response. */
  stream: Readable;
  /** Settles when upstream's terminator was read (the leg can take the next command), or fails with UpstreamError. */
  done: Promise<void>;
  /** The message's size in octets as upstream sent it (what its LIST says); final once `done` settled. */
  size(): number;
}

const MAX_LINE = 64 * 1024;

/**
 * A minimal POP3 client for the upstream leg: one command at a time, a deadline on connect and
 * on every reply, multi-line bodies streamed with backpressure. Status lines are kept as received
 * (latin1, so any byte round-trips) because the proxy relays them to its client.
 */
export class UpstreamPop3Client {
  private readonly lines = new LineReader({ maxLineBytes: MAX_LINE, onTooLong: () => void this.fail(new UpstreamError('upstream sent an over-long line')) });
  private failure: Error | undefined;
  /** Set while a RETR/TOP is sent: a `+OK` switches the leg to body mode in the same tick. */
  private expectBody: ((reply: Pop3Reply) => void) | undefined;
  private body: MultilineBodyReader | undefined;
  /** The socket was handed over (TLS passthrough): it is not ours to read, write or close any more. */
  private released = false;
  /** Upstream's CAPA list (RFC 2449), as last asked for by `capabilities()`. */
  capa: string[] | undefined;

  private readonly onSocketData = (chunk: Buffer): void => this.onData(chunk);
  private readonly onSocketError = (err: Error): void => void this.fail(new UpstreamError(`upstream ${this.where}: ${err.message}`, { cause: err }));
  private readonly onSocketClose = (): void => void this.fail(new UpstreamError(`upstream ${this.where} closed the connection`));

  private constructor(
    private socket: Socket,
    private readonly opts: UpstreamPop3Options,
  ) {
    socket.setNoDelay(true);
    this.attach(socket);
  }

  /** Connects and reads the greeting (a `-ERR` greeting is returned, not thrown: the proxy relays it). */
  static async connect(opts: UpstreamPop3Options): Promise<{ client: UpstreamPop3Client; greeting: Pop3Reply }> {
    const socket = await connectUpstream({ host: opts.host, port: opts.port, timeoutMs: opts.connectTimeoutMs, ...(opts.tls ? { tls: opts.tls } : {}), fail: upstreamError });
    const client = new UpstreamPop3Client(socket, opts);
    try {
      const greeting = await client.readReply();
      if (greeting.continuation) throw new UpstreamError(`malformed upstream greeting: ${JSON.stringify(greeting.line.slice(0, 100))}`);
      return { client, greeting };
    } catch (err) {
      client.close();
      throw err;
    }
  }

  get alive(): boolean {
    return !this.failure && !this.socket.destroyed;
  }

  /** The leg is encrypted (implicit TLS, or upgraded with STLS). */
  get encrypted(): boolean {
    return (this.socket as Partial<TLSSocket>).encrypted === true;
  }

  /** The negotiated TLS version (`TLSv1.3`, …), when encrypted. */
  get tlsVersion(): string | undefined {
    return this.encrypted ? ((this.socket as TLSSocket).getProtocol() ?? undefined) : undefined;
  }

  /** CAPA (RFC 2449): upstream's reply and capability lines (none after `-ERR`), also kept in `capa`. */
  async capabilities(): Promise<{ reply: Pop3Reply; lines?: string[] }> {
    const { reply, lines } = await this.listing('CAPA');
    this.capa = undefined;
    if (!lines) return { reply };
    const all: string[] = [];
    for await (const line of lines) if (all.length < 1000) all.push(line);
    this.capa = all;
    return { reply, lines: all };
  }

  /** Whether the last CAPA listed `capability`. */
  has(capability: string): boolean {
    return hasCapability(this.capa, capability);
  }

  /**
   * STLS (RFC 2595) on the upstream leg, TLS 1.2+: the gateway's own TLS session with upstream
   * (terminate mode). Throws UpstreamError when upstream refuses or the handshake fails: the
   * caller must not go on in the clear.
   */
  async startTls(tls: UpstreamTlsOptions): Promise<void> {
    const reply = await this.command('STLS');
    if (!reply.ok) throw this.fail(new UpstreamError(`upstream ${this.where} refused STLS: ${reply.line.slice(0, 200)}`));
    // Bytes after the +OK and before the handshake would be plaintext injected into the TLS session.
    if (this.lines.buffered) throw this.fail(new UpstreamError(`upstream ${this.where} sent data after STLS +OK`));
    const secure = await connectUpstream({ host: this.opts.host, port: this.opts.port, timeoutMs: this.opts.connectTimeoutMs, tls, socket: this.detach(), fail: upstreamError }).catch((err: Error) => {
      throw this.fail(err);
    });
    this.socket = secure;
    this.attach(secure);
    // RFC 2595 4: what was learnt before TLS is forgotten; the client's next CAPA asks again.
    this.capa = undefined;
  }

  /**
   * TLS passthrough: sends STLS for a client that will do the handshake with upstream itself.
   * On `+OK` the raw socket is handed over (this client is done: the gateway only relays bytes
   * from here on); on anything else the reply is returned and the leg goes on in the clear.
   */
  async handOver(): Promise<{ reply: Pop3Reply; socket?: Socket }> {
    const reply = await this.command('STLS');
    if (!reply.ok) return { reply };
    if (this.lines.buffered) throw this.fail(new UpstreamError(`upstream ${this.where} sent data after STLS +OK`));
    const socket = this.detach();
    this.released = true;
    this.failure = new UpstreamError('upstream connection handed over to the client (TLS passthrough)');
    return { reply, socket };
  }

  private get where(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** Sends one line and reads one status line (`+OK`, `-ERR`, or a SASL `+` continuation). */
  async command(line: string): Promise<Pop3Reply> {
    this.send(line);
    return this.readReply();
  }

  /**
   * A command whose `+OK` answer is a multi-line listing (LIST, UIDL, CAPA, bare AUTH): yields the
   * lines dot-unstuffed, without CRLF. Iterate to the end before the next command.
   */
  async listing(line: string): Promise<{ reply: Pop3Reply; lines?: AsyncGenerator<string> }> {
    const reply = await this.command(line);
    if (!reply.ok) return { reply };
    return { reply, lines: this.readListing() };
  }

  /** RETR/TOP: the `+OK` line and the body as a stream (backpressure reaches the upstream socket). */
  async retrieve(line: string): Promise<{ reply: Pop3Reply; body?: MultilineBody }> {
    let body: MultilineBody | undefined;
    this.expectBody = () => {
      body = this.startBody();
    };
    try {
      const reply = await this.command(line);
      return body ? { reply, body } : { reply };
    } finally {
      this.expectBody = undefined;
    }
  }

  /** QUIT (the server enters UPDATE and commits deletions), then close. */
  async quit(): Promise<Pop3Reply> {
    try {
      return await this.command('QUIT');
    } finally {
      this.close();
    }
  }

  /** Drops the connection without QUIT: upstream does not enter UPDATE, nothing is deleted. */
  close(): void {
    this.fail(new UpstreamError('upstream connection closed by the proxy'));
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onSocketData);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
  }

  /** Stops listening to the current socket (before a TLS upgrade or a hand-over). */
  private detach(): Socket {
    const s = this.socket;
    s.off('data', this.onSocketData);
    s.off('error', this.onSocketError);
    s.off('close', this.onSocketClose);
    return s;
  }

  private send(line: string): void {
    if (this.failure) throw this.failure;
    if (this.body) throw new UpstreamError('a multi-line response is still being read');
    if (/[\r\n\0]/.test(line)) throw new UpstreamError('refusing to send a command with CR, LF or NUL');
    this.socket.write(Buffer.from(`${line}\r\n`, 'latin1'));
  }

  private async readReply(): Promise<Pop3Reply> {
    const line = await this.readLine();
    const reply = parseReply(line);
    if (!reply) throw this.fail(new UpstreamError(`malformed upstream reply: ${JSON.stringify(line.slice(0, 100))}`));
    return reply;
  }

  private async *readListing(): AsyncGenerator<string> {
    for (;;) {
      const line = await this.readLine();
      if (line === '.') return;
      yield line.startsWith('.') ? line.slice(1) : line;
    }
  }

  private async readLine(): Promise<string> {
    if (this.failure) throw this.failure;
    try {
      return await this.lines.next(this.opts.replyTimeoutMs, this.onLineTaken);
    } catch (err) {
      if (err instanceof LineTimeoutError) throw this.fail(new UpstreamError(`upstream ${this.where} did not answer within ${this.opts.replyTimeoutMs} ms`));
      throw err;
    }
  }

  private onData(chunk: Buffer): void {
    if (this.body) return this.body.write(chunk);
    this.lines.push(chunk);
  }

  /** Enters body mode right after a RETR/TOP `+OK`, in the same tick: the next bytes are the body. */
  private readonly onLineTaken = (line: string): void => {
    const reply = this.expectBody && parseReply(line);
    if (!this.expectBody || !reply || !reply.ok) return;
    this.expectBody(reply);
    this.expectBody = undefined;
    const rest = this.lines.take();
    if (rest.length) this.body!.write(rest);
  };

  private startBody(): MultilineBody {
    const reader = new MultilineBodyReader(this.opts.replyTimeoutMs, this.socket, (err) => this.fail(err), (remainder) => {
      this.body = undefined;
      this.lines.push(remainder);
    });
    this.body = reader;
    return { stream: reader.stream, done: reader.done, size: () => reader.received };
  }

  private fail(err: Error): Error {
    if (!this.failure) this.failure = err;
    if (!this.released) this.socket.destroy();
    this.lines.fail(this.failure);
    this.body?.fail(this.failure);
    this.body = undefined;
    return this.failure;
  }
}

function upstreamError(message: string, cause?: Error): UpstreamError {
  return new UpstreamError(message, cause ? { cause } : undefined);
}
