import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { Client, CopyConditions } from 'minio';
import { DeadlineError, IdleTimeout, withDeadline } from './deadline.js';
import { StorageError, type ObjectStore, type StoredObject } from './object-store.js';
import { DeleteBatcher } from './delete-batcher.js';

export interface MinioStoreOptions {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region?: string;
  /** Deadline for one small request to answer in full (stat, remove, start and completion of an upload, the first byte of a get). */
  requestTimeoutMs?: number;
  /** Any request that moves no byte, either way, for this long is aborted (uploads of parts, streamed gets). */
  idleTimeoutMs?: number;
}

// The store buffers one part in memory per upload; 5 MiB is S3's minimum part size.
const PART_SIZE = 5 * 1024 * 1024;

/** The signal of the store operation running: every HTTP request it makes is aborted with it. */
const operation = new AsyncLocalStorage<AbortSignal>();

/**
 * The minio client's transport with deadlines: each request is tied to its operation's signal,
 * and a request whose socket moves no byte for `idleMs` (S3 stopped reading or answering) is
 * destroyed — the socket too, so a black-holed connection never goes back to the pool.
 */
function transportWithDeadlines(useSSL: boolean, idleMs: number): Pick<typeof http, 'request'> {
  const base = useSSL ? https : http;
  const request = (options: http.RequestOptions, callback?: (res: http.IncomingMessage) => void): http.ClientRequest => {
    const signal = operation.getStore();
    const req = base.request({ ...options, ...(signal ? { signal } : {}) }, callback);
    req.setTimeout(idleMs, () => req.destroy(new DeadlineError(`s3 ${options.method ?? 'GET'} ${options.path ?? ''}: stalled for ${idleMs} ms`)));
    sliceLargeBodies(req);
    // A read's body is guarded by MinioStore's IdleTimeout, which knows when its reader is slow
    // (the socket goes quiet then, by backpressure, without any stall of S3).
    if ((options.method ?? 'GET') === 'GET') req.once('response', () => req.setTimeout(0));
    return req;
  };
  return { request: request as typeof http.request };
}

const SLICE = 64 * 1024;

/**
 * The minio client sends a part as one 5 MiB buffer: one socket write, which counts as activity
 * only once all of it is gone, so a slow but moving link would look stalled. Written in slices
 * (with backpressure), every slice S3 takes counts as progress for the idle deadline.
 */
function sliceLargeBodies(req: http.ClientRequest): void {
  const end = req.end.bind(req) as (...args: unknown[]) => http.ClientRequest;
  req.end = ((...args: unknown[]) => {
    const [body, ...rest] = args;
    if (!Buffer.isBuffer(body) || body.length <= SLICE) return end(...args);
    let at = 0;
    const pump = (): void => {
      while (at < body.length) {
        const slice = body.subarray(at, (at += SLICE));
        if (!req.write(slice)) {
          if (!req.destroyed) req.once('drain', pump);
          return;
        }
      }
      end(...rest.filter((a) => typeof a === 'function'));
    };
    pump();
    return req;
  }) as typeof req.end;
}

export class MinioStore implements ObjectStore {
  readonly client: Client;
  private readonly bucket: string;
  private readonly requestTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly deletes = new DeleteBatcher((keys) => this.removeNow(keys));

  constructor(opts: MinioStoreOptions) {
    const url = new URL(opts.endpoint);
    const useSSL = url.protocol === 'https:';
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: opts.accessKey,
      secretKey: opts.secretKey,
      region: opts.region ?? 'us-east-1',
      pathStyle: true,
      partSize: PART_SIZE,
      transport: transportWithDeadlines(useSSL, this.idleTimeoutMs),
    });
    // Over plain HTTP the minio client signs a sha256 of every payload (and still sends an MD5):
    // one more pass over every byte stored. Integrity is ours end to end instead: the gateway
    // hashes raw.eml once (the envelope's rawSha256), the scanner and the rebuild check it. So the
    // payload goes as UNSIGNED-PAYLOAD, as over HTTPS (docs/decisions.md).
    (this.client as unknown as { enableSHA256: boolean }).enableSHA256 = false;
    this.bucket = opts.bucket;
  }

  /** The store every service uses, from the deployment settings (S3_*). */
  static fromSettings(env: {
    S3_ENDPOINT: string;
    S3_ACCESS_KEY: string;
    S3_SECRET_KEY: string;
    S3_BUCKET: string;
    S3_REGION: string;
    S3_REQUEST_TIMEOUT_MS?: string;
    S3_IDLE_TIMEOUT_MS?: string;
  }): MinioStore {
    const ms = (v: string | undefined, name: string): number | undefined => {
      if (v === undefined || v.trim() === '') return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (ms), got "${v}"`);
      return n;
    };
    const requestTimeoutMs = ms(env.S3_REQUEST_TIMEOUT_MS, 'S3_REQUEST_TIMEOUT_MS');
    const idleTimeoutMs = ms(env.S3_IDLE_TIMEOUT_MS, 'S3_IDLE_TIMEOUT_MS');
    return new MinioStore({
      endpoint: env.S3_ENDPOINT,
      accessKey: env.S3_ACCESS_KEY,
      secretKey: env.S3_SECRET_KEY,
      bucket: env.S3_BUCKET,
      region: env.S3_REGION,
      ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
      ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}),
    });
  }

  /**
   * Runs one S3 operation with a deadline: `totalMs` for the whole of it (undefined: none, the
   * transport's idle deadline still applies), and `cancel` from the caller. Its HTTP requests are
   * aborted when it fails, so a stalled request never outlives the operation.
   */
  private async call<T>(what: string, totalMs: number | undefined, fn: () => Promise<T>, cancel?: AbortSignal): Promise<T> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let onCancel: (() => void) | undefined;
    const failed = new Promise<never>((_, reject) => {
      const fail = (err: Error) => {
        ac.abort(err);
        reject(err);
      };
      if (totalMs !== undefined) timer = setTimeout(() => fail(new DeadlineError(`${what}: no answer within ${totalMs} ms`)), totalMs);
      if (cancel) {
        onCancel = () => fail(cancel.reason instanceof Error ? cancel.reason : new Error(`${what}: cancelled`));
        if (cancel.aborted) onCancel();
        else cancel.addEventListener('abort', onCancel, { once: true });
      }
    });
    try {
      return await Promise.race([operation.run(ac.signal, fn), failed]);
    } finally {
      clearTimeout(timer);
      if (onCancel) cancel?.removeEventListener('abort', onCancel);
    }
  }

  /** Readiness: the bucket answers. */
  ready(): Promise<boolean> {
    return this.call('s3 bucketExists', this.requestTimeoutMs, () => this.client.bucketExists(this.bucket));
  }

  /**
   * Makes sure the bucket is there before a service takes work. S3 may be starting, restarting or
   * briefly failing (a 5xx) just then: that is waited out, with backoff, for up to `patienceMs`
   * (default 2 min), each failure reported to `onRetry`, instead of the service exiting and
   * counting on its supervisor to start it again.
   */
  async ensureBucket(opts: { patienceMs?: number; onRetry?: (err: Error, attempt: number) => void } = {}): Promise<void> {
    const giveUpAt = Date.now() + (opts.patienceMs ?? 120_000);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.createBucketIfMissing();
      } catch (err) {
        if (Date.now() >= giveUpAt) throw err;
        opts.onRetry?.(err as Error, attempt);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
      }
    }
  }

  private async createBucketIfMissing(): Promise<void> {
    if (await this.ready()) return;
    try {
      await this.call('s3 makeBucket', this.requestTimeoutMs, () => this.client.makeBucket(this.bucket));
    } catch (err) {
      // Another service created it in between.
      if (!(await this.ready())) throw err;
    }
  }

  /**
   * Streams `body` into `key`. Most mail fits in one part: read up to one part first; if the
   * stream ends there, it is one PUT. Otherwise a multipart upload, one part at a time (one part
   * in memory), each step with its deadline: start and completion within `requestTimeoutMs`, each
   * part's transfer within the idle deadline. A failed upload is aborted (best effort).
   * `opts.signal`, or the body going away before its end, cancels the S3 request in flight at once.
   */
  async put(key: string, body: Readable, opts: { signal?: AbortSignal } = {}): Promise<{ size: number }> {
    const what = `s3 put ${key}`;
    const gone = new AbortController();
    const onClose = () => {
      if (!body.readableEnded) gone.abort(new StorageError(`${what}: the body was closed before its end`));
    };
    const onCancel = () => {
      const reason = opts.signal?.reason instanceof Error ? opts.signal.reason : new StorageError(`${what}: cancelled`);
      gone.abort(reason);
      body.destroy(reason);
    };
    body.once('close', onClose);
    if (opts.signal?.aborted) onCancel();
    else opts.signal?.addEventListener('abort', onCancel, { once: true });
    const parts = new PartReader(body, PART_SIZE, this.idleTimeoutMs, what);
    let uploadId: string | undefined;
    try {
      let part = await parts.next();
      if (parts.ended) {
        await this.call(what, undefined, () => this.client.putObject(this.bucket, key, part, part.length), gone.signal);
        return { size: part.length };
      }
      const id = await this.call(`${what}: start of the multipart upload`, this.requestTimeoutMs, () => this.client.initiateNewMultipartUpload(this.bucket, key, {}), gone.signal);
      uploadId = id;
      const etags: { part: number; etag: string }[] = [];
      for (let n = 1; part.length; n++) {
        const body = part;
        const { etag } = await this.call(
          `${what}: part ${n}`,
          undefined,
          () => this.client.uploadPart({ bucketName: this.bucket, objectName: key, uploadID: id, partNumber: n, headers: {} }, body),
          gone.signal,
        );
        etags.push({ part: n, etag });
        part = parts.ended ? Buffer.alloc(0) : await parts.next();
      }
      await this.call(`${what}: completion of the multipart upload`, this.requestTimeoutMs, () => this.client.completeMultipartUpload(this.bucket, key, id, etags), gone.signal);
      return { size: parts.bytes };
    } catch (err) {
      parts.destroy();
      if (uploadId !== undefined) {
        const id = uploadId;
        void this.call(`${what}: abort`, this.requestTimeoutMs, () => this.client.abortMultipartUpload(this.bucket, key, id)).catch(() => undefined);
      }
      if (err instanceof StorageError) throw err;
      throw new StorageError(`${what} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      body.off('close', onClose);
      opts.signal?.removeEventListener('abort', onCancel);
    }
  }

  async get(key: string): Promise<Readable> {
    return this.guardedGet(`s3 get ${key}`, () => this.client.getObject(this.bucket, key));
  }

  async getRange(key: string, start: number, end: number): Promise<Readable> {
    if (end <= start) return Readable.from([]);
    return this.guardedGet(`s3 get ${key} [${start}, ${end})`, () => this.client.getPartialObject(this.bucket, key, start, end - start));
  }

  /** The answer must start within `requestTimeoutMs`; then the body must keep moving (idle deadline). */
  private async guardedGet(what: string, request: () => Promise<Readable>): Promise<Readable> {
    let source: Readable;
    try {
      source = await this.call(what, this.requestTimeoutMs, request);
    } catch (err) {
      throw new StorageError(`${what} failed: ${(err as Error).message}`, { cause: err });
    }
    const guard = new IdleTimeout(this.idleTimeoutMs, what);
    source.on('error', (err) => guard.destroy(new StorageError(`${what} failed: ${err.message}`, { cause: err })));
    guard.on('close', () => source.destroy());
    return source.pipe(guard);
  }

  async stat(key: string): Promise<{ size: number }> {
    const s = await this.call(`s3 stat ${key}`, this.requestTimeoutMs, () => this.client.statObject(this.bucket, key));
    return { size: s.size };
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      await this.call(`s3 copy ${from}`, this.requestTimeoutMs, () => this.client.copyObject(this.bucket, to, `/${this.bucket}/${from}`, new CopyConditions()));
    } catch (err) {
      throw new StorageError(`s3 copy ${from} → ${to} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const listing = new Promise<StoredObject[]>((resolve, reject) => {
      const out: StoredObject[] = [];
      const stream = this.client.listObjectsV2(this.bucket, prefix, true);
      stream.on('data', (o) => {
        if (o.name) out.push({ key: o.name, size: o.size, lastModified: o.lastModified });
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(out));
    });
    try {
      return await withDeadline(listing, this.requestTimeoutMs * 6, `s3 list ${prefix}`);
    } catch (err) {
      throw new StorageError(`s3 list ${prefix} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Sends the deletes still queued; call before the process exits. */
  close(): Promise<void> {
    return this.deletes.flush();
  }

  /** Deletes are batched across messages (see DeleteBatcher); the promise settles with the batch. */
  remove(keys: string[]): Promise<void> {
    return this.deletes.add(keys);
  }

  private async removeNow(keys: string[]): Promise<void> {
    if (!keys.length) return;
    // A bulk delete occasionally fails on s3rver (file-system race); one retry is enough.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.call('s3 removeObjects', this.requestTimeoutMs, () => this.client.removeObjects(this.bucket, keys));
        return;
      } catch (err) {
        if (attempt >= 3) throw new StorageError(`s3 remove failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

/**
 * Cuts a stream into parts of exactly `size` bytes (the last one shorter). Waiting for the
 * stream is bounded by `idleMs`: a body that stops moving fails the upload.
 */
class PartReader {
  bytes = 0;
  ended = false;
  private readonly chunks: AsyncIterator<Buffer>;
  private carry: Buffer | undefined;

  constructor(
    private readonly body: Readable,
    private readonly size: number,
    private readonly idleMs: number,
    private readonly what: string,
  ) {
    this.chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** The next part; `ended` tells whether the stream is done after it. */
  async next(): Promise<Buffer> {
    const pieces: Buffer[] = [];
    let have = 0;
    if (this.carry) {
      pieces.push(this.carry);
      have = this.carry.length;
      this.carry = undefined;
    }
    while (have < this.size) {
      const r = await this.read();
      if (r.done) {
        this.ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      this.bytes += chunk.length;
      pieces.push(chunk);
      have += chunk.length;
    }
    const all = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, have);
    if (all.length > this.size) {
      this.carry = all.subarray(this.size);
      return all.subarray(0, this.size);
    }
    return all;
  }

  private async read(): Promise<IteratorResult<Buffer>> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.chunks.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new DeadlineError(`${this.what}: the body stalled for ${this.idleMs} ms`)), this.idleMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    if (!this.body.destroyed) this.body.destroy();
  }
}
