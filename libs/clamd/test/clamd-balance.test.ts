import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ClamdClient, ClamdError, formatClamdAddress, freePort, parseClamdBalance, type ClamdAddress } from '../src/index.js';
import { bufferSource, fakeEngine, fakeServer } from './helpers.js';

const servers: Array<{ close(): Promise<void> }> = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** Answers a scan with `stream: OK` once the zero-length end chunk has arrived. */
function answerOk(socket: Socket): void {
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length >= 14 && buf.subarray(-4).equals(Buffer.alloc(4))) socket.end('stream: OK\0');
  });
}

/** A fake engine that tells its identity and answers every scan OK, counting the scans. */
async function okEngine(): Promise<{ address: ClamdAddress; scans: () => number }> {
  let scans = 0;
  const s = await fakeEngine((socket) => {
    scans++;
    answerOk(socket);
  });
  servers.push(s);
  return { address: s.address, scans: () => scans };
}

/** Accepts every connection and closes it at once (a broken engine), counting connections. */
async function brokenEngine(): Promise<{ address: ClamdAddress; connections: () => number }> {
  let connections = 0;
  const s = await fakeServer((socket) => {
    connections++;
    socket.destroy();
  });
  servers.push(s);
  return { address: s.address, connections: () => connections };
}

const scanMany = async (c: ClamdClient, n: number): Promise<string[]> => {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await c.scan(bufferSource(Buffer.from(`content ${i}`)))).address);
  return out;
};

describe('ClamdClient balance', () => {
  it('failover (the default) scans on the first engine only', async () => {
    const a = await okEngine();
    const b = await okEngine();
    const c = new ClamdClient({ addresses: [a.address, b.address] });
    assert.equal(c.balance, 'failover');
    const used = await scanMany(c, 6);
    assert.deepEqual(new Set(used), new Set([formatClamdAddress(a.address)]));
    assert.equal(b.scans(), 0);
  });

  it('round-robin starts each scan with the next engine in turn', async () => {
    const a = await okEngine();
    const b = await okEngine();
    const c = new ClamdClient({ addresses: [a.address, b.address], balance: 'round-robin' });
    const used = await scanMany(c, 6);
    const [na, nb] = [formatClamdAddress(a.address), formatClamdAddress(b.address)];
    assert.deepEqual(used, [na, nb, na, nb, na, nb]);
    assert.equal(a.scans(), 3);
    assert.equal(b.scans(), 3);
  });

  it('round-robin spreads concurrent scans evenly', async () => {
    const a = await okEngine();
    const b = await okEngine();
    const c = new ClamdClient({ addresses: [a.address, b.address], balance: 'round-robin' });
    await Promise.all(Array.from({ length: 10 }, (_, i) => c.scan(bufferSource(Buffer.from(`content ${i}`)))));
    assert.equal(a.scans(), 5);
    assert.equal(b.scans(), 5);
  });

  it('round-robin fails over to the other engine on its turn, and skips a failed engine for the backoff', async () => {
    const bad = await brokenEngine();
    const good = await okEngine();
    const c = new ClamdClient({ addresses: [bad.address, good.address], balance: 'round-robin', failedEngineBackoffMs: 60_000 });
    const used = await scanMany(c, 6);
    assert.deepEqual(new Set(used), new Set([formatClamdAddress(good.address)]), 'every scan answered by the good engine');
    assert.equal(good.scans(), 6);
    assert.equal(bad.connections(), 1, 'the broken engine was tried once, then skipped while its failure is recent');
  });

  it('round-robin without a backoff tries the failed engine again on each of its turns', async () => {
    const bad = await brokenEngine();
    const good = await okEngine();
    const c = new ClamdClient({ addresses: [bad.address, good.address], balance: 'round-robin', failedEngineBackoffMs: 0 });
    await scanMany(c, 6);
    assert.equal(good.scans(), 6);
    assert.equal(bad.connections(), 3);
  });

  it('round-robin: after the backoff a failed engine is tried again on its turn', async () => {
    const bad = await brokenEngine();
    const a = await okEngine();
    const b = await okEngine();
    const c = new ClamdClient({ addresses: [bad.address, a.address, b.address], balance: 'round-robin', failedEngineBackoffMs: 50 });
    await scanMany(c, 6);
    assert.equal(bad.connections(), 1, 'tried on its first turn, skipped on its second (within the backoff)');
    await new Promise((res) => setTimeout(res, 80));
    await scanMany(c, 3);
    assert.equal(bad.connections(), 2, 'tried again once the backoff is over');
    assert.equal(a.scans() + b.scans(), 9);
  });

  it('round-robin, every engine down: ClamdError naming every address', async () => {
    const x = { kind: 'tcp' as const, host: '127.0.0.1', port: await freePort() };
    const y = { kind: 'tcp' as const, host: '127.0.0.1', port: await freePort() };
    const c = new ClamdClient({ addresses: [x, y], balance: 'round-robin', connectTimeoutMs: 500 });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(c.scan(bufferSource(Buffer.from('x'))), (err: unknown) => {
        assert.ok(err instanceof ClamdError);
        assert.deepEqual(new Set(err.address.split(',')), new Set([formatClamdAddress(x), formatClamdAddress(y)]));
        return true;
      });
    }
  });

  it('parseClamdBalance', () => {
    assert.equal(parseClamdBalance('failover'), 'failover');
    assert.equal(parseClamdBalance(' round-robin '), 'round-robin');
    assert.throws(() => parseClamdBalance('random'), /CLAMD_BALANCE/);
  });
});
