import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MinioStore } from '../src/minio-store.js';

/** An S3 endpoint whose HeadBucket fails (500) the first `failures` times, then finds the bucket. */
async function flakyS3(failures: number) {
  let heads = 0;
  const server = createServer((req, res) => {
    if (req.method === 'HEAD') heads++;
    res.statusCode = req.method === 'HEAD' && heads <= failures ? 500 : 200;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, heads: () => heads, close: () => new Promise((r) => server.close(r)) };
}

test('ensureBucket waits out an S3 that fails while it starts, instead of failing the service', async () => {
  const s3 = await flakyS3(4);
  try {
    const store = new MinioStore({ endpoint: s3.endpoint, accessKey: 'k', secretKey: 's', bucket: 'mailwarden', requestTimeoutMs: 2000 });
    const retries: number[] = [];
    await store.ensureBucket({ patienceMs: 20_000, onRetry: (_err, attempt) => retries.push(attempt) });
    assert.ok(retries.length >= 1, 'the failures were reported');
    assert.ok(s3.heads() > 4);
  } finally {
    await s3.close();
  }
});

test('ensureBucket gives up after its patience', async () => {
  const s3 = await flakyS3(Infinity);
  try {
    const store = new MinioStore({ endpoint: s3.endpoint, accessKey: 'k', secretKey: 's', bucket: 'mailwarden', requestTimeoutMs: 2000 });
    await assert.rejects(store.ensureBucket({ patienceMs: 500 }));
  } finally {
    await s3.close();
  }
});
