import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Stream } from 'node:stream';
import { describe, it } from 'node:test';
import { ClamdClient, ClamdError, MAX_CHUNK_BYTES, type ClamdAddress } from '../src/index.js';
import { bufferSource, EICAR, projectEngine, useClamd } from './helpers.js';
import { buildZip } from '@mailwarden/testkit';

const clamd = useClamd();
const client = (addresses?: ClamdAddress[]): ClamdClient =>
  new ClamdClient({ addresses: addresses ?? [clamd.get().tcp], connectTimeoutMs: 1000, scanTimeoutMs: 15000 });

/** A multipart mail with one base64 attachment (clamd's ScanMail decodes it). */
function mailWithAttachment(filename: string, data: Buffer): Buffer {
  const b64 = data.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    'From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
      '--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n' +
      `--b1\r\nContent-Type: application/octet-stream; name="${filename}"\r\nContent-Transfer-Encoding: base64\r\n` +
      `Content-Disposition: attachment; filename="${filename}"\r\n\r\n${b64}\r\n--b1--\r\n`,
  );
}

describe('ClamdClient against a real clamd', () => {
  it('answers PING and VERSION (no signature version with only our own database)', async () => {
    const c = client();
    assert.equal(await c.ping(), true);
    const v = await c.version();
    assert.match(v.engine, /^ClamAV \d+\.\d+/);
    assert.equal(typeof v.signatures, 'string');
    assert.ok(v.raw.startsWith(v.engine));
  });

  it('reports a clean text as clean, naming the engine that answered (database identity and address)', async () => {
    const c = client();
    const r = await c.scan(bufferSource(Buffer.from('Hello, this is a perfectly ordinary attachment.\n')));
    assert.deepEqual(r, { kind: 'clean', engine: projectEngine((await c.version()).raw), address: clamd.get().address });
    assert.match(r.engine, /^ClamAV [0-9.]+\/Mailwarden\.DbVersion\.[0-9a-f]{12}$/);
  });

  it('finds EICAR', async () => {
    const r = await client().scan(bufferSource(EICAR));
    assert.equal(r.kind, 'infected');
    assert.equal(r.kind === 'infected' && r.signature, 'Mailwarden.Test.EICAR.UNOFFICIAL');
  });

  it('splits big source chunks into <= 64 KiB frames (EICAR across a frame boundary)', async () => {
    const big = Buffer.alloc(3 * MAX_CHUNK_BYTES, 0x20);
    EICAR.copy(big, MAX_CHUNK_BYTES - 20);
    const r = await client().scan(bufferSource(big));
    assert.equal(r.kind, 'infected');
  });

  it('accepts string chunks', async () => {
    const r = await client().scan(async () => Readable.from([EICAR.toString('latin1')], { objectMode: true }));
    assert.equal(r.kind, 'infected');
  });

  it('accepts an old-style stream (NodeJS.ReadableStream that is not a Readable)', async () => {
    const r = await client().scan(async () => {
      const legacy = new Stream() as unknown as NodeJS.ReadableStream;
      setImmediate(() => {
        legacy.emit('data', EICAR.subarray(0, 10));
        legacy.emit('data', EICAR.subarray(10));
        legacy.emit('end');
      });
      return legacy;
    });
    assert.equal(r.kind, 'infected');
  });

  it('finds EICAR in a deflated zip', async () => {
    const zip = buildZip([{ name: 'readme.txt', data: Buffer.from('nothing here\n') }, { name: 'eicar.com', data: EICAR }]);
    const r = await client().scan(bufferSource(zip));
    assert.equal(r.kind, 'infected');
  });

  it('finds EICAR in a zip inside a zip', async () => {
    const inner = buildZip([{ name: 'eicar.com', data: EICAR }]);
    const outer = buildZip([{ name: 'inner.zip', data: inner }]);
    const r = await client().scan(bufferSource(outer));
    assert.equal(r.kind, 'infected');
  });

  it('finds EICAR in a zip attached to a mail', async () => {
    const zip = buildZip([{ name: 'eicar.com', data: EICAR }]);
    const r = await client().scan(bufferSource(mailWithAttachment('invoice.zip', zip)));
    assert.equal(r.kind, 'infected');
  });

  it('reports a PKWARE-encrypted zip as unscannable (Heuristics.Encrypted.Zip)', async () => {
    const zip = buildZip([{ name: 'secret.txt', data: Buffer.from('a harmless secret\n'.repeat(20)), password: 'infected' }]);
    const c = client();
    const r = await c.scan(bufferSource(zip));
    assert.deepEqual(r, {
      kind: 'unscannable',
      reason: 'encrypted',
      signature: 'Heuristics.Encrypted.Zip',
      engine: projectEngine((await c.version()).raw),
      address: clamd.get().address,
    });
  });

  it('a signature match outranks the encrypted-archive alert', async () => {
    const zip = buildZip([
      { name: 'secret.txt', data: Buffer.from('a harmless secret\n'), password: 'pw' },
      { name: 'eicar.com', data: EICAR },
    ]);
    const r = await client().scan(bufferSource(zip));
    assert.equal(r.kind, 'infected');
  });

  it('reports a random 3 MB stream as clean', async () => {
    async function* random(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 48; i++) yield randomBytes(64 * 1024);
    }
    const r = await client().scan(async () => Readable.from(random()));
    assert.equal(r.kind, 'clean');
  });

  it('scans over the unix socket too', async () => {
    const socketPath = clamd.get().socketPath;
    assert.ok(socketPath, 'clamd has a unix socket');
    const r = await client([{ kind: 'unix', path: socketPath }]).scan(bufferSource(EICAR));
    assert.equal(r.kind, 'infected');
    assert.equal(r.address, `unix:${socketPath}`);
    assert.equal(r.engine, projectEngine((await client().version()).raw));
  });

  it('throws the error of open() as it is, without trying another engine', async () => {
    let opens = 0;
    const c = client([clamd.get().tcp, clamd.get().tcp]);
    const boom = new Error('S3 GET failed');
    await assert.rejects(
      c.scan(async () => {
        opens++;
        throw boom;
      }),
      (err) => err === boom,
    );
    assert.equal(opens, 1);
  });

  it('throws a failing source stream error as it is (not ClamdError)', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(1000);
      throw new Error('object store connection reset');
    }
    await assert.rejects(
      client().scan(async () => Readable.from(failing())),
      (err: unknown) => err instanceof Error && !(err instanceof ClamdError) && /connection reset/.test(err.message),
    );
  });

  it('stops promptly on abort and destroys the source', async () => {
    const ac = new AbortController();
    const src = new Readable({ read() {} }); // never ends
    src.push(Buffer.alloc(1000));
    setTimeout(() => ac.abort(new Error('caller gave up')), 100);
    const t0 = Date.now();
    await assert.rejects(client().scan(async () => src, ac.signal), /caller gave up/);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(src.destroyed, true);
  });
});
