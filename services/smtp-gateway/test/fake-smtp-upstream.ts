/**
 * A raw-socket SMTP server standing in for the upstream MTA in unit tests: it records every
 * command and every DATA byte per connection, and injects the faults the gateway must survive
 * (a slow greeting, a slow reader during DATA, a slow final reply, XCLIENT/XFORWARD).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface FakeSmtpUpstreamOptions {
  /** Delay before the 220 greeting. */
  greetingDelayMs?: number;
  /** Extra EHLO keywords, e.g. `XCLIENT NAME ADDR PROTO HELO`, `XFORWARD NAME ADDR PROTO HELO`, `STARTTLS`. */
  extensions?: string[];
  /** During DATA: stop reading for this long after every chunk (a slow MTA; TCP backpressure does the rest). */
  dataChunkDelayMs?: number;
  /** Delay before the reply to the final dot (a before-queue filter). */
  finalReplyDelayMs?: number;
  /** The reply to XCLIENT (Postfix: 220 and a fresh session). */
  xclientReply?: string;
}

export interface UpstreamConnection {
  commands: string[];
  /** Raw DATA bytes of each transaction (as received, dot-stuffed, without the final dot line). */
  data: Buffer[];
  /** DATA bytes of the transaction in progress. */
  receiving: Buffer[];
  dataBytes: number;
  /** Final dots seen (complete messages). */
  completed: number;
  closed: boolean;
}

export class FakeSmtpUpstream {
  readonly server: Server;
  readonly connections: UpstreamConnection[] = [];
  private readonly sockets = new Set<Socket>();
  port = 0;

  private constructor(readonly opts: FakeSmtpUpstreamOptions) {
    this.server = createServer((socket) => this.session(socket));
  }

  static async start(opts: FakeSmtpUpstreamOptions = {}): Promise<FakeSmtpUpstream> {
    const s = new FakeSmtpUpstream(opts);
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get address(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.port };
  }

  /** Connections still open from the gateway. */
  get open(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private session(socket: Socket): void {
    const conn: UpstreamConnection = { commands: [], data: [], receiving: [], dataBytes: 0, completed: 0, closed: false };
    this.connections.push(conn);
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      conn.closed = true;
      this.sockets.delete(socket);
    });
    const send = (line: string) => {
      if (!socket.destroyed) socket.write(`${line}\r\n`);
    };
    let inData = false;
    let lineBuf = '';
    let tail = '';

    const onLine = (line: string) => {
      conn.commands.push(line);
      const verb = line.split(' ')[0]!.toUpperCase();
      switch (verb) {
        case 'EHLO':
          send('250-upstream.test');
          for (const ext of ['PIPELINING', 'SIZE 52428800', '8BITMIME', ...(this.opts.extensions ?? [])]) send(`250-${ext}`);
          return send('250 ENHANCEDSTATUSCODES');
        case 'HELO':
          return send('250 upstream.test');
        case 'XCLIENT':
          return send(this.opts.xclientReply ?? '220 upstream.test ESMTP');
        case 'MAIL':
        case 'RCPT':
        case 'RSET':
        case 'NOOP':
        case 'XFORWARD':
          return send('250 2.0.0 Ok');
        case 'DATA':
          inData = true;
          conn.receiving = [];
          tail = '';
          return send('354 End data with <CR><LF>.<CR><LF>');
        case 'QUIT':
          send('221 2.0.0 Bye');
          return void socket.end();
        default:
          return send('502 5.5.2 Error: command not recognized');
      }
    };

    const onDataChunk = (chunk: Buffer): Buffer | undefined => {
      // The end of data is CRLF.CRLF; look for it across chunk boundaries.
      const text = tail + chunk.toString('latin1');
      const end = text.indexOf('\r\n.\r\n');
      if (end < 0) {
        conn.receiving.push(chunk);
        conn.dataBytes += chunk.length;
        tail = text.slice(-4);
        return undefined;
      }
      const cut = end + 2 - tail.length; // bytes of this chunk that belong to the message
      const mine = chunk.subarray(0, Math.max(cut, 0));
      conn.receiving.push(mine);
      conn.dataBytes += mine.length;
      conn.data.push(Buffer.concat(conn.receiving));
      conn.receiving = [];
      conn.completed++;
      inData = false;
      const reply = () => send('250 2.0.0 Ok: queued');
      if (this.opts.finalReplyDelayMs) setTimeout(reply, this.opts.finalReplyDelayMs);
      else reply();
      return chunk.subarray(end + 5 - tail.length);
    };

    const onChunk = (chunk: Buffer): void => {
      let rest: Buffer | undefined = chunk;
      while (rest && rest.length) {
        if (inData) {
          rest = onDataChunk(rest);
          if (inData && this.opts.dataChunkDelayMs) {
            socket.pause();
            setTimeout(() => socket.resume(), this.opts.dataChunkDelayMs);
          }
          continue;
        }
        lineBuf += rest.toString('latin1');
        rest = undefined;
        let nl: number;
        while (!inData && (nl = lineBuf.indexOf('\r\n')) >= 0) {
          const line = lineBuf.slice(0, nl);
          lineBuf = lineBuf.slice(nl + 2);
          onLine(line);
        }
        if (inData && lineBuf) {
          rest = Buffer.from(lineBuf, 'latin1');
          lineBuf = '';
        }
      }
    };

    socket.on('data', onChunk);
    const greet = () => send('220 upstream.test ESMTP fake');
    if (this.opts.greetingDelayMs) setTimeout(greet, this.opts.greetingDelayMs);
    else greet();
  }
}
