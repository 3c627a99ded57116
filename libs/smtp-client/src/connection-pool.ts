import { UpstreamError, UpstreamSmtpClient, type UpstreamOptions, type UpstreamTlsOptions } from './upstream-smtp-client.js';
import { replyText } from './smtp-reply.js';

export interface PoolOptions extends UpstreamOptions {
  /** Name said in EHLO. */
  helloName: string;
  /** STARTTLS whenever upstream offers it, checking its certificate like this. */
  tls: UpstreamTlsOptions;
  /** Idle sessions kept open per upstream. Default 4. */
  maxIdle?: number;
  /** An idle session is closed after this long (upstream's own idle timeout is often 5 min). Default 30 s. */
  idleTimeoutMs?: number;
}

interface Idle {
  client: UpstreamSmtpClient;
  timer: NodeJS.Timeout;
}

/**
 * Open SMTP sessions to one upstream, reused from one transaction to the next (one EHLO and one
 * TLS handshake for many messages). A session is taken out for one transaction at a time and put
 * back only when the transaction ended cleanly; anything else closes it.
 */
export class SmtpConnectionPool {
  private readonly idle: Idle[] = [];
  private closed = false;

  constructor(private readonly opts: PoolOptions) {}

  get address(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /**
   * An idle session that still answers (an RSET, as Postfix checks a cached connection: upstream
   * may have closed it meanwhile, and a message must not be the first to find out), else a new
   * one (greeting, EHLO, STARTTLS when offered).
   */
  async acquire(): Promise<UpstreamSmtpClient> {
    while (this.idle.length) {
      const { client, timer } = this.idle.pop()!;
      clearTimeout(timer);
      if (!client.alive) continue;
      const reset = await client.command('RSET').catch(() => undefined);
      if (reset?.code === 250) return client;
      client.close();
    }
    const { client } = await UpstreamSmtpClient.connect(this.opts);
    try {
      const hello = await client.hello(this.opts.helloName);
      if (hello.code !== 250 && hello.code !== 220) throw new UpstreamError(`upstream refused EHLO: ${hello.code} ${replyText(hello)}`);
      if (client.has('STARTTLS')) await client.startTls(this.opts.helloName, this.opts.tls);
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** Back to the pool after a clean transaction (`reusable`), else closed. */
  release(client: UpstreamSmtpClient, reusable: boolean): void {
    if (!reusable || this.closed || !client.alive || this.idle.length >= (this.opts.maxIdle ?? 4)) {
      void client.quit();
      return;
    }
    const entry: Idle = {
      client,
      timer: setTimeout(() => {
        const i = this.idle.indexOf(entry);
        if (i >= 0) this.idle.splice(i, 1);
        void client.quit();
      }, this.opts.idleTimeoutMs ?? 30_000),
    };
    entry.timer.unref();
    this.idle.push(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.idle.splice(0);
    await Promise.all(
      all.map(({ client, timer }) => {
        clearTimeout(timer);
        return client.quit();
      }),
    );
  }
}
