/**
 * A tiny POP3 server for fault injection in unit tests (the real upstream, Dovecot, is used by
 * test/e2e/pop3.test.ts). Dot-stuffs what it sends, records every command, and applies DELE only
 * on QUIT, like a real server.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket, createServer as createTlsServer } from 'node:tls';
import { createHash } from 'node:crypto';
import { DotStuffer } from '@mailwarden/mime';

export interface FakePop3Options {
  messages: Buffer[];
  password?: string;
  greeting?: string;
  capabilities?: string[];
  /** Return true when the hook answered RETR itself (fault injection). */
  onRetr?: (n: number, socket: Socket, message: Buffer) => boolean;
  /** Chunk size for sending bodies (small values exercise chunk boundaries). */
  chunkSize?: number;
  /** A certificate: STLS upgrades the session (without it STLS is an unknown command). */
  tls?: { key: Buffer; cert: Buffer };
  /** With `tls`: TLS from the first byte (POP3S). */
  implicitTls?: boolean;
  /** Verbs answered `-ERR Unknown command.` (a server without UIDL or TOP). */
  refuse?: string[];
}

export class FakePop3Server {
  readonly server: Server;
  readonly commands: string[] = [];
  /** The commands that arrived over TLS. */
  readonly secureCommands: string[] = [];
  /** Sessions that failed their TLS handshake. */
  tlsFailures = 0;
  /** Bytes that came right behind STLS in plaintext (a proxy must never relay those). */
  plaintextAfterStls = 0;
  /** Message numbers removed by a QUIT in TRANSACTION (1-based). */
  readonly expunged: number[] = [];
  readonly sockets = new Set<Socket>();
  port = 0;
  readonly timestamp = `<${process.pid}.${Date.now()}@fake.example>`;

  constructor(readonly opts: FakePop3Options) {
    this.server =
      opts.implicitTls && opts.tls
        ? createTlsServer({ key: opts.tls.key, cert: opts.tls.cert }, (socket) => this.session(socket))
        : createServer((socket) => this.session(socket));
  }

  static async start(opts: FakePop3Options): Promise<FakePop3Server> {
    const s = new FakePop3Server(opts);
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get address(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.port };
  }

  /** Commands of a verb received so far. */
  count(verb: string): number {
    return this.commands.filter((c) => c.split(' ')[0]!.toUpperCase() === verb).length;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private session(raw: Socket): void {
    let socket = raw;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let secure = raw instanceof TLSSocket;
    let upgrading = false;
    const password = this.opts.password ?? 'password';
    let state: 'AUTHORIZATION' | 'TRANSACTION' = 'AUTHORIZATION';
    let user = '';
    const deleted = new Set<number>();
    let buffer = '';
    let saslPending: ((line: string) => void) | undefined;
    const send = (line: string) => socket.write(`${line}\r\n`);
    const msg = (arg: string | undefined): number | undefined => {
      const n = Number(arg);
      return Number.isInteger(n) && n >= 1 && n <= this.opts.messages.length && !deleted.has(n) ? n : undefined;
    };
    const sendBody = (status: string, body: Buffer) => {
      socket.write(`${status}\r\n`);
      const stuffer = new DotStuffer();
      stuffer.on('data', (c: Buffer) => socket.write(c));
      const size = this.opts.chunkSize ?? 64 * 1024;
      for (let i = 0; i < body.length; i += size) stuffer.write(body.subarray(i, i + size));
      stuffer.end();
    };
    send(this.opts.greeting ?? `+OK fake POP3 ready ${this.timestamp}`);
    const handle = (line: string) => {
      this.commands.push(line);
      if (secure) this.secureCommands.push(line);
      if (saslPending) {
        const p = saslPending;
        saslPending = undefined;
        return p(line);
      }
      const [verb = '', ...args] = line.split(' ');
      if (this.opts.refuse?.includes(verb.toUpperCase())) return send('-ERR Unknown command.');
      switch (verb.toUpperCase()) {
        case 'STLS': {
          if (!this.opts.tls || state !== 'AUTHORIZATION') break;
          if (secure) return send('-ERR TLS already active');
          send('+OK Begin TLS negotiation now.');
          socket.off('data', onData);
          upgrading = true;
          const tls = new TLSSocket(socket, { isServer: true, key: this.opts.tls.key, cert: this.opts.tls.cert });
          tls.on('error', () => this.tlsFailures++);
          tls.on('secure', () => {
            secure = true;
            socket = tls;
            this.sockets.add(tls);
            tls.on('data', onData);
          });
          return;
        }
        case 'CAPA':
          send('+OK Capability list follows');
          for (const c of this.opts.capabilities ?? ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'STLS', 'USER', 'SASL PLAIN', 'IMPLEMENTATION fake']) send(c);
          return send('.');
        case 'USER':
          user = args.join(' ');
          return send('+OK');
        case 'PASS':
          if (state !== 'AUTHORIZATION' || !user) return send('-ERR no USER');
          if (args.join(' ') !== password) return send('-ERR [AUTH] Authentication failed.');
          state = 'TRANSACTION';
          return send('+OK Logged in.');
        case 'APOP': {
          const digest = createHash('md5').update(this.timestamp + password).digest('hex');
          if (args[1] !== digest) return send('-ERR [AUTH] Authentication failed.');
          state = 'TRANSACTION';
          return send('+OK Logged in.');
        }
        case 'AUTH':
          if (!args.length) {
            send('+OK');
            send('PLAIN');
            return send('.');
          }
          if (args[0]!.toUpperCase() !== 'PLAIN') return send('-ERR Unsupported mechanism');
          saslPending = (resp) => {
            const parts = Buffer.from(resp, 'base64').toString().split('\0');
            if (parts[2] !== password) return send('-ERR [AUTH] Authentication failed.');
            state = 'TRANSACTION';
            send('+OK Logged in.');
          };
          return send('+ ');
        case 'QUIT':
          if (state === 'TRANSACTION') this.expunged.push(...[...deleted].sort((a, b) => a - b));
          send('+OK Logging out.');
          return socket.end();
      }
      if (state !== 'TRANSACTION') return send('-ERR Unknown command.');
      const live = this.opts.messages.map((m, i) => [i + 1, m] as const).filter(([n]) => !deleted.has(n));
      switch (verb.toUpperCase()) {
        case 'STAT':
          return send(`+OK ${live.length} ${live.reduce((a, [, m]) => a + m.length, 0)}`);
        case 'NOOP':
          return send('+OK');
        case 'RSET':
          deleted.clear();
          return send('+OK');
        case 'LIST':
        case 'UIDL': {
          const value = (n: number, m: Buffer) => (verb.toUpperCase() === 'LIST' ? String(m.length) : `uid${n}`);
          if (args.length) {
            const n = msg(args[0]);
            return n ? send(`+OK ${n} ${value(n, this.opts.messages[n - 1]!)}`) : send('-ERR There is no message');
          }
          send(`+OK ${live.length} messages`);
          for (const [n, m] of live) send(`${n} ${value(n, m)}`);
          return send('.');
        }
        case 'DELE': {
          const n = msg(args[0]);
          if (!n) return send('-ERR There is no message');
          deleted.add(n);
          return send('+OK Marked to be deleted.');
        }
        case 'RETR': {
          const n = msg(args[0]);
          if (!n) return send('-ERR There is no message');
          const m = this.opts.messages[n - 1]!;
          if (this.opts.onRetr?.(n, socket, m)) return;
          return sendBody(`+OK ${m.length} octets`, m);
        }
        case 'TOP': {
          const n = msg(args[0]);
          if (!n) return send('-ERR There is no message');
          const m = this.opts.messages[n - 1]!.toString('latin1');
          const end = m.indexOf('\r\n\r\n');
          const head = end < 0 ? m : m.slice(0, end + 4);
          const body = end < 0 ? '' : m.slice(end + 4).split(/(?<=\r\n)/).slice(0, Number(args[1])).join('');
          return sendBody('+OK', Buffer.from(head + body, 'latin1'));
        }
      }
      return send('-ERR Unknown command.');
    };
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        handle(line);
        if (upgrading) {
          // What followed STLS in the same packet: plaintext a real server must not execute.
          this.plaintextAfterStls += buffer.length;
          buffer = '';
          upgrading = false;
          return;
        }
      }
    };
    socket.on('data', onData);
  }
}
