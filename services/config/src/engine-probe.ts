import { ClamdClient, formatClamdAddress, type ClamdAddress } from '@mailwarden/clamd';

export interface EngineInstance {
  /** `host:port` or `unix:/path`, as in CLAMD_ADDRESSES. */
  address: string;
  reachable: boolean;
  /** e.g. "ClamAV 1.4.3". */
  engine?: string;
  /** Signature database version, e.g. "27432"; empty with only a custom database. */
  signatures?: string;
  /** clamd's whole VERSION reply. */
  raw?: string;
  error?: string;
}

export interface EngineStatus {
  /** True when at least one clamd answers. */
  reachable: boolean;
  checkedAt: string;
  /** Every configured clamd, in failover order. */
  engines: EngineInstance[];
}

export interface EngineProbe {
  status(): Promise<EngineStatus>;
}

export interface ClamdEngineProbeOptions {
  /** Deadline for one engine's whole check (connect, PING, VERSION). Default 3000 ms. */
  timeoutMs?: number;
  /** A result younger than this is reused, so a busy admin page does not hammer clamd. Default 2000 ms. */
  cacheMs?: number;
}

/** Asks every configured clamd for PING and VERSION, concurrently, each under its own deadline. */
export class ClamdEngineProbe implements EngineProbe {
  private readonly clients: { address: string; client: ClamdClient }[];
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private cached?: { at: number; status: EngineStatus };
  private inFlight?: Promise<EngineStatus>;

  constructor(addresses: ClamdAddress[], opts: ClamdEngineProbeOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.cacheMs = opts.cacheMs ?? 2000;
    this.clients = addresses.map((a) => ({
      address: formatClamdAddress(a),
      client: new ClamdClient({ addresses: [a], connectTimeoutMs: Math.min(1000, this.timeoutMs), commandTimeoutMs: this.timeoutMs }),
    }));
  }

  async status(): Promise<EngineStatus> {
    if (this.cached && Date.now() - this.cached.at < this.cacheMs) return this.cached.status;
    this.inFlight ??= this.check().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async check(): Promise<EngineStatus> {
    const engines = await Promise.all(this.clients.map(({ address, client }) => this.checkOne(address, client)));
    const status = { reachable: engines.some((e) => e.reachable), checkedAt: new Date().toISOString(), engines };
    this.cached = { at: Date.now(), status };
    return status;
  }

  private async checkOne(address: string, client: ClamdClient): Promise<EngineInstance> {
    // A ref'd timer (AbortSignal.timeout's is not): the deadline fires even when nothing else keeps the process alive.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    try {
      if (!(await client.ping(deadline.signal))) {
        return { address, reachable: false, error: deadline.signal.aborted ? `timed out after ${this.timeoutMs} ms` : 'no PONG: down or refusing connections' };
      }
      const v = await client.version(deadline.signal);
      return { address, reachable: true, engine: v.engine, signatures: v.signatures, raw: v.raw };
    } catch (err) {
      return { address, reachable: true, error: `VERSION failed: ${(err as Error).message}` };
    } finally {
      clearTimeout(timer);
    }
  }
}
