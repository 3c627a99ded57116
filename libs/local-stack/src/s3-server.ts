#!/usr/bin/env node
/**
 * Child-process entry of the local S3 server (s3rver is CPU heavy: it gets its own process).
 *
 *   node s3-server.js --dir DIR [--host 127.0.0.1] [--port 0] [--access-key K --secret-key S]
 *                     [--bucket B]… [--watch-stdin]
 *
 * Prints one JSON line `{"event":"ready","host":…,"port":…}` on stdout when listening.
 * Exits on SIGTERM/SIGINT and, with --watch-stdin, when stdin closes (the parent died).
 *
 * Three fixes over plain s3rver:
 * - `HEAD /<bucket>` (the services' readiness probe and the queue's health check, every second)
 *   answers from the bucket's directory: s3rver would list up to 1 000 objects with their
 *   metadata for it, and answer 500 for ever once one metadata file was cut short by a restart
 *   (found by the fault drill: no gateway could start again).
 * - `GET /<bucket>?uploads` (ListMultipartUploads) answers an empty list instead of 501: the
 *   minio client asks it before every multipart upload, so without it every upload over the
 *   part size, and every upload of unknown size, fails.
 * - s3rver knows one access key only (`S3RVER`/`S3RVER`); the configured key pair is added to
 *   its account registry. (s3rver checks V2 signatures but does not verify V4 ones: with the
 *   minio client, which signs V4, any secret works for a known access key.)
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void> | void;
interface S3rverStore {
  getBucket(name: string): Promise<unknown>;
  putBucket(name: string): Promise<unknown>;
  deleteObject(bucket: string, key: string): Promise<void>;
}
interface S3rverInstance {
  middleware: KoaMiddleware[];
  store: S3rverStore;
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  on(event: 'error', fn: (err: Error) => void): void;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;
interface S3rverAccount {
  createKeyPair(accessKeyId: string, secretAccessKey: string): void;
}

const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverClass;
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: S3rverAccount };

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'access-key': { type: 'string' },
    'secret-key': { type: 'string' },
    bucket: { type: 'string', multiple: true },
    'watch-stdin': { type: 'boolean', default: false },
  },
});
if (!values.dir) {
  console.error('s3-server: --dir is required');
  process.exit(2);
}
const accessKey = values['access-key'] ?? process.env.S3_ACCESS_KEY;
const secretKey = values['secret-key'] ?? process.env.S3_SECRET_KEY;
if (accessKey) DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey ?? accessKey);

const xmlEscape = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** ListMultipartUploads: s3rver keeps no list of open uploads, so the honest answer is "none". */
function listMultipartUploads(store: S3rverStore): KoaMiddleware {
  return async (ctx, next) => {
    const m = /^\/([^/]+)\/?$/.exec(ctx.path);
    if (ctx.method !== 'GET' || !m || !('uploads' in ctx.query)) return next();
    const bucket = decodeURIComponent(m[1]!);
    const first = (v: string | string[] | undefined): string => (Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));
    ctx.type = 'application/xml';
    if (!(await store.getBucket(bucket))) {
      ctx.status = 404;
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>' +
        `<Message>The specified bucket does not exist</Message><BucketName>${xmlEscape(bucket)}</BucketName></Error>`;
      return;
    }
    ctx.status = 200;
    ctx.body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Bucket>${xmlEscape(bucket)}</Bucket>` +
      `<KeyMarker>${xmlEscape(first(ctx.query['key-marker']))}</KeyMarker>` +
      `<UploadIdMarker>${xmlEscape(first(ctx.query['upload-id-marker']))}</UploadIdMarker>` +
      '<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker>' +
      `<Prefix>${xmlEscape(first(ctx.query.prefix))}</Prefix>` +
      `<Delimiter>${xmlEscape(first(ctx.query.delimiter))}</Delimiter>` +
      `<MaxUploads>${Number(first(ctx.query['max-uploads'])) || 1000}</MaxUploads>` +
      '<IsTruncated>false</IsTruncated>' +
      '</ListMultipartUploadsResult>';
  };
}

mkdirSync(values.dir, { recursive: true });
const server = new S3rver({
  address: values.host,
  port: Number(values.port),
  directory: values.dir,
  silent: true,
  // Path-style only: with vhostBuckets a Host header like "mailwarden.localhost" would be
  // taken as a bucket name.
  vhostBuckets: false,
});
// In front of s3rver's own middleware (logger, XML encoder, router).
server.middleware.unshift(listMultipartUploads(server.store));
// HeadBucket is routed to ListObjects (HEAD is GET without a body). By then the router has checked
// the credentials and that the bucket exists (404 otherwise): that is the whole answer.
const bucketController = require('s3rver/lib/controllers/bucket.js') as { getBucket: KoaMiddleware };
const listObjects = bucketController.getBucket;
bucketController.getBucket = async (ctx, next) => {
  if (ctx.method !== 'HEAD') return listObjects(ctx, next);
  ctx.status = 200;
  ctx.body = '';
};
// s3rver prunes empty directories after a delete; two deletes under one prefix race on that
// (ENOENT / ENOTEMPTY) and the whole bulk delete answers 500. The objects are gone either way.
const deleteObject = server.store.deleteObject.bind(server.store);
server.store.deleteObject = async (bucket, key) => {
  try {
    await deleteObject(bucket, key);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY') throw err;
  }
};
server.on('error', (err) => {
  const status = (err as Error & { status?: number }).status;
  if (status !== undefined && status < 500) return; // NoSuchKey & co. are answers, not faults
  console.error(`s3-server: ${err.stack ?? err.message}`);
});

for (const b of values.bucket ?? []) {
  if (!(await server.store.getBucket(b))) await server.store.putBucket(b);
}
const address = await server.run();
console.log(JSON.stringify({ event: 'ready', host: values.host, port: address.port, dir: values.dir }));

let closing = false;
const shutdown = (): void => {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(0), 2000);
  force.unref();
  server.close().then(
    () => process.exit(0),
    () => process.exit(0),
  );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
if (values['watch-stdin']) {
  // The parent holds our stdin open; when it dies (even by SIGKILL) stdin ends.
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
