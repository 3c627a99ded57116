import type { Socket } from 'node:net';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Direction, Policy } from '@mailwarden/contracts';
import type { ScanRequest } from '@mailwarden/pipeline';
import type { Logger } from '@mailwarden/log';
import { registerPassthrough, unregisterPassthrough } from './starttls-passthrough.js';
import { SmtpReplyError } from './smtp-reply.js';
import { readToEnd } from './data-guards.js';
import { ClientGoneError } from './client-gone.js';
import type { MailRoute } from './mail-route.js';

/**
 * Where a client session stands. `connecting`: accepted, not greeted yet (the upstream leg is
 * being opened); `ready`: greeted, no transaction; `mail`/`rcpt`: MAIL, then at least one RCPT
 * accepted; `data`: a message is being received and handed on; `spliced`: TLS passthrough took
 * the connection (SMTP is over for the gateway); `closed`: the client left.
 */
export type SmtpSessionState = 'connecting' | 'ready' | 'mail' | 'rcpt' | 'data' | 'spliced' | 'closed';

type Verb = 'MAIL' | 'RCPT' | 'DATA' | 'RSET';

/** In which states each verb may reach the session; smtp-server checks the order too, this is the session's own word. */
const VALID_IN: Record<Verb, readonly SmtpSessionState[]> = {
  MAIL: ['ready'],
  RCPT: ['mail', 'rcpt'],
  DATA: ['rcpt'],
  RSET: ['ready', 'mail', 'rcpt'],
};

export interface SmtpSessionOptions {
  direction: Direction;
  policy: () => Policy;
  log: Logger;
  /** The TLS policy for this session, read when it started (`terminate` on an implicit-TLS listener). */
  tlsMode: Policy['tls']['smtp'];
  route: MailRoute;
  onTlsUnscanned?: (info: { client: string; direction: Direction }) => void;
}

type ConnectionWithCommands = SMTPServerSession & { disabledCommands?: string[] };

/**
 * One client connection, from the moment smtp-server accepts it until it closes: its state, one
 * method per verb (each checks the state first), and the MailRoute its transaction goes to.
 * `conn` is smtp-server's session object for the connection (id, addresses, EHLO name, envelope).
 */
export class SmtpSession {
  private current: SmtpSessionState = 'connecting';

  constructor(
    private readonly conn: SMTPServerSession,
    private readonly opts: SmtpSessionOptions,
  ) {}

  get state(): SmtpSessionState {
    return this.current;
  }

  get id(): string {
    return this.conn.id;
  }

  /** A transaction is open (MAIL accepted, DATA not begun). */
  get inTransaction(): boolean {
    return this.current === 'mail' || this.current === 'rcpt';
  }

  /** Before the greeting: STARTTLS per the TLS policy, and the route opened (proxy mode: the upstream leg). */
  async connect(): Promise<void> {
    if (this.current !== 'connecting') throw badSequence('connect', this.current);
    this.offerStartTls(this.opts.tlsMode !== 'strip');
    try {
      await this.opts.route.open();
      if (this.state === 'closed') {
        // close() ran while the route was opening, and may have found nothing to close yet.
        this.opts.route.close();
        throw new ClientGoneError('client left while the session was being opened');
      }
    } catch (err) {
      this.current = 'closed';
      throw err;
    }
    if (this.opts.tlsMode === 'passthrough') {
      // Only when both sides can do it; otherwise the session stays in the clear and is scanned.
      if (!this.opts.route.canPassThroughTls()) this.offerStartTls(false);
      else registerPassthrough(this.id, () => this.passThroughTls());
    }
    this.moveTo('ready');
  }

  async mailFrom(address: SMTPServerAddress): Promise<void> {
    if (CONTROL.test(address.address)) throw badAddress();
    this.expect('MAIL');
    await this.opts.route.mail(address);
    this.moveTo('mail');
  }

  async rcptTo(address: SMTPServerAddress): Promise<void> {
    if (CONTROL.test(address.address)) throw badAddress();
    this.expect('RCPT');
    await this.opts.route.rcpt(address.address);
    this.moveTo('rcpt');
  }

  /** DATA: the text of the client's 250, or an error with its reply. The session is ready again after it either way. */
  async data(stream: SMTPServerDataStream): Promise<string> {
    if (!VALID_IN.DATA.includes(this.current)) {
      // The client is sending a message anyway: read it out, or it would be taken for commands.
      await readToEnd(stream);
      throw badSequence('DATA', this.current);
    }
    this.current = 'data';
    try {
      return await this.opts.route.data(stream, this.scanRequest());
    } finally {
      this.moveTo('ready');
    }
  }

  /**
   * RSET (smtp-server answers it itself; EHLO and HELO reset too). The transaction still open
   * upstream is reset only before the next MAIL: nothing goes upstream for a client that leaves.
   */
  reset(): void {
    this.expect('RSET');
    this.moveTo('ready');
  }

  /** The client's connection closed, in whatever state: the route (the upstream leg) is closed too. */
  close(): void {
    if (this.current === 'closed') return;
    this.current = 'closed';
    unregisterPassthrough(this.id);
    this.opts.route.close();
  }

  private async passThroughTls(): Promise<Socket | undefined> {
    const socket = await this.opts.route.handOver();
    if (socket) {
      this.moveTo('spliced');
      this.opts.log.info({ event: 'smtp.tls_passthrough', session: this.id, client: this.conn.remoteAddress }, 'TLS passthrough: session relayed encrypted, not scanned');
      this.opts.onTlsUnscanned?.({ client: `${this.conn.remoteAddress}:${this.conn.remotePort}`, direction: this.opts.direction });
    }
    return socket;
  }

  /** smtp-server reads the session's disabled commands when it answers EHLO and STARTTLS. */
  private offerStartTls(offer: boolean): void {
    (this.conn as ConnectionWithCommands).disabledCommands = offer ? ['AUTH'] : ['AUTH', 'STARTTLS'];
  }

  private expect(verb: Verb): void {
    if (!VALID_IN[verb].includes(this.current)) throw badSequence(verb, this.current);
  }

  /** A verb that finishes after the client left (or after passthrough took over) does not bring the session back. */
  private moveTo(state: SmtpSessionState): void {
    if (this.current !== 'closed' && this.current !== 'spliced') this.current = state;
  }

  private scanRequest(): ScanRequest {
    const policy = this.opts.policy();
    const { direction } = this.opts;
    return {
      protocol: 'smtp',
      direction,
      mailFrom: this.conn.envelope.mailFrom ? this.conn.envelope.mailFrom.address : '',
      rcptTo: this.conn.envelope.rcptTo.map((r) => r.address),
      scan: policy.antivirus.enabled && (direction === 'inbound' ? policy.antivirus.smtp : policy.antivirus.smtpOutbound),
    };
  }
}

const badSequence = (verb: string, state: SmtpSessionState) => new SmtpReplyError(503, '5.5.1', `Bad sequence of commands (${verb} not valid now: ${state})`);

/** Commands are rebuilt for upstream, never forwarded raw; control characters in an address are refused. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f]/;
const badAddress = () => new SmtpReplyError(501, '5.5.4', 'Control characters (CR, LF, NUL, ...) are not allowed in an address');
