import { Client } from 'minio';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { IdleTimeout, withDeadline } from './deadline.js';
import { StorageError, type ObjectStore, type StoredObject } from './object-store.js';
import { CopyConditions } from 'minio';
import { DeleteBatcher } from './delete-batcher.js';

export interface MinioStoreOptions {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region?: string;
  /** Deadline for one request to answer (stat, remove, the first byte of a get). */
  requestTimeoutMs?: number;
  /** A streaming upload or download that moves no byte for this long fails. */
  idleTimeoutMs?: number;
}

// The minio client buffers one part in memory per upload; 5 MiB is S3's minimum part size.
const PART_SIZE = 5 * 1024 * 1024;

export class MinioStore implements ObjectStore {
  readonly client: Client;
  private readonly bucket: string;
  private readonly requestTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly deletes = new DeleteBatcher((keys) => this.removeNow(keys));

  constructor(opts: MinioStoreOptions) {
    const url = new URL(opts.endpoint);
    const useSSL = url.protocol === 'https:';
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: opts.accessKey,
      secretKey: opts.secretKey,
      region: opts.region ?? 'us-east-1',
      pathStyle: true,
      partSize: PART_SIZE,
    });
    this.bucket = opts.bucket;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  }

  /** The store every service uses, from the deployment settings (S3_*). */
  static fromSettings(env: { S3_ENDPOINT: string; S3_ACCESS_KEY: string; S3_SECRET_KEY: string; S3_BUCKET: string; S3_REGION: string }): MinioStore {
    return new MinioStore({ endpoint: env.S3_ENDPOINT, accessKey: env.S3_ACCESS_KEY, secretKey: env.S3_SECRET_KEY, bucket: env.S3_BUCKET, region: env.S3_REGION });
  }

  /** Readiness: the bucket answers. */
  ready(): Promise<boolean> {
    return withDeadline(this.client.bucketExists(this.bucket), this.requestTimeoutMs, 's3 bucketExists');
  }

  async ensureBucket(): Promise<void> {
    const exists = await withDeadline(this.client.bucketExists(this.bucket), this.requestTimeoutMs, 's3 bucketExists');
    if (!exists) {
      try {
        await withDeadline(this.client.makeBucket(this.bucket), this.requestTimeoutMs, 's3 makeBucket');
      } catch (err) {
        // Another service created it in between.
        if (!(await this.client.bucketExists(this.bucket))) throw err;
      }
    }
  }

  /**
   * The minio client turns every unknown-size stream into a multipart upload (4 round trips even
   * for 2 KB). Most mail fits in one part, so read up to one part first: if the stream ends there,
   * it is one PUT; otherwise the buffered head and the rest go up as a multipart stream.
   */
  async put(key: string, body: Readable, size?: number): Promise<{ size: number }> {
    const guard = new IdleTimeout(this.idleTimeoutMs, `s3 put ${key}`);
    const feeding = pipeline(body, guard);
    try {
      const chunks = guard[Symbol.asyncIterator]();
      const head: Buffer[] = [];
      let headBytes = 0;
      let ended = false;
      while (headBytes < PART_SIZE) {
        const next = await chunks.next();
        if (next.done) {
          ended = true;
          break;
        }
        head.push(next.value as Buffer);
        headBytes += (next.value as Buffer).length;
      }
      if (ended) {
        const buf = Buffer.concat(head, headBytes);
        await Promise.all([feeding, withDeadline(this.client.putObject(this.bucket, key, buf, buf.length), this.requestTimeoutMs, `s3 put ${key}`)]);
      } else {
        const rest = Readable.from(
          (async function* () {
            yield* head;
            for (;;) {
              const next = await chunks.next();
              if (next.done) return;
              yield next.value as Buffer;
            }
          })(),
          { objectMode: false },
        );
        await Promise.all([feeding, this.client.putObject(this.bucket, key, rest, size)]);
      }
    } catch (err) {
      guard.destroy();
      await feeding.catch(() => undefined);
      throw new StorageError(`s3 put ${key} failed: ${(err as Error).message}`, { cause: err });
    }
    return { size: guard.bytes };
  }

  async get(key: string): Promise<Readable> {
    return this.guardedGet(key, `s3 get ${key}`, () => this.client.getObject(this.bucket, key));
  }

  async getRange(key: string, start: number, end: number): Promise<Readable> {
    if (end <= start) return Readable.from([]);
    return this.guardedGet(key, `s3 get ${key} [${start}, ${end})`, () => this.client.getPartialObject(this.bucket, key, start, end - start));
  }

  private async guardedGet(key: string, what: string, request: () => Promise<Readable>): Promise<Readable> {
    let source: Readable;
    try {
      source = await withDeadline(request(), this.requestTimeoutMs, what);
    } catch (err) {
      throw new StorageError(`${what} failed: ${(err as Error).message}`, { cause: err });
    }
    const guard = new IdleTimeout(this.idleTimeoutMs, what);
    source.on('error', (err) => guard.destroy(err));
    guard.on('close', () => source.destroy());
    return source.pipe(guard);
  }

  async stat(key: string): Promise<{ size: number }> {
    const s = await withDeadline(this.client.statObject(this.bucket, key), this.requestTimeoutMs, `s3 stat ${key}`);
    return { size: s.size };
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      await withDeadline(this.client.copyObject(this.bucket, to, `/${this.bucket}/${from}`, new CopyConditions()), this.requestTimeoutMs, `s3 copy ${from}`);
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
        await withDeadline(this.client.removeObjects(this.bucket, keys), this.requestTimeoutMs, 's3 removeObjects');
        return;
      } catch (err) {
        if (attempt >= 3) throw new StorageError(`s3 remove failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}
