/**
 * Our own clamd client: INSTREAM with backpressure, deadlines and failover.
 *
 * Protocol (clamd(8), "z" commands are NUL-terminated, replies too):
 *   zINSTREAM\0  then chunks <uint32 big-endian length><bytes>, ending with a zero-length chunk;
 *   reply "stream: OK\0" | "stream: <Name> FOUND\0" | "<text> ERROR\0", then clamd closes.
 * Why not the `clamscan` package: see docs/decisions.md.
 *
 * Engine identity: every verdict names the signature database that produced it (`engine`), so a
 * verdict can be reused (scan cache) only where the same database would scan again. Per address
 * the client learns VERSION plus a database fingerprint: it scans DATABASE_PROBE, which our own
 * databases answer with `Mailwarden.DbVersion.<hash of the database files>` (the probe signature
 * of deploy/clamav/generate-signatures.mjs). clamd's VERSION alone cannot tell two custom
 * databases apart ("ClamAV 1.4.6"); an official database without the probe answers OK, and then
 * VERSION ("ClamAV 1.4.6/27000/<date>") is the identity. Learned again after `identityRefreshMs`,
 * lazily: before the first scan on that address after the interval. Why: docs/decisions.md.
 */
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';

export type ClamdAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export type UnscannableReason = 'encrypted' | 'corrupt' | 'limits';

export type ScanOutcome =
  | { kind: 'clean' }
  | { kind: 'infected'; signature: string }
  | { kind: 'unscannable'; reason: UnscannableReason; signature: string };

/** A verdict with the engine that gave it. */
export type ScanResult = ScanOutcome & {
  /**
   * The identity of the engine's signature database: VERSION, plus "/" and the probe signature's
   * name when the database has one, e.g. "ClamAV 1.4.6/Mailwarden.DbVersion.fdbd2c06606d" or
   * "ClamAV 1.4.6/27000/Tue Nov 25 09:00:00 2026". Equal strings mean the same database.
   */
  engine: string;
  /** The address that answered, "host:port" or "unix:/path". */
  address: string;
};

/** The engine that would scan now: the first address that answers, with its identity. */
export interface PreferredEngine {
  address: string;
  /** As ScanResult.engine. */
  engine: string;
}

/**
 * The fixed string the database probe signature matches (deploy/clamav/mailwarden.probe.ndb).
 * Content containing it is reported as `Mailwarden.DbVersion.*` by our own databases.
 */
export const DATABASE_PROBE = 'MAILWARDEN-SIGNATURE-DB-PROBE';

/**
 * The identity of an engine from its VERSION reply and its answer to DATABASE_PROBE: the VERSION
 * reply alone when the probe is OK (no probe signature: an official database carries its version
 * there), else VERSION + "/" + the probe's signature name without clamd's ".UNOFFICIAL" suffix.
 */
export function engineIdentity(versionReply: string, probe: ScanOutcome): string {
  const version = versionReply.trim();
  if (probe.kind === 'clean') return version;
  return `${version}/${probe.signature.replace(/\.UNOFFICIAL$/, '')}`;
}

/** What one clamd reply line means; `error` is a protocol or engine failure (transient). */
export type ReplyClassification = ScanOutcome | { kind: 'error'; message: string };

export type ScanSource = NodeJS.ReadableStream | Readable;

/**
 * How scan() spreads over several engines: `failover` starts every scan with the first address
 * (the others are standbys); `round-robin` starts each scan with the next address in turn, then
 * fails over through the others. Either way every attempt has the same deadlines.
 */
export type ClamdBalance = 'failover' | 'round-robin';

export const CLAMD_BALANCES: readonly ClamdBalance[] = ['failover', 'round-robin'];

/** Parses CLAMD_BALANCE (`failover` | `round-robin`). */
export function parseClamdBalance(text: string): ClamdBalance {
  const s = text.trim();
  if ((CLAMD_BALANCES as readonly string[]).includes(s)) return s as ClamdBalance;
  throw new Error(`invalid CLAMD_BALANCE "${text}": expected ${CLAMD_BALANCES.join(' or ')}`);
}

export interface ClamdClientOptions {
  /** Engines, in failover order (with `round-robin`: the order of the turns, and of failover). */
  addresses: ClamdAddress[];
  /** How scans are spread over the addresses. Default `failover`. */
  balance?: ClamdBalance;
  /**
   * With `round-robin`: an engine whose last attempt failed less than this long ago is tried
   * after the others (its turn is skipped), so a down engine does not cost every other scan a
   * failed attempt (up to the connect deadline). Default 5000 ms.
   */
  failedEngineBackoffMs?: number;
  /** Deadline for the TCP/unix connect to one engine. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Deadline for one whole scan attempt on one engine (connect, stream, verdict). Default 60000 ms. */
  scanTimeoutMs?: number;
  /** Deadline for a short command (PING, VERSION, the database probe) on one engine, after connect. Default 5000 ms. */
  commandTimeoutMs?: number;
  /** How long a learned engine identity (VERSION + database probe) is used before it is learned again. Default 60000 ms. */
  identityRefreshMs?: number;
  /**
   * preferredEngine() takes an engine that answered (a scan or a command) this recently as up,
   * without a PING. Under load every lookup would otherwise cost one more connection to clamd.
   * A verdict served in this window is the one that engine gave, as if the scan were this much
   * earlier. Default 1000 ms; 0 always PINGs.
   */
  answeredWithinMs?: number;
}

/** Transient engine failure: engine down, refused, timed out, protocol error, ERROR reply. */
export class ClamdError extends Error {
  override name = 'ClamdError' as const;
  /** The engine address ("host:port" / "unix:/path"), or a comma list when every engine failed. */
  readonly address: string;

  constructor(message: string, opts: { address: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.address = opts.address;
  }
}

/** Largest INSTREAM frame we send (clamd accepts bigger ones; 64 KiB keeps memory per scan small). */
export const MAX_CHUNK_BYTES = 64 * 1024;

const SIZE_LIMIT_REPLY = 'INSTREAM size limit exceeded';

/** After a write error, how long to wait for the reply clamd may already have sent. */
const WRITE_ERROR_GRACE_MS = 2000;

/** The Writable implementation hooks of a net.Socket (the stream implementer API). */
type WriteCallback = (err?: Error | null) => void;
type WritableImpl = {
  _write(chunk: unknown, encoding: BufferEncoding, cb: WriteCallback): void;
  _writev?(chunks: unknown[], cb: WriteCallback): void;
};

/**
 * Makes "peer closed" write errors (EPIPE, ECONNRESET) on `socket` go to `onPeerGone` instead of
 * erroring the stream. Node destroys a socket on a write error, which discards a reply that had
 * already arrived but was not read yet (clamd answers early, e.g. on its size limit, and closes).
 * With this, the read side stays open and delivers that reply, then EOF or its own error.
 */
function divertPeerGoneWriteErrors(socket: Socket, onPeerGone: (err: Error) => void): void {
  const impl = socket as unknown as WritableImpl;
  const guard =
    (cb: WriteCallback): WriteCallback =>
    (err) => {
      const code = errorCode(err);
      if (err && (code === 'EPIPE' || code === 'ECONNRESET' || code === 'ECONNABORTED')) {
        onPeerGone(err);
        cb();
      } else {
        cb(err);
      }
    };
  const write = impl._write;
  impl._write = function (this: WritableImpl, chunk, encoding, cb) {
    write.call(this, chunk, encoding, guard(cb));
  };
  const writev = impl._writev;
  if (writev) {
    impl._writev = function (this: WritableImpl, chunks, cb) {
      writev.call(this, chunks, guard(cb));
    };
  }
}

/** "host:port" or "unix:/path". */
export function formatClamdAddress(address: ClamdAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Parses "host:port", "[v6]:port" or "unix:/path" (the CLAMD_ADDRESSES syntax). */
export function parseClamdAddress(text: string): ClamdAddress {
  const s = text.trim();
  if (s.startsWith('unix:')) {
    const path = s.slice('unix:'.length);
    if (!path.startsWith('/')) throw new Error(`invalid clamd address "${text}": unix socket path must be absolute`);
    return { kind: 'unix', path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new Error(`invalid clamd address "${text}": expected host:port or unix:/path`);
  }
  return { kind: 'tcp', host: (m[1] ?? m[2]) as string, port };
}

/** Parses a comma-separated list of clamd addresses (empty items ignored). */
export function parseClamdAddresses(list: string): ClamdAddress[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(parseClamdAddress);
}

/**
 * Classifies one clamd INSTREAM reply (with or without the trailing NUL/newline).
 * Pure; never throws. Names are kept exactly as clamd gives them (e.g. ".UNOFFICIAL" suffix).
 */
export function classifyReply(line: string): ReplyClassification {
  const text = line.replace(/[\0\r\n]+$/, '').trim();
  // Replies name the scanned object first ("stream: ..."); with IDSESSION a "<id>: " comes before it.
  const body = text.replace(/^(?:\d+: )?stream: /, '');
  if (body === 'OK') return { kind: 'clean' };
  if (body.endsWith(' FOUND')) {
    const signature = body.slice(0, -' FOUND'.length).trim();
    if (signature === '') return { kind: 'error', message: `clamd reply without a signature name: "${text}"` };
    if (signature.startsWith('Heuristics.Encrypted.')) return { kind: 'unscannable', reason: 'encrypted', signature };
    if (signature.startsWith('Heuristics.Broken.')) return { kind: 'unscannable', reason: 'corrupt', signature };
    if (signature.startsWith('Heuristics.Limits.Exceeded.')) return { kind: 'unscannable', reason: 'limits', signature };
    return { kind: 'infected', signature };
  }
  if (body.endsWith(' ERROR')) {
    const message = body.slice(0, -' ERROR'.length).trim();
    if (message.replace(/\.$/, '') === SIZE_LIMIT_REPLY) {
      return { kind: 'unscannable', reason: 'limits', signature: SIZE_LIMIT_REPLY };
    }
    return { kind: 'error', message: `clamd error: ${message}` };
  }
  return { kind: 'error', message: `unexpected clamd reply: "${text.slice(0, 200)}"` };
}

function toReadable(source: ScanSource): Readable {
  if (source instanceof Readable) return source;
  return new Readable().wrap(source);
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** Not an engine failure: must not be retried on another engine (source stream failed, aborted). */
class FatalAttemptError {
  constructor(readonly error: unknown) {}
}

const errorCode = (err: unknown): string | undefined =>
  typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;

const describe = (err: unknown): string => {
  const code = errorCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  return code && !msg.includes(code) ? `${code} ${msg}` : msg;
};

interface KnownIdentity {
  engine: string;
  learnedAt: number;
}

export class ClamdClient {
  readonly addresses: readonly ClamdAddress[];
  private readonly connectTimeoutMs: number;
  private readonly scanTimeoutMs: number;
  private readonly commandTimeoutMs: number;
  private readonly identityRefreshMs: number;
  /** Per formatted address: the identity learned last, and a learning in flight (shared). */
  private readonly identities = new Map<string, KnownIdentity>();
  private readonly learning = new Map<string, Promise<string>>();
  private preferring: Promise<PreferredEngine | undefined> | undefined;
  /** Per formatted address: when it last answered; dropped when an attempt on it fails. */
  private readonly answered = new Map<string, number>();
  private readonly answeredWithinMs: number;
  readonly balance: ClamdBalance;
  private readonly failedEngineBackoffMs: number;
  /** Per formatted address: when an attempt on it last failed (round-robin only). */
  private readonly failedAt = new Map<string, number>();
  /** The address index the next round-robin scan starts with. */
  private turn = 0;

  constructor(opts: ClamdClientOptions) {
    if (opts.addresses.length === 0) throw new Error('ClamdClient: at least one clamd address is required');
    this.addresses = [...opts.addresses];
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
    this.scanTimeoutMs = opts.scanTimeoutMs ?? 60000;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 5000;
    this.identityRefreshMs = opts.identityRefreshMs ?? 60000;
    this.answeredWithinMs = opts.answeredWithinMs ?? 1000;
    this.balance = opts.balance ?? 'failover';
    this.failedEngineBackoffMs = opts.failedEngineBackoffMs ?? 5000;
  }

  /**
   * Streams one object to clamd (INSTREAM) and returns its verdict, the identity of the engine's
   * signature database (`engine`) and its `address`. Before the first scan on an address, and
   * the first after `identityRefreshMs`, the identity is learned there (VERSION + database probe,
   * two short round trips); an engine that cannot tell it counts as failed. The identity is taken
   * before the scan: if the database is reloaded in between, a verdict of the new database is
   * filed under the old identity (which is about to go), never an old verdict under the new one.
   * `open()` is called once per engine tried, after the connection is up, so a failover restarts
   * the stream from the beginning. Engine failures (refused, timeout, ERROR reply, dropped
   * connection) fail over to the next address; when all fail a ClamdError is thrown. Errors of
   * `open()` or of the source stream, and an abort, are thrown as they are, without failover.
   */
  async scan(open: () => Promise<ScanSource>, signal?: AbortSignal): Promise<ScanResult> {
    return this.withFailover(
      async (address) => {
        const engine = await this.identify(address, signal);
        const outcome = await this.scanOn(address, open, signal);
        return { ...outcome, engine, address: formatClamdAddress(address) };
      },
      signal,
      this.scanOrder(),
    );
  }

  /**
   * The order one scan tries the engines in. `failover`: the configured order. `round-robin`:
   * the configured order rotated to start at the next turn, with engines that failed within
   * `failedEngineBackoffMs` moved to the end (still tried, last, when all others fail too).
   */
  private scanOrder(): readonly ClamdAddress[] {
    const n = this.addresses.length;
    if (this.balance === 'failover' || n === 1) return this.addresses;
    const start = this.turn;
    this.turn = (this.turn + 1) % n;
    const rotated = [...this.addresses.slice(start), ...this.addresses.slice(0, start)];
    const now = Date.now();
    const failedRecently = (a: ClamdAddress): boolean => now - (this.failedAt.get(formatClamdAddress(a)) ?? -Infinity) < this.failedEngineBackoffMs;
    return [...rotated.filter((a) => !failedRecently(a)), ...rotated.filter(failedRecently)];
  }

  /**
   * The identity of the engine at `address` (see ScanResult.engine): the one learned within
   * `identityRefreshMs`, else learned now (VERSION, then an INSTREAM of DATABASE_PROBE). Concurrent
   * callers share one learning. Throws ClamdError when the engine cannot tell.
   */
  async engineIdentity(address: ClamdAddress, signal?: AbortSignal): Promise<string> {
    try {
      return await this.identify(address, signal);
    } catch (err) {
      throw err instanceof FatalAttemptError ? err.error : err;
    }
  }

  /**
   * The engine `scan()` would use now: the first address, in failover order, that answers — a
   * PING when its identity is known and fresh, else learning the identity (which also proves it
   * is up). Undefined when none answers. A scan cache looks up under this identity; a verdict is
   * stored under the `engine` of the scan result, which may differ (failover in between).
   * Concurrent calls without a signal share one check (a burst of lookups costs one PING).
   */
  async preferredEngine(signal?: AbortSignal): Promise<PreferredEngine | undefined> {
    if (signal !== undefined) return this.findPreferred(signal);
    this.preferring ??= this.findPreferred().finally(() => (this.preferring = undefined));
    return this.preferring;
  }

  private async findPreferred(signal?: AbortSignal): Promise<PreferredEngine | undefined> {
    for (const address of this.addresses) {
      if (signal?.aborted) throw abortReason(signal);
      const name = formatClamdAddress(address);
      try {
        const known = this.freshIdentity(name);
        if (known === undefined) return { address: name, engine: await this.identify(address, signal) };
        if (Date.now() - (this.answered.get(name) ?? -Infinity) < this.answeredWithinMs) return { address: name, engine: known };
        if ((await this.command(address, 'PING', signal)) === 'PONG') return { address: name, engine: known };
      } catch (err) {
        if (err instanceof FatalAttemptError) throw err.error;
        if (!(err instanceof ClamdError)) throw err;
        // down: the next engine is the one that would scan
      }
    }
    return undefined;
  }

  private freshIdentity(name: string): string | undefined {
    const known = this.identities.get(name);
    return known !== undefined && Date.now() - known.learnedAt < this.identityRefreshMs ? known.engine : undefined;
  }

  /** The fresh identity of `address`, or learns it (one learning per address at a time). */
  private identify(address: ClamdAddress, signal?: AbortSignal): Promise<string> {
    const name = formatClamdAddress(address);
    const known = this.freshIdentity(name);
    if (known !== undefined) return Promise.resolve(known);
    let running = this.learning.get(name);
    if (running === undefined) {
      // Not tied to one caller's signal: others may be waiting for the same learning.
      running = this.learnIdentity(address).finally(() => this.learning.delete(name));
      this.learning.set(name, running);
    }
    if (signal === undefined) return running;
    const s = signal;
    return new Promise<string>((resolve, reject) => {
      if (s.aborted) {
        reject(new FatalAttemptError(abortReason(s)));
        return;
      }
      const onAbort = (): void => reject(new FatalAttemptError(abortReason(s)));
      s.addEventListener('abort', onAbort, { once: true });
      (running as Promise<string>).then(resolve, reject).finally(() => s.removeEventListener('abort', onAbort));
    });
  }

  private async learnIdentity(address: ClamdAddress): Promise<string> {
    const name = formatClamdAddress(address);
    const version = await this.command(address, 'VERSION');
    if (!/^ClamAV /.test(version)) throw new ClamdError(`unexpected VERSION reply: "${version.slice(0, 200)}"`, { address: name });
    const probe = await this.scanOn(address, async () => Readable.from([Buffer.from(DATABASE_PROBE, 'latin1')]), undefined, this.commandTimeoutMs);
    const engine = engineIdentity(version, probe);
    this.identities.set(name, { engine, learnedAt: Date.now() });
    return engine;
  }

  /** clamd's VERSION from the first engine that answers, e.g. "ClamAV 1.4.6/27000/Tue Nov ...". */
  async version(signal?: AbortSignal): Promise<{ engine: string; signatures: string; raw: string }> {
    return this.withFailover(async (address) => {
      const raw = await this.command(address, 'VERSION', signal);
      if (!/^ClamAV /.test(raw)) {
        throw new ClamdError(`unexpected VERSION reply: "${raw.slice(0, 200)}"`, { address: formatClamdAddress(address) });
      }
      // "ClamAV <engine>/<db version>/<db date>"; with only a custom database: "ClamAV <engine>".
      const [engine = raw, signatures = ''] = raw.split('/');
      return { engine: engine.trim(), signatures: signatures.trim(), raw };
    }, signal);
  }

  /** True when at least one engine answers PING with PONG (tried in order). Never throws. */
  async ping(signal?: AbortSignal): Promise<boolean> {
    for (const address of this.addresses) {
      if (signal?.aborted) return false;
      try {
        if ((await this.command(address, 'PING', signal)) === 'PONG') return true;
      } catch {
        // try the next engine
      }
    }
    return false;
  }

  private async withFailover<T>(attempt: (address: ClamdAddress) => Promise<T>, signal?: AbortSignal, order: readonly ClamdAddress[] = this.addresses): Promise<T> {
    const failures: ClamdError[] = [];
    for (const address of order) {
      if (signal?.aborted) throw abortReason(signal);
      const name = formatClamdAddress(address);
      try {
        const result = await attempt(address);
        this.answered.set(name, Date.now());
        this.failedAt.delete(name);
        return result;
      } catch (err) {
        this.answered.delete(name);
        if (err instanceof FatalAttemptError) throw err.error;
        if (!(err instanceof ClamdError)) throw err;
        this.failedAt.set(name, Date.now());
        failures.push(err);
      }
    }
    if (failures.length === 1) throw failures[0];
    throw new ClamdError(`all clamd engines failed: ${failures.map((f) => `${f.address}: ${f.message}`).join('; ')}`, {
      address: failures.map((f) => f.address).join(','),
      cause: new AggregateError(failures, 'all clamd engines failed'),
    });
  }

  /** Connects with the connect deadline; rejects with ClamdError (or the abort reason). */
  private connectTo(address: ClamdAddress, signal?: AbortSignal): Promise<Socket> {
    const name = formatClamdAddress(address);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new FatalAttemptError(abortReason(signal)));
        return;
      }
      const socket = address.kind === 'unix' ? connect({ path: address.path }) : connect({ host: address.host, port: address.port });
      const done = (err?: unknown): void => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) {
          resolve(socket);
        } else {
          socket.on('error', () => {}); // a late error on a socket we gave up on must not crash us
          socket.destroy();
          reject(err);
        }
      };
      const onConnect = (): void => done();
      const onError = (err: Error): void => done(new ClamdError(`cannot connect to clamd ${name}: ${describe(err)}`, { address: name, cause: err }));
      const onAbort = (): void => done(new FatalAttemptError(abortReason(signal as AbortSignal)));
      const timer = setTimeout(
        () => done(new ClamdError(`connect to clamd ${name} timed out after ${this.connectTimeoutMs} ms`, { address: name })),
        this.connectTimeoutMs,
      );
      socket.once('connect', onConnect);
      socket.once('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Sends a short z-command and returns the reply without its NUL. */
  private async command(address: ClamdAddress, cmd: string, signal?: AbortSignal): Promise<string> {
    const name = formatClamdAddress(address);
    const socket = await this.connectTo(address, signal);
    return new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (err: unknown, reply?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        if (err === undefined) resolve(reply as string);
        else reject(err);
      };
      const onAbort = (): void => finish(new FatalAttemptError(abortReason(signal as AbortSignal)));
      const timer = setTimeout(
        () => finish(new ClamdError(`clamd ${name} did not answer ${cmd} within ${this.commandTimeoutMs} ms`, { address: name })),
        this.commandTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      const replyOrFail = (why: string, cause?: unknown): void => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.length > 0) finish(undefined, text.replace(/[\0\r\n]+$/, ''));
        else finish(new ClamdError(`clamd ${name} ${why} without answering ${cmd}`, { address: name, cause }));
      };
      socket.on('data', (d: Buffer) => {
        chunks.push(d);
        if (d.includes(0)) replyOrFail('');
      });
      socket.on('end', () => replyOrFail('closed the connection'));
      socket.on('close', () => replyOrFail('closed the connection'));
      socket.on('error', (err) => replyOrFail(`failed (${describe(err)})`, err));
      socket.end(`z${cmd}\0`);
    });
  }

  /** One INSTREAM attempt on one engine. */
  private async scanOn(address: ClamdAddress, open: () => Promise<ScanSource>, signal?: AbortSignal, timeoutMs = this.scanTimeoutMs): Promise<ScanOutcome> {
    const name = formatClamdAddress(address);
    const startedAt = Date.now();
    const socket = await this.connectTo(address, signal);
    const remainingMs = Math.max(1, timeoutMs - (Date.now() - startedAt));

    return new Promise<ScanOutcome>((resolve, reject) => {
      const replyChunks: Buffer[] = [];
      let source: Readable | undefined;
      let settled = false;
      let writeError: unknown;
      let graceTimer: NodeJS.Timeout | undefined;

      const finish = (err: unknown, outcome?: ScanOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(graceTimer);
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        source?.destroy();
        if (err === undefined) resolve(outcome as ScanOutcome);
        else reject(err);
      };
      const engineError = (message: string, cause?: unknown): ClamdError => new ClamdError(message, { address: name, cause });

      const onAbort = (): void => finish(new FatalAttemptError(abortReason(signal as AbortSignal)));
      const timer = setTimeout(
        () => finish(engineError(`clamd ${name} gave no verdict within ${timeoutMs} ms`)),
        remainingMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });

      /** The reply is complete at its NUL; clamd may send it early (size limit) while we still write. */
      const tryReply = (final: boolean, cause?: unknown): void => {
        const buf = Buffer.concat(replyChunks);
        const nul = buf.indexOf(0);
        if (nul < 0 && !final) return;
        if (nul < 0 && buf.length === 0) {
          finish(engineError(`clamd ${name} closed the connection without a verdict${cause ? ` (${describe(cause)})` : ''}`, cause));
          return;
        }
        const line = buf.subarray(0, nul < 0 ? buf.length : nul).toString('utf8');
        const verdict = classifyReply(line);
        if (verdict.kind === 'error') finish(engineError(`${verdict.message} (from ${name})`));
        else finish(undefined, verdict);
      };

      // clamd may answer early (size limit) and close while we still write: stop writing and read
      // the reply that arrived (see divertPeerGoneWriteErrors).
      let wakePump: (() => void) | undefined;
      divertPeerGoneWriteErrors(socket, (err) => {
        writeError ??= err;
        graceTimer ??= setTimeout(() => tryReply(true, writeError), WRITE_ERROR_GRACE_MS);
        wakePump?.();
      });
      socket.on('data', (d: Buffer) => {
        replyChunks.push(d);
        tryReply(false);
      });
      socket.on('end', () => tryReply(true, writeError));
      socket.on('error', (err) => tryReply(true, writeError ?? err));
      socket.on('close', () => {
        clearTimeout(graceTimer);
        tryReply(true, writeError);
      });

      const waitDrain = (): Promise<void> =>
        new Promise((res) => {
          const go = (): void => {
            wakePump = undefined;
            socket.off('drain', go);
            socket.off('close', go);
            res();
          };
          wakePump = go;
          socket.on('drain', go);
          socket.on('close', go);
        });

      const pump = async (): Promise<void> => {
        let opened: ScanSource;
        try {
          opened = await open();
        } catch (err) {
          finish(new FatalAttemptError(err));
          return;
        }
        source = toReadable(opened);
        if (settled) {
          source.destroy();
          return;
        }
        // Leaving the loop below early destroys the source (AbortError): that is us, not the source.
        let stopping = false;
        const mustStop = (): boolean =>
          (stopping ||= settled || writeError !== undefined || socket.destroyed || !socket.writable);
        source.on('error', (err) => {
          if (!stopping && !settled) finish(new FatalAttemptError(err));
        });
        socket.write('zINSTREAM\0');
        for await (const raw of source) {
          const chunk: Buffer = typeof raw === 'string' ? Buffer.from(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
          for (let off = 0; off < chunk.length; off += MAX_CHUNK_BYTES) {
            if (mustStop()) return;
            const piece = chunk.subarray(off, Math.min(off + MAX_CHUNK_BYTES, chunk.length));
            const header = Buffer.allocUnsafe(4);
            header.writeUInt32BE(piece.length, 0);
            socket.cork();
            socket.write(header);
            const ok = socket.write(piece);
            socket.uncork();
            if (!ok) await waitDrain();
          }
        }
        if (mustStop()) return;
        socket.write(Buffer.alloc(4)); // zero-length chunk: end of stream
      };

      pump().catch((err: unknown) => {
        // After settling, errors are only the consequence of our own cleanup.
        if (settled) return;
        if (socket.destroyed || writeError !== undefined) return; // socket handlers decide
        finish(new FatalAttemptError(err));
      });
    });
  }
}
