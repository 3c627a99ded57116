import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Client } from 'minio';
import { DEFAULT_S3_ACCESS_KEY, DEFAULT_S3_SECRET_KEY, startS3, type RunningS3 } from '../src/s3.js';
import { tempStateDir } from './helpers.js';

function client(s3: RunningS3, accessKey = s3.accessKey, secretKey = s3.secretKey): Client {
  const u = new URL(s3.endpoint);
  return new Client({ endPoint: u.hostname, port: Number(u.port), useSSL: false, accessKey, secretKey, region: 'us-east-1' });
}

async function sha256(stream: NodeJS.ReadableStream): Promise<{ hash: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { hash: h.digest('hex'), size };
}

/** `total` pseudo-random bytes in 64 KiB chunks, of unknown length to the consumer. */
function randomStream(total: number, hash: ReturnType<typeof createHash>): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, 65536);
      left -= n;
      const chunk = randomBytes(n);
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

describe('startS3 (s3rver in a child process)', () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let s3: RunningS3;
  const bucket = 'mailwarden';

  before(async () => {
    state = await tempStateDir();
    s3 = await startS3({ stateDir: state.dir, buckets: [bucket] });
  });
  after(async () => {
    await s3?.stop();
    await state.cleanup();
  });

  it('listens on a free port with the configured default credentials', () => {
    assert.match(s3.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(s3.accessKey, DEFAULT_S3_ACCESS_KEY);
    assert.equal(s3.secretKey, DEFAULT_S3_SECRET_KEY);
  });

  it('creates the requested bucket; makeBucket works for others', async () => {
    const mc = client(s3);
    assert.equal(await mc.bucketExists(bucket), true);
    assert.equal(await mc.bucketExists('other'), false);
    await mc.makeBucket('other', 'us-east-1');
    assert.equal(await mc.bucketExists('other'), true);
  });

  it('round-trips a small object: put, stat, get, range get, remove', async () => {
    const mc = client(s3);
    const body = Buffer.from('Subject: hi\r\n\r\nhello world\r\n');
    await mc.putObject(bucket, 'small/one.eml', body, body.length, { 'Content-Type': 'message/rfc822' });
    const st = await mc.statObject(bucket, 'small/one.eml');
    assert.equal(st.size, body.length);
    const got = await sha256(await mc.getObject(bucket, 'small/one.eml'));
    assert.equal(got.hash, createHash('sha256').update(body).digest('hex'));
    const part = await mc.getPartialObject(bucket, 'small/one.eml', 15, 5);
    let text = '';
    for await (const c of part as AsyncIterable<Buffer>) text += c.toString();
    assert.equal(text, 'hello');
    await mc.removeObject(bucket, 'small/one.eml');
    await assert.rejects(mc.statObject(bucket, 'small/one.eml'), /Not Found|NoSuchKey|NotFound/i);
  });

  it('uploads 12 MB from a stream of unknown size (multipart) and reads it back identical', async () => {
    const mc = client(s3);
    const size = 12 * 1024 * 1024;
    const h = createHash('sha256');
    // No size argument: the minio client goes multipart (5 MiB parts) and first asks
    // ListMultipartUploads, which plain s3rver answers 501.
    await mc.putObject(bucket, 'big/twelve.bin', randomStream(size, h));
    const sent = h.digest('hex');
    const st = await mc.statObject(bucket, 'big/twelve.bin');
    assert.equal(st.size, size);
    const got = await sha256(await mc.getObject(bucket, 'big/twelve.bin'));
    assert.deepEqual(got, { hash: sent, size });
  });

  it('answers ListMultipartUploads with an empty list, and NoSuchBucket for a missing bucket', async () => {
    const res = await fetch(`${s3.endpoint}/${bucket}?uploads`);
    assert.equal(res.status, 200);
    const xml = await res.text();
    assert.match(xml, /<ListMultipartUploadsResult[^>]*>.*<IsTruncated>false<\/IsTruncated>/s);
    assert.doesNotMatch(xml, /<Upload>/);
    const missing = await fetch(`${s3.endpoint}/no-such-bucket?uploads`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /NoSuchBucket/);
  });

  it('answers HeadBucket from the bucket alone, even after a restart cut a metadata file short', async () => {
    const mc = client(s3);
    await mc.putObject(bucket, 'cut/short.eml', Buffer.from('Subject: x\r\n\r\ny\r\n'));
    const metadata = (await readdir(join(s3.directory, bucket, 'cut'))).find((f) => f.endsWith('metadata.json'));
    assert.ok(metadata, 'the object has a metadata file');
    await writeFile(join(s3.directory, bucket, 'cut', metadata), '{"content-ty');
    // s3rver lists the bucket's objects for a HEAD, and answered 500 from here on
    assert.equal(await mc.bucketExists(bucket), true);
    assert.equal(await mc.bucketExists('no-such-bucket'), false);
    await mc.removeObject(bucket, 'cut/short.eml');
  });

  it('refuses an unknown access key', async () => {
    // (HEAD has no error body: minio reports the 403 as "credentials required".)
    const mc = client(s3, 'nobody-knows-me', 'whatever');
    await assert.rejects(mc.bucketExists(bucket), /InvalidAccessKeyId|does not exist in our records|credentials required/i);
  });

  it('keeps objects across a restart on the same stateDir', async () => {
    const mc = client(s3);
    await mc.putObject(bucket, 'persist.txt', Buffer.from('still here'));
    await s3.stop();
    s3 = await startS3({ stateDir: state.dir });
    const got = await sha256(await client(s3).getObject(bucket, 'persist.txt'));
    assert.equal(got.hash, createHash('sha256').update('still here').digest('hex'));
  });
});
