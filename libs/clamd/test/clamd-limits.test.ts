import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ClamdClient } from '../src/index.js';
import { bufferSource, EICAR, projectEngine, useClamd } from './helpers.js';
import { buildZip } from '@mailwarden/testkit';

// Small limits so the over-limit cases stay fast.
const clamd = useClamd({ config: { StreamMaxLength: '2M', MaxFileSize: '1M', MaxScanSize: '4M', MaxRecursion: 3 } });
const client = (): ClamdClient => new ClamdClient({ addresses: [clamd.get().tcp], scanTimeoutMs: 15000 });

describe('clamd limits become unscannable/limits (AlertExceedsMax)', () => {
  it('a stream over StreamMaxLength: clamd answers early, we stop writing and report limits', async () => {
    let produced = 0;
    let src: Readable | undefined;
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        produced += 64 * 1024;
        yield randomBytes(64 * 1024);
      }
    }
    const r = await client().scan(async () => (src = Readable.from(endless())));
    assert.deepEqual(r, {
      kind: 'unscannable',
      reason: 'limits',
      signature: 'INSTREAM size limit exceeded',
      engine: projectEngine((await client().version()).raw),
      address: clamd.get().address,
    });
    assert.equal(src?.destroyed, true);
    assert.ok(produced < 64 * 1024 * 1024, `pulled ${produced} bytes`);
  });

  it('a file over MaxFileSize: Heuristics.Limits.Exceeded.MaxFileSize', async () => {
    const r = await client().scan(bufferSource(randomBytes(1536 * 1024)));
    assert.equal(r.kind, 'unscannable');
    assert.equal(r.kind === 'unscannable' && r.signature, 'Heuristics.Limits.Exceeded.MaxFileSize');
  });

  it('zips nested deeper than MaxRecursion: Heuristics.Limits.Exceeded.MaxRecursion', async () => {
    let zip = buildZip([{ name: 'eicar.com', data: EICAR }]);
    for (let i = 0; i < 4; i++) zip = buildZip([{ name: `level${i}.zip`, data: zip }]);
    const r = await client().scan(bufferSource(zip));
    assert.equal(r.kind, 'unscannable');
    assert.equal(r.kind === 'unscannable' && r.reason, 'limits');
    assert.equal(r.kind === 'unscannable' && r.signature, 'Heuristics.Limits.Exceeded.MaxRecursion');
  });
});
