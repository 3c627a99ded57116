import type { Socket } from 'node:net';
import { Pop3ReplyError } from './pop3-reply.js';

/** Lines a client may send ahead before we stop reading its socket. */
const MAX_QUEUED = 16;

/**
 * Splits the client's bytes into lines (CRLF, or a bare LF, which is tolerated), one at a time,
 * with backpressure: a client that sends ahead is paused. Lines are latin1 strings, so any byte
 * round-trips.
 */
export class ClientLineReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly queue: (string | Pop3ReplyError)[] = [];
  private ended = false;
  private waiter: ((value: string | Pop3ReplyError | null) => void) | undefined;

  /** True when the last `next()` gave up because the client stayed silent. */
  idleTimedOut = false;

  private readonly onSocketData = (chunk: Buffer): void => this.onData(chunk);
  private readonly onSocketEnd = (): void => this.onEnd();

  constructor(
    private readonly socket: Socket,
    /** RFC 2449 4: 255 octets for a command; SASL responses (RFC 5034) may be longer. */
    private readonly maxLine = 8192,
  ) {
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('close', this.onSocketEnd);
  }

  /**
   * Stops reading the socket (before a TLS upgrade or a passthrough splice) and drops what the
   * client sent ahead: bytes pipelined after STLS came in plaintext and must never be taken as
   * commands of the encrypted session (RFC 2595 4, CVE-2011-0411). Returns how many bytes were
   * dropped. Must not be called while a `next()` is pending.
   */
  detach(): number {
    this.socket.off('data', this.onSocketData);
    this.socket.off('end', this.onSocketEnd);
    this.socket.off('close', this.onSocketEnd);
    let dropped = this.buffer.length;
    for (const q of this.queue) dropped += typeof q === 'string' ? Buffer.byteLength(q, 'latin1') + 2 : 0;
    this.buffer = Buffer.alloc(0);
    this.queue.length = 0;
    this.ended = true;
    // A paused socket may hold more in its own buffer.
    for (let chunk: Buffer | null; (chunk = this.socket.read() as Buffer | null) !== null; ) dropped += chunk.length;
    if (this.socket.isPaused()) this.socket.resume();
    return dropped;
  }

  /**
   * The next line without its line ending; null when the client closed the connection or sent
   * nothing for `idleMs` (RFC 1939 3: the autologout timer). Throws a fatal Pop3ReplyError for a
   * line over the limit.
   */
  next(idleMs: number): Promise<string | null> {
    const queued = this.queue.shift();
    if (queued !== undefined) return this.deliver(queued);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.idleTimedOut = true;
        resolve(null);
      }, idleMs);
      this.waiter = (value) => {
        clearTimeout(timer);
        this.waiter = undefined;
        if (value instanceof Pop3ReplyError) reject(value);
        else resolve(value);
      };
    });
  }

  private deliver(value: string | Pop3ReplyError): Promise<string> {
    if (this.queue.length < MAX_QUEUED && this.socket.isPaused() && !this.ended) this.socket.resume();
    return value instanceof Pop3ReplyError ? Promise.reject(value) : Promise.resolve(value);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf(0x0a)) >= 0) {
      const raw = this.buffer.subarray(0, nl);
      this.buffer = this.buffer.subarray(nl + 1);
      this.push(raw.length > this.maxLine ? tooLong() : raw.toString('latin1').replace(/\r$/, ''));
    }
    if (this.buffer.length > this.maxLine) {
      this.buffer = Buffer.alloc(0);
      this.push(tooLong());
      this.socket.pause();
      this.ended = true;
    }
    if (this.queue.length >= MAX_QUEUED) this.socket.pause();
  }

  private push(value: string | Pop3ReplyError): void {
    if (this.waiter && !this.queue.length) this.waiter(value);
    else this.queue.push(value);
  }

  private onEnd(): void {
    this.ended = true;
    if (this.waiter && !this.queue.length) this.waiter(null);
  }
}

const tooLong = (): Pop3ReplyError => new Pop3ReplyError('-ERR Line too long', true);
