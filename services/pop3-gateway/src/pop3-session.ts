import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Policy, TlsMode } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import { DotStuffer } from '@mailwarden/mime';
import { TempFailError, newRef, type MessageScanner, type ScanRequest, type StoredMessage } from '@mailwarden/pipeline';
import { ClientLineReader } from './client-line-reader.js';
import { splice } from '@mailwarden/tls';
import { acceptTls } from './client-tls.js';
import { lookupCommand, type Pop3State } from './pop3-commands.js';
import { Pop3ReplyError, tempFail, type Pop3Reply } from './pop3-reply.js';
import { RetrievedMessages } from './retrieved-messages.js';
import type { DeliveredSizeMemory } from './delivered-size-memory.js';
import { SizeLookahead, WHOLE_MESSAGE, type LookaheadFetch } from './size-lookahead.js';
import { SessionEndedError } from './session-ended-error.js';
import { UpstreamError } from './upstream-error.js';
import { UpstreamPop3Client, type MultilineBody, type UpstreamTlsOptions } from './upstream-pop3-client.js';

export interface Pop3SessionOptions {
  upstream: { host: string; port: number };
  scanner: MessageScanner;
  policy: () => Policy;
  log: Logger;
  connectTimeoutMs: number;
  /** Deadline for each upstream status line, listing line, and silence inside a body. */
  replyTimeoutMs: number;
  /** Safety net over one whole retrieval + scan (each step has its own deadline too). */
  retrieveTimeoutMs: number;
  /** RFC 1939 3 autologout: a client silent this long is disconnected (no UPDATE). */
  idleTimeoutMs: number;
  /** The TLS policy for this session, read when it started (`terminate` on an implicit-TLS listener). */
  tlsMode: TlsMode;
  /** The client's socket is already TLS (POP3S listener). */
  clientSecure?: boolean;
  /** The gateway's certificate, for STLS in terminate mode (the current one: it may be renewed). */
  secureContext?: () => SecureContext;
  /** How the gateway's TLS to upstream checks upstream's certificate. */
  upstreamTls?: UpstreamTlsOptions;
  /** Upstream speaks TLS from the first byte (POP3S upstream). */
  upstreamImplicitTls?: boolean;
  /** The session went encrypted end to end (passthrough) and will not be scanned. */
  onTlsUnscanned?: (info: { client: string }) => void;
  /** Terminate mode: an upstream without STLS ends the session instead of a plaintext upstream leg. */
  requireUpstreamTls?: boolean;
  /** Time one LIST/STAT may spend scanning ahead for exact sizes (POP3_SIZE_LOOKAHEAD_MS); 0 = upstream's sizes. */
  sizeLookaheadMs: number;
  /** Delivered sizes remembered across sessions (the `mw-pop3-sizes` bucket in the gateway). */
  sizeMemory?: DeliveredSizeMemory;
}

/**
 * One client connection, mirrored to its own upstream POP3 session. Commands come from the
 * COMMANDS table; this class holds the state and the means they use: relaying to upstream,
 * writing to the client with backpressure, and retrieving a message through the scanner.
 * It knows nothing of NATS or S3 (the MessageScanner port does).
 */
export class Pop3Session {
  state: Pop3State = 'AUTHORIZATION';
  /** The authenticated user (for the scan envelope). */
  user = '';
  readonly messages = new RetrievedMessages();
  /** Exact sizes for LIST/STAT before RETR (see size-lookahead.ts). */
  readonly sizes: SizeLookahead;
  /** Set once the greeting was relayed. */
  upstream!: UpstreamPop3Client;
  readonly log: Logger;
  /** The client's leg is encrypted (POP3S, or after STLS in terminate mode). */
  secure: boolean;
  private reader: ClientLineReader;
  private ending = false;
  private busy = false;
  /** TLS passthrough: the sockets are spliced; settles when both are closed. */
  private spliced: Promise<void> | undefined;

  constructor(
    private socket: Socket,
    private readonly opts: Pop3SessionOptions,
  ) {
    this.log = opts.log;
    this.secure = !!opts.clientSecure;
    this.sizes = new SizeLookahead(this, {
      budgetMs: opts.sizeLookaheadMs,
      upstream: `${opts.upstream.host}:${opts.upstream.port}`,
      ...(opts.sizeMemory ? { memory: opts.sizeMemory } : {}),
    });
    this.reader = this.adopt(socket);
  }

  /** Runs the session to its end; never throws. */
  async run(): Promise<void> {
    try {
      if (!(await this.open())) return;
      while (!this.ending) {
        const line = await this.reader.next(this.opts.idleTimeoutMs).catch((err: unknown) => {
          if (err instanceof Pop3ReplyError) return err;
          throw err;
        });
        if (line === null) {
          this.log.info({ event: this.reader.idleTimedOut ? 'pop3.idle_timeout' : 'pop3.client_gone', state: this.state }, 'client session ended without QUIT');
          break;
        }
        if (line instanceof Pop3ReplyError) {
          await this.reply(line.line).catch(() => undefined);
          break;
        }
        await this.dispatch(line);
      }
    } catch (err) {
      if (!(err instanceof SessionEndedError)) this.log.error({ event: 'pop3.session_error', err }, 'session failed');
    } finally {
      await this.cleanup();
    }
  }

  /** Stop after the command in progress (SIGTERM); an idle session is closed now. A spliced one runs on until abort(). */
  shutdown(): void {
    this.ending = true;
    if (!this.busy && !this.spliced) this.socket.destroy();
  }

  /** Cuts the connection now (end of the shutdown grace period). Upstream gets no QUIT. */
  abort(): void {
    this.ending = true;
    this.socket.destroy();
  }

  /** Called by QUIT: the session ends after the current reply. */
  end(): void {
    this.ending = true;
  }

  enterTransaction(): void {
    this.state = 'TRANSACTION';
    const clientTls = this.secure ? ((this.socket as TLSSocket).getProtocol() ?? true) : false;
    const upstreamTls = this.upstream.tlsVersion ?? false;
    this.log.info({ event: 'pop3.login', user: this.user, clientTls, upstreamTls }, 'client logged in upstream');
  }

  // ---- TLS (RFC 2595) --------------------------------------------------------------------

  /** Whether CAPA lists STLS for this session: never once encrypted; per the TLS policy otherwise. */
  offersStls(): boolean {
    if (this.secure) return false;
    switch (this.opts.tlsMode) {
      case 'terminate':
        return !!this.opts.secureContext;
      case 'passthrough':
        // Only when both sides can: upstream's CAPA (just asked by the client's CAPA) has STLS.
        return !this.upstream.encrypted && this.upstream.has('STLS');
      default:
        return false;
    }
  }

  /** The client's STLS: terminate it here, relay it to upstream (passthrough), or refuse (strip). */
  async startTls(): Promise<void> {
    if (this.secure) return this.reply('-ERR Command not permitted when TLS active');
    if (this.opts.tlsMode === 'terminate' && this.opts.secureContext) return this.terminateTls(this.opts.secureContext());
    if (this.opts.tlsMode === 'passthrough' && !this.upstream.encrypted) return this.passthroughTls();
    return this.reply('-ERR STLS not available on this server');
  }

  /** Terminate: the client's TLS session is with the gateway (its certificate); scanning goes on inside. */
  private async terminateTls(context: SecureContext): Promise<void> {
    // +OK, dropping what was pipelined and wrapping happen in one tick: the next bytes are the handshake.
    this.socket.write('+OK Begin TLS negotiation\r\n');
    this.dropPipelined();
    try {
      const secure = await acceptTls(this.socket, context, this.opts.connectTimeoutMs);
      this.secure = true;
      this.reader = this.adopt(secure);
      this.log.info({ event: 'pop3.tls_started', protocol: secure.getProtocol(), cipher: secure.getCipher()?.name }, 'STLS: client session encrypted by the gateway');
    } catch (err) {
      this.log.info({ event: 'pop3.tls_failed', err: (err as Error).message }, 'STLS: TLS handshake with the client failed');
      throw new SessionEndedError('TLS handshake failed', { cause: err });
    }
  }

  /**
   * Passthrough (the seed's "Enable TLS"): STLS goes to upstream; on its `+OK` the client gets
   * that `+OK` and the two sockets are spliced, so the client does TLS with upstream itself. The
   * gateway cannot see inside any more: the session is reported as unscanned.
   */
  private async passthroughTls(): Promise<void> {
    const { reply, socket: upstream } = await this.upstream.handOver();
    if (!upstream) return this.relay(reply);
    // Same tick: the client's next bytes are its handshake, for upstream.
    this.socket.write(`${reply.line}\r\n`, 'latin1');
    this.dropPipelined();
    this.spliced = splice(this.socket, upstream, this.opts.idleTimeoutMs);
    this.ending = true;
    const client = `${this.socket.remoteAddress}:${this.socket.remotePort}`;
    this.log.info({ event: 'pop3.tls_passthrough', client }, 'TLS passthrough: session relayed encrypted, not scanned');
    this.opts.onTlsUnscanned?.({ client });
  }

  /** Bytes the client sent after STLS, before the handshake, are plaintext: dropped, never commands. */
  private dropPipelined(): void {
    const dropped = this.reader.detach();
    if (dropped) this.log.warn({ event: 'pop3.stls_pipelined', bytes: dropped }, 'bytes sent after STLS before TLS were dropped');
  }

  /** Reads commands from `socket` from now on. */
  private adopt(socket: Socket): ClientLineReader {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', (err) => this.log.debug({ event: 'pop3.client_error', err: err.message }, 'client connection error'));
    return new ClientLineReader(socket);
  }

  scanningEnabled(): boolean {
    const { antivirus } = this.opts.policy();
    return antivirus.enabled && antivirus.pop3;
  }

  /** The live policy. */
  policy(): Policy {
    return this.opts.policy();
  }

  /** LIST/STAT learn delivered sizes before answering: RETR sends scanned copies, and the look-ahead is on. */
  looksAhead(): boolean {
    return this.sizes.enabled && this.scanningEnabled();
  }

  // ---- replies to the client -------------------------------------------------------------

  async reply(line: string): Promise<void> {
    await this.write(Buffer.from(`${line}\r\n`, 'latin1'));
  }

  relay(reply: Pop3Reply): Promise<void> {
    return this.reply(reply.line);
  }

  /** A multi-line response from lines (dot-stuffed here). */
  async sendLines(status: string, lines: Iterable<string> | AsyncIterable<string>): Promise<void> {
    await this.reply(status);
    for await (const line of lines) await this.reply(line.startsWith('.') ? `.${line}` : line);
    await this.reply('.');
  }

  /**
   * A multi-line response from a message stream: the status line, then the body dot-stuffed with
   * backpressure. A body that fails after the status line was sent cannot be answered with a
   * status line any more: the connection is cut (the client sees no terminator, nothing is lost).
   */
  async sendBody(status: string, body: Readable): Promise<void> {
    const stuffer = new DotStuffer();
    body.once('error', (err) => stuffer.destroy(err));
    body.pipe(stuffer);
    try {
      await this.reply(status);
      for await (const chunk of stuffer) await this.write(chunk as Buffer);
    } catch (err) {
      body.destroy();
      stuffer.destroy();
      if (!(err instanceof SessionEndedError)) {
        this.log.warn({ event: 'pop3.body_failed', err: (err as Error).message }, 'message body failed after +OK: closing the client connection');
      }
      this.socket.destroy();
      throw new SessionEndedError('body failed after the status line', { cause: err });
    }
  }

  // ---- the upstream leg ------------------------------------------------------------------

  /** Sends a single-line command upstream and relays the reply (`restate` may correct it; upstream's reply is returned). */
  async relayCommand(line: string, restate: (reply: Pop3Reply) => Pop3Reply = (r) => r): Promise<Pop3Reply> {
    const reply = await this.upstream.command(line);
    await this.relay(restate(reply));
    return reply;
  }

  /** Relays a command whose answer is a multi-line listing (LIST, UIDL, bare AUTH), line by line (`restate` may correct each). */
  async relayListing(line: string, restate: (line: string) => string = (l) => l): Promise<void> {
    const { reply, lines } = await this.upstream.listing(line);
    if (!lines) return this.relay(reply);
    await this.sendLines(reply.line, mapLines(lines, restate));
  }

  /** RETR/TOP passed through unscanned (POP3 scanning off by policy): upstream's bytes, unchanged. */
  async relayBody(line: string): Promise<void> {
    const { reply, body } = await this.upstream.retrieve(line);
    if (!body) return this.relay(reply);
    await this.sendBody(reply.line, body.stream);
    await body.done;
  }

  /** The next line of a SASL exchange from the client. */
  async readClientLine(): Promise<string> {
    const line = await this.reader.next(this.opts.idleTimeoutMs);
    if (line === null) throw new SessionEndedError('client gone during AUTH');
    return line;
  }

  // ---- retrieval through the scanner -----------------------------------------------------

  /**
   * Message n as scanned (and rebuilt when something was removed): from this session's copy when
   * it has one, else RETR upstream streamed into the scanner. Upstream's `-ERR` is relayed as is;
   * any scanning failure or timeout is `-ERR [SYS/TEMP]` and upstream's message is left alone.
   * The size look-ahead passes `fetch`: TOP instead of RETR where upstream has it, and a shorter deadline.
   */
  async scannedMessage(n: number, fetch?: LookaheadFetch): Promise<StoredMessage> {
    const cached = this.messages.get(n);
    if (cached) return cached;
    const peek = fetch?.verb === 'TOP';
    const { reply, body } = await this.upstream.retrieve(peek ? `TOP ${n} ${WHOLE_MESSAGE}` : `RETR ${n}`);
    if (!body) throw new Pop3ReplyError(reply.line);
    const message = await this.scan(body, Math.min(fetch?.timeoutMs ?? Infinity, this.opts.retrieveTimeoutMs));
    // Upstream's LIST is what STAT's octets count (Dovecot's LIST leaves out the CRLF it adds to a message without one).
    this.messages.set(n, message, this.sizes.listedSize(n) ?? body.size(), { peeked: peek });
    this.log.info(
      { event: 'pop3.scanned', ref: message.ref, msg: n, size: message.size, removed: message.removed.length, subjectPrefixed: message.subjectPrefixed, lookahead: !!fetch },
      `message ${n} scanned (ref ${message.ref}, ${message.removed.length} part(s) removed)${fetch ? ' ahead of RETR, for its size' : ''}`,
    );
    await this.sizes.remember(n, message.size);
    return message;
  }

  /**
   * RETR of a copy the look-ahead fetched with TOP: upstream gets its RETR now (the body is read
   * and dropped), so it marks the message seen as it would have without the gateway.
   */
  async retrieveUpstream(n: number): Promise<void> {
    if (!this.messages.isPeeked(n)) return;
    const { reply, body } = await this.upstream.retrieve(`RETR ${n}`);
    if (!body) throw new Pop3ReplyError(reply.line);
    body.stream.destroy();
    await this.upstreamSettled(body);
    this.messages.retrievedUpstream(n);
  }

  /** Opens a stored copy for sending; a failure here comes before any status line, so it is a plain -ERR. */
  async openStored(message: StoredMessage): Promise<Readable> {
    try {
      return await message.open();
    } catch (err) {
      this.log.warn({ event: 'pop3.tempfail', ref: message.ref, err: (err as Error).message }, 'stored message could not be read');
      throw tempFail('Temporary failure reading the scanned message', message.ref, false, err);
    }
  }

  private async scan(body: MultilineBody, timeoutMs: number): Promise<StoredMessage> {
    const req: ScanRequest = { protocol: 'pop3', direction: 'inbound', mailFrom: '', rcptTo: this.user ? [this.user] : [] };
    const scanning = this.opts.scanner.scan(req, body.stream);
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        reject(new TempFailError(`retrieval and scan took over ${timeoutMs} ms`, newRef()));
      }, timeoutMs);
    });
    // A result that comes after we gave up is nobody's: remove it.
    scanning.then(
      (m) => late && void m.discard().catch(() => undefined),
      () => undefined,
    );
    let message: StoredMessage;
    try {
      message = await Promise.race([scanning, deadline]);
    } catch (err) {
      // Read and drop the rest of upstream's response, so the leg can take the next command.
      body.stream.destroy();
      await this.upstreamSettled(body);
      const ref = err instanceof TempFailError ? err.ref : newRef();
      this.log.warn({ event: 'pop3.tempfail', ref, err: (err as Error).message }, 'scan failed: temporary failure to the client, message left on the server');
      throw tempFail('Temporary failure while scanning the message', ref, false, err);
    } finally {
      clearTimeout(timer);
    }
    // A scanner that returned without reading to the end: drop the rest.
    if (!body.stream.readableEnded) body.stream.destroy();
    try {
      await this.upstreamSettled(body);
    } catch (err) {
      void message.discard().catch(() => undefined);
      throw err;
    }
    return message;
  }

  /** Waits for upstream's terminator; a leg that failed ends the session (nothing was deleted). */
  private async upstreamSettled(body: MultilineBody): Promise<void> {
    try {
      await body.done;
    } catch (err) {
      const ref = newRef();
      this.log.warn({ event: 'upstream.lost', ref, err: (err as Error).message }, 'upstream failed during a retrieval');
      throw tempFail('Upstream mail server connection lost', ref, true, err);
    }
  }

  // ---- plumbing --------------------------------------------------------------------------

  private async open(): Promise<boolean> {
    const upstreamTls = this.opts.upstreamTls ?? { verify: false };
    try {
      const { client, greeting } = await UpstreamPop3Client.connect({
        ...this.opts.upstream,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        replyTimeoutMs: this.opts.replyTimeoutMs,
        ...(this.opts.upstreamImplicitTls ? { tls: upstreamTls } : {}),
      });
      this.upstream = client;
      // Terminate: the upstream leg is encrypted whenever upstream offers STLS, before the client
      // can send a password. A failed upgrade ends the session (never a silent fallback to plaintext).
      if (greeting.ok && this.opts.tlsMode === 'terminate' && !client.encrypted) {
        await client.capabilities();
        if (client.has('STLS')) await client.startTls(upstreamTls);
        else if (this.opts.requireUpstreamTls) {
          const ref = newRef();
          this.log.warn({ event: 'pop3.upstream_plaintext_refused', ref }, 'upstream does not offer STLS and POP3_REQUIRE_UPSTREAM_TLS is set: session refused');
          client.close();
          await this.reply(tempFail('Upstream mail server offers no TLS', ref).line).catch(() => undefined);
          return false;
        } else {
          this.log.warn({ event: 'pop3.upstream_plaintext' }, 'upstream does not offer STLS: upstream leg in the clear (POP3_REQUIRE_UPSTREAM_TLS=true refuses such sessions)');
        }
      }
      await this.relay(greeting);
      return greeting.ok;
    } catch (err) {
      if (err instanceof SessionEndedError) return false;
      const ref = newRef();
      this.log.warn({ event: 'upstream.unavailable', ref, err: (err as Error).message }, 'upstream unavailable');
      await this.reply(tempFail('upstream unavailable', ref).line).catch(() => undefined);
      return false;
    }
  }

  private async dispatch(line: string): Promise<void> {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const arg = space < 0 ? '' : line.slice(space + 1);
    if (/[\0\r]/.test(line)) return this.reply('-ERR Invalid characters in command');
    const command = lookupCommand(verb);
    if (!command) return this.reply('-ERR Unknown command');
    if (!command.states.includes(this.state)) return this.reply(`-ERR ${verb} not valid in the ${this.state} state`);
    this.busy = true;
    try {
      await command.handler(this, arg);
    } catch (err) {
      await this.failed(verb, err);
    } finally {
      this.busy = false;
    }
  }

  /** Turns a command's failure into its wire reply; ends the session when it cannot go on. */
  private async failed(verb: string, err: unknown): Promise<void> {
    if (err instanceof SessionEndedError) {
      this.ending = true;
      return;
    }
    let reply: Pop3ReplyError;
    if (err instanceof Pop3ReplyError) reply = err;
    else if (err instanceof UpstreamError) {
      const ref = newRef();
      this.log.warn({ event: 'upstream.lost', ref, verb, err: err.message }, 'upstream failed');
      reply = tempFail('Upstream mail server connection lost', ref, true, err);
    } else {
      const ref = newRef();
      this.log.error({ event: 'pop3.internal_error', ref, verb, err }, 'command failed');
      reply = tempFail('Internal error', ref, true, err);
    }
    if (reply.fatal) this.ending = true;
    await this.reply(reply.line);
  }

  private async write(data: Buffer): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) throw new SessionEndedError('client connection closed');
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(new SessionEndedError('client connection closed'));
      const timer = setTimeout(() => {
        this.socket.destroy();
        done(new SessionEndedError(`client read nothing for ${this.opts.idleTimeoutMs} ms`));
      }, this.opts.idleTimeoutMs);
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  private async cleanup(): Promise<void> {
    // Passthrough: the session lasts as long as the spliced connection.
    if (this.spliced) return this.spliced;
    // Without QUIT upstream stays out of UPDATE: a dropped client deletes nothing.
    if (this.upstream?.alive) this.upstream.close();
    const kept = this.messages.size;
    const failed = await this.messages.discardAll();
    if (failed) this.log.warn({ event: 'pop3.discard_failed', failed }, 'some scanned copies could not be removed from storage');
    if (!this.socket.destroyed) this.socket.end();
    this.log.debug({ event: 'pop3.session_end', state: this.state, retrieved: kept }, 'session ended');
  }
}

async function* mapLines(lines: AsyncIterable<string>, map: (line: string) => string): AsyncGenerator<string> {
  for await (const line of lines) yield map(line);
}
