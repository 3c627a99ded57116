/**
 * Scan cache: identical part content is scanned once per signature database.
 *
 * Parts are named by the sha256 of their decoded bytes (the gateway hashes them on the way to S3,
 * the job carries it). A verdict is kept in a NATS KV bucket under `<engine>.<sha256>`, where
 * `<engine>` is the identity of the signature database that produced it (ClamdClient: clamd's
 * VERSION plus the database probe, see libs/clamd/src/clamd-client.ts), plus an optional operator
 * epoch. A verdict is looked up under the identity of the engine that would scan now (the first
 * clamd address that answers, `ClamdClient.preferredEngine()`), and stored under the identity of
 * the engine that did scan (`outcome.engine`), so a failover to an engine with another database
 * never gets the other database's verdict; when an engine's database changes, its identity
 * changes, every older entry is simply never read again and expires with the bucket's TTL.
 *
 * Only verdicts that do not depend on load are kept: clean, infected, unscannable (encrypted,
 * corrupt). Never `unscannable`/`limits` (Heuristics.Limits.Exceeded.*, the INSTREAM size limit:
 * MaxScanTime depends on load, and limits are configuration), and never errors or timeouts
 * (exceptions of the scan function). Concurrent scans of the same content in this process are
 * coalesced: the first one scans, the others wait for its verdict (a mass mailing arriving in a
 * burst costs one scan, not one per worker). The cache is an optimisation: when the KV bucket is
 * slow or down, or no clamd can tell its identity, parts are scanned as if it were not there.
 *
 * Cost: each lookup asks the preferred engine for PING (its identity is re-learned, VERSION +
 * probe, at most every identityRefreshMs of the clamd client). Across several scanner processes, a
 * burst of the same new content costs at most one scan per process.
 */
import type { KV, Kvm } from '@nats-io/kv';
import type { ClamdClient, ScanResult } from '@mailwarden/clamd';
import type { Logger } from '@mailwarden/log';
import { Buckets } from '@mailwarden/contracts';
import { withDeadline } from '@mailwarden/storage';

export const SCAN_CACHE_BUCKET = Buckets.scanCache;

/** A verdict as the worker uses it: the outcome, the engine identity and the address that gave it. */
export type EngineOutcome = ScanResult;

/** How a verdict was obtained: scanned now, read from the KV bucket, or shared with a scan in flight. */
export type CacheSource = 'scan' | 'kv' | 'inflight';

export interface ScanCacheOptions {
  kvm: Kvm;
  /** Tells which engine would scan now (and how often identities are re-learned: its identityRefreshMs). */
  clamd: Pick<ClamdClient, 'preferredEngine'>;
  log: Logger;
  /** KV bucket name. Default `mw-scan-cache`. */
  bucket?: string;
  /** How long an entry lives. Default 24 h. */
  ttlMs?: number;
  /** Deadline for one KV read; past it the part is scanned. Default 1000 ms. */
  kvTimeoutMs?: number;
  /**
   * Operator-chosen token in every key: changing it invalidates the whole cache at once. Not needed
   * when a database changes (the engine identity does); an override, e.g. after changing clamd's
   * limits or alert settings, which change verdicts without changing the database.
   */
  epoch?: string;
}

export interface ScanCacheStats {
  /** Verdicts read from the KV bucket. */
  hits: number;
  /** Verdicts shared with a scan of the same content already in flight here. */
  coalesced: number;
  /** Scans done (the content was not cached, or the cache was unavailable). */
  misses: number;
  /** Verdicts published to the bucket (fire-and-forget). */
  stored: number;
  /** Verdicts deliberately not stored (unscannable/limits: they depend on load and limits). */
  notCached: number;
  /** KV reads that failed or timed out (the part was scanned anyway), or writes that could not be sent. */
  kvErrors: number;
}

interface StoredVerdict {
  kind: ScanResult['kind'];
  signature?: string;
  reason?: string;
  /** The engine identity the verdict was filed under (without the epoch). */
  engine: string;
  address: string;
  scannedAt: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const DEFAULTS = { ttlMs: 24 * 3600 * 1000, kvTimeoutMs: 1000 };

/**
 * A KV key token from an engine identity and the epoch:
 * "ClamAV 1.4.6/Mailwarden.DbVersion.fdbd2c06606d" → "ClamAV_1_4_6_Mailwarden_DbVersion_fdbd2c06606d".
 */
export function engineToken(engine: string, epoch = ''): string {
  const raw = [engine, epoch].filter((s) => s.length > 0).join('-');
  return raw.replace(/[^A-Za-z0-9_-]/g, '_') || 'unknown';
}

/** Whether a verdict may be reused: not when it depends on load or limits (unscannable/limits). */
export function isCacheable(o: ScanResult): boolean {
  return o.engine.length > 0 && !(o.kind === 'unscannable' && o.reason === 'limits');
}

function decodeStored(bytes: Uint8Array): EngineOutcome | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<StoredVerdict>;
    const engine = typeof v.engine === 'string' ? v.engine : '';
    const address = typeof v.address === 'string' ? v.address : '';
    if (v.kind === 'clean') return { kind: 'clean', engine, address };
    if (v.kind === 'infected' && typeof v.signature === 'string') return { kind: 'infected', signature: v.signature, engine, address };
    // unscannable/limits is never stored; an old entry with it is a miss.
    if (v.kind === 'unscannable' && typeof v.signature === 'string' && (v.reason === 'encrypted' || v.reason === 'corrupt')) {
      return { kind: 'unscannable', reason: v.reason, signature: v.signature, engine, address };
    }
  } catch {
    // not ours: treated as a miss
  }
  return undefined;
}

export class ScanCache {
  readonly stats: ScanCacheStats = { hits: 0, coalesced: 0, misses: 0, stored: 0, notCached: 0, kvErrors: 0 };
  private readonly inflight = new Map<string, Promise<EngineOutcome>>();
  private readonly kvTimeoutMs: number;
  /** The preferred engine's identity seen last (logged when it changes). */
  private lastEngine: string | undefined;
  /** Keys published since the last flush() (at most 1000). */
  private readonly unconfirmed = new Set<string>();

  private constructor(
    private readonly kv: KV | undefined,
    private readonly opts: ScanCacheOptions,
    private readonly bucket: string,
  ) {
    this.kvTimeoutMs = opts.kvTimeoutMs ?? DEFAULTS.kvTimeoutMs;
  }

  /** Creates (or opens) the bucket. Never fails: without KV it only coalesces. */
  static async open(opts: ScanCacheOptions): Promise<ScanCache> {
    const bucket = opts.bucket ?? SCAN_CACHE_BUCKET;
    let kv: KV | undefined;
    try {
      kv = await opts.kvm.create(bucket, { history: 1, ttl: opts.ttlMs ?? DEFAULTS.ttlMs });
    } catch (err) {
      // E.g. the bucket exists with another TTL: use it as it is.
      kv = await opts.kvm.open(bucket).catch((openErr: unknown) => {
        opts.log.error({ event: 'scan_cache.unavailable', bucket, err: (err as Error).message, openErr: (openErr as Error).message }, 'scan cache bucket unavailable, scanning everything');
        return undefined;
      });
    }
    return new ScanCache(kv, opts, bucket);
  }

  /** The KV key of content `sha256` scanned by the engine with identity `engine`. */
  key(engine: string, sha256: string): string {
    return `${engineToken(engine, this.opts.epoch)}.${sha256}`;
  }

  /**
   * The verdict for content `sha256`: from the bucket (filed under the identity of the engine that
   * would scan now), from a scan of the same content in flight, or from `scan()` — then stored
   * under the identity of the engine that scanned, unless it is unscannable/limits or it threw
   * (errors and timeouts are never cached).
   */
  async scan(sha256: string, scan: () => Promise<EngineOutcome>): Promise<{ outcome: EngineOutcome; source: CacheSource }> {
    if (!SHA256_HEX.test(sha256)) {
      this.stats.misses++;
      return { outcome: await scan(), source: 'scan' };
    }
    const running = this.inflight.get(sha256);
    if (running) {
      try {
        const outcome = await running;
        this.stats.coalesced++;
        return { outcome, source: 'inflight' };
      } catch {
        // The other scan failed: this job tries on its own (its own retries and deadlines).
        this.stats.misses++;
        return { outcome: await scan(), source: 'scan' };
      }
    }
    const leader = (async (): Promise<{ outcome: EngineOutcome; source: CacheSource }> => {
      const engine = this.kv ? await this.preferredEngine() : undefined;
      const cached = engine === undefined ? undefined : await this.read(this.key(engine, sha256));
      if (cached) {
        this.stats.hits++;
        return { outcome: cached, source: 'kv' };
      }
      this.stats.misses++;
      const outcome = await scan();
      if (isCacheable(outcome)) this.write(this.key(outcome.engine, sha256), outcome);
      else this.stats.notCached++;
      return { outcome, source: 'scan' };
    })();
    const shared = leader.then((r) => r.outcome);
    shared.catch(() => undefined); // followers handle it; an unobserved rejection must not crash us
    this.inflight.set(sha256, shared);
    try {
      return await leader;
    } finally {
      if (this.inflight.get(sha256) === shared) this.inflight.delete(sha256);
    }
  }

  /**
   * Waits until the verdicts written so far are readable (tests). Writes are fire-and-forget
   * publishes, so this flushes the connection and then polls for them (at most 2 s).
   */
  async flush(): Promise<void> {
    if (!this.kv) return;
    await this.opts.kvm.js.nc.flush();
    const deadline = Date.now() + 2000;
    for (const key of [...this.unconfirmed]) {
      while (Date.now() < deadline && !(await this.kv.get(key).catch(() => null))) await new Promise((r) => setTimeout(r, 5));
      this.unconfirmed.delete(key);
    }
  }

  /** Nothing to release (no timers); kept so callers can close it like the other resources. */
  close(): void {}

  /** The identity of the engine that would scan now; undefined when no engine can tell (then no lookup). */
  private async preferredEngine(): Promise<string | undefined> {
    let engine: string | undefined;
    try {
      engine = (await this.opts.clamd.preferredEngine())?.engine;
    } catch (err) {
      this.opts.log.warn({ event: 'scan_cache.engine_failed', err: (err as Error).message }, 'could not tell which clamd would scan');
    }
    if (engine !== this.lastEngine) {
      if (engine === undefined) this.opts.log.warn({ event: 'scan_cache.engine_unknown', previous: this.lastEngine }, 'no clamd answers: scanning without the cache');
      else this.opts.log.info({ event: 'scan_cache.engine', previous: this.lastEngine, engine }, `scan cache looks up under ${engine}`);
      this.lastEngine = engine;
    }
    return engine;
  }

  private async read(key: string): Promise<EngineOutcome | undefined> {
    if (!this.kv) return undefined;
    try {
      const entry = await withDeadline(this.kv.get(key), this.kvTimeoutMs, 'scan cache read');
      if (!entry || entry.operation !== 'PUT') return undefined;
      return decodeStored(entry.value);
    } catch (err) {
      this.stats.kvErrors++;
      this.opts.log.warn({ event: 'scan_cache.read_failed', err: (err as Error).message }, 'scan cache read failed, scanning');
      return undefined;
    }
  }

  /**
   * A core NATS publish on the bucket's subject, not a JetStream publish: no acknowledgement to
   * wait for, which halves the cache's NATS round trips per scanned part (the benchmark measured
   * about 0.4 ms of scanner CPU per part for lookup + acknowledged write). A lost write only costs
   * a later scan. The verdict goes out without waiting for it.
   */
  private write(key: string, o: EngineOutcome): void {
    if (!this.kv) return;
    const value: StoredVerdict = {
      kind: o.kind,
      ...(o.kind !== 'clean' ? { signature: o.signature } : {}),
      ...(o.kind === 'unscannable' ? { reason: o.reason } : {}),
      engine: o.engine,
      address: o.address,
      scannedAt: new Date().toISOString(),
    };
    try {
      this.opts.kvm.js.nc.publish(`$KV.${this.bucket}.${key}`, JSON.stringify(value));
      this.stats.stored++;
      if (this.unconfirmed.size < 1000) this.unconfirmed.add(key); // for flush(); bounded
    } catch (err) {
      this.stats.kvErrors++;
      this.opts.log.warn({ event: 'scan_cache.write_failed', err: (err as Error).message }, 'scan cache write failed');
    }
  }
}

/**
 * The cache as the scanner's environment configures it: SCAN_CACHE (`on`/`off`, default on),
 * SCAN_CACHE_TTL_MS (default 86400000), SCAN_CACHE_EPOCH (default empty, an operator override).
 * Undefined when switched off. SCAN_CACHE_VERSION_CHECK_MS is the clamd client's
 * identityRefreshMs (main.ts, scanCacheIdentityRefreshMs()).
 */
export async function openScanCache(opts: Omit<ScanCacheOptions, 'ttlMs' | 'epoch'> & { env: NodeJS.ProcessEnv }): Promise<ScanCache | undefined> {
  const { env, ...rest } = opts;
  const mode = (env.SCAN_CACHE ?? 'on').toLowerCase();
  if (mode === 'off' || mode === 'false' || mode === '0') {
    rest.log.info({ event: 'scan_cache.off' }, 'scan cache switched off (SCAN_CACHE=off)');
    return undefined;
  }
  return ScanCache.open({
    ...rest,
    ttlMs: positiveInt(env, 'SCAN_CACHE_TTL_MS', DEFAULTS.ttlMs),
    ...(env.SCAN_CACHE_EPOCH ? { epoch: env.SCAN_CACHE_EPOCH } : {}),
  });
}

/** SCAN_CACHE_VERSION_CHECK_MS (default 60000): how often the clamd client re-learns each engine's identity. */
export function scanCacheIdentityRefreshMs(env: NodeJS.ProcessEnv): number {
  return positiveInt(env, 'SCAN_CACHE_VERSION_CHECK_MS', 60_000);
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, def: number): number {
  const text = env[name];
  if (text === undefined || text === '') return def;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got "${text}")`);
  return n;
}
