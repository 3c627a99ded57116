import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { Policy } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import { UpstreamError, UpstreamSmtpClient, type SmtpReply, type UpstreamTlsOptions } from '@mailwarden/smtp-client';
import { announceClient, clientIdentity } from './client-identity.js';
import { ClientGoneError } from './client-gone.js';
import { SmtpReplyError, replyText } from './smtp-reply.js';

/**
 * The upstream side of one client session in proxy mode, as the session uses it: one SMTP
 * connection to upstream, mirrored command by command. Unit tests put a fake in its place.
 */
export interface UpstreamLeg {
  /** Connected and not failed: a command can go out now. */
  readonly alive: boolean;
  /** The client's session ended: nothing more goes upstream, and a leg still opening is dropped. */
  readonly closed: boolean;
  /**
   * Connects, says EHLO and (terminate mode) STARTTLS; nothing when already open. Rejects with
   * ClientGoneError when the client left meanwhile, SmtpReplyError when upstream refused EHLO.
   */
  open(): Promise<void>;
  has(capability: string): boolean;
  /** MAIL FROM, after reopening a lost leg, RSET for a transaction still open upstream, and XCLIENT/XFORWARD. */
  mail(address: SMTPServerAddress): Promise<SmtpReply>;
  rcpt(address: string): Promise<SmtpReply>;
  /** DATA with the (stored, CRLF) message: upstream's final reply. */
  deliver(message: Readable): Promise<SmtpReply>;
  /** STARTTLS for the client (passthrough): the raw socket once upstream said 220, else undefined. */
  handOver(): Promise<Socket | undefined>;
  /** The client left: QUIT, or a plain disconnect while a message is being sent (never a command inside DATA). */
  close(): void;
}

export interface SmtpUpstreamLegOptions {
  upstream: { host: string; port: number };
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  dataReplyTimeoutMs: number;
  /** The gateway's EHLO name until the client has said its own. */
  hostname: string;
  tlsMode: Policy['tls']['smtp'];
  upstreamTls?: UpstreamTlsOptions;
  clientIdentity?: 'auto' | 'off';
  log: Logger;
}

/** The real upstream leg: an UpstreamSmtpClient, and whether a transaction is open on it. */
export class SmtpUpstreamLeg implements UpstreamLeg {
  private client: UpstreamSmtpClient | undefined;
  private inTransaction = false;
  /** Passthrough happened: the sockets are spliced, SMTP is over for the gateway. */
  private handedOver = false;
  private ended = false;
  /** XCLIENT went out on this upstream connection (once per connection; XFORWARD goes per transaction). */
  private identity = { xclientSent: false };
  /** Upstream refused XCLIENT/XFORWARD: not asked again in this session. */
  private identityRefused = false;

  constructor(
    private readonly conn: SMTPServerSession,
    private readonly opts: SmtpUpstreamLegOptions,
  ) {}

  get alive(): boolean {
    return !!this.client?.alive;
  }

  get closed(): boolean {
    return this.ended;
  }

  has(capability: string): boolean {
    return !!this.client?.has(capability);
  }

  private get helloName(): string {
    return this.conn.hostNameAppearsAs || this.opts.hostname;
  }

  async open(): Promise<void> {
    if (this.client?.alive) return;
    const { upstream, connectTimeoutMs, commandTimeoutMs, dataReplyTimeoutMs } = this.opts;
    const { client } = await UpstreamSmtpClient.connect({ ...upstream, connectTimeoutMs, commandTimeoutMs, dataReplyTimeoutMs });
    try {
      // The client may leave while the leg is being opened: close() found nothing to close then.
      const stillWanted = () => {
        if (this.ended) throw new ClientGoneError('client left while the upstream connection was being opened');
      };
      stillWanted();
      const hello = await client.hello(this.helloName);
      stillWanted();
      if (hello.code !== 250) throw SmtpReplyError.fromUpstream(hello);
      // Terminate: the upstream leg is encrypted whenever upstream offers it.
      if (this.opts.tlsMode === 'terminate' && client.has('STARTTLS')) {
        await client.startTls(this.helloName, this.opts.upstreamTls ?? { verify: false });
        stillWanted();
      }
    } catch (err) {
      client.close();
      throw err;
    }
    this.client = client;
    this.inTransaction = false;
    this.identity = { xclientSent: false };
  }

  async mail(address: SMTPServerAddress): Promise<SmtpReply> {
    await this.open();
    const client = this.connected();
    // The client may have sent RSET (which smtp-server answers itself): start clean upstream.
    if (this.inTransaction) await client.command('RSET');
    this.inTransaction = false;
    await this.announce(client);
    // After XCLIENT's EHLO: the capabilities are the ones upstream gave last.
    const reply = await client.command(`MAIL FROM:<${address.address}>${mailParameters(address, client)}`);
    if (reply.code === 250) this.inTransaction = true;
    return reply;
  }

  rcpt(address: string): Promise<SmtpReply> {
    return this.connected().command(`RCPT TO:<${address}>`);
  }

  async deliver(message: Readable): Promise<SmtpReply> {
    try {
      const reply = await this.connected().data(message);
      this.inTransaction = false;
      return reply;
    } catch (err) {
      // A failed transfer drops the connection: no transaction is left open upstream.
      if (err instanceof UpstreamError) this.inTransaction = false;
      throw err;
    }
  }

  async handOver(): Promise<Socket | undefined> {
    const socket = await this.connected().handOver();
    if (socket) this.handedOver = true;
    return socket;
  }

  close(): void {
    this.ended = true;
    // quit() drops a leg that is in the middle of a message (no final dot, no command inside DATA).
    if (!this.handedOver) void this.client?.quit();
  }

  private connected(): UpstreamSmtpClient {
    if (!this.client) throw new UpstreamError('upstream session not open');
    return this.client;
  }

  /** XCLIENT/XFORWARD before MAIL, so upstream sees the real client (SMTP_UPSTREAM_XCLIENT=auto). */
  private async announce(client: UpstreamSmtpClient): Promise<void> {
    if (this.opts.clientIdentity === 'off' || this.identityRefused) return;
    const outcome = await announceClient(client, clientIdentity(this.conn), this.helloName, this.identity);
    if (typeof outcome === 'object') {
      this.identityRefused = true;
      this.opts.log.warn(
        { event: 'smtp.client_identity_refused', session: this.conn.id, command: outcome.refused, upstream: outcome.reply.code, reply: replyText(outcome.reply) },
        `upstream refused ${outcome.refused}: it sees the gateway as the client (authorize the gateway in smtpd_authorized_${outcome.refused.toLowerCase()}_hosts)`,
      );
    }
  }
}

/** SIZE and BODY as the client gave them, only those upstream announced. */
function mailParameters(address: SMTPServerAddress, client: UpstreamSmtpClient): string {
  const args = (address.args || {}) as Record<string, string>;
  const params: string[] = [];
  const size = Number(args.SIZE);
  if (size && client.has('SIZE')) params.push(`SIZE=${size}`);
  const body = args.BODY;
  if (body && /^(7BIT|8BITMIME)$/i.test(body) && client.has('8BITMIME')) params.push(`BODY=${body.toUpperCase()}`);
  return params.length ? ' ' + params.join(' ') : '';
}
