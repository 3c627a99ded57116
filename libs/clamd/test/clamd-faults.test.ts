import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { ClamdClient, ClamdError, freePort, type ClamdAddress } from '../src/index.js';
import { bufferSource, EICAR, fakeEngine, fakeServer, projectEngine, useClamd } from './helpers.js';

const clamd = useClamd();
const servers: Array<{ close(): Promise<void> }> = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A fake clamd that tells its identity (VERSION, database probe) and gives every scan to `onScan`. */
async function fake(onScan: (socket: Socket) => void): Promise<ClamdAddress> {
  const s = await fakeEngine(onScan);
  servers.push(s);
  return s.address;
}

/** A fake server that gets every connection, identity questions included. */
async function raw(onSocket: (socket: Socket) => void): Promise<ClamdAddress> {
  const s = await fakeServer(onSocket);
  servers.push(s);
  return s.address;
}

/** A TCP port nobody listens on: connecting is refused at once. */
async function closedPort(): Promise<ClamdAddress> {
  return { kind: 'tcp', host: '127.0.0.1', port: await freePort() };
}

const isClamdError = (address?: string) => (err: unknown): boolean => {
  assert.ok(err instanceof ClamdError, `expected ClamdError, got ${String(err)}`);
  assert.equal(err.name, 'ClamdError');
  if (address !== undefined) assert.equal(err.address, address);
  return true;
};

describe('ClamdClient faults', () => {
  it('a clamd that accepts and never answers: ClamdError within the scan deadline, source destroyed', async () => {
    const hung = await fake(() => {});
    let src: Readable | undefined;
    const c = new ClamdClient({ addresses: [hung], connectTimeoutMs: 500, scanTimeoutMs: 300 });
    const t0 = Date.now();
    await assert.rejects(
      c.scan(async () => (src = Readable.from([EICAR]))),
      isClamdError(`127.0.0.1:${(hung as { port: number }).port}`),
    );
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
    assert.equal(src?.destroyed, true);
  });

  it('honours backpressure: a clamd that never reads does not make us read the whole source', async () => {
    const stuck = await fake((socket) => socket.pause());
    let produced = 0;
    const total = 256 * 1024 * 1024;
    async function* huge(): AsyncGenerator<Buffer> {
      const chunk = Buffer.alloc(64 * 1024);
      while (produced < total) {
        produced += chunk.length;
        yield chunk;
      }
    }
    const c = new ClamdClient({ addresses: [stuck], scanTimeoutMs: 700 });
    await assert.rejects(c.scan(async () => Readable.from(huge())), isClamdError());
    // Only what fits in the socket buffers was pulled (a few MB), not 256 MB.
    assert.ok(produced < 32 * 1024 * 1024, `pulled ${produced} bytes from the source`);
  });

  it('a clamd that closes without a reply: ClamdError', async () => {
    const rude = await fake((socket) => socket.destroy());
    const c = new ClamdClient({ addresses: [rude], scanTimeoutMs: 2000 });
    await assert.rejects(c.scan(bufferSource(EICAR)), isClamdError());
  });

  it('an ERROR reply other than the size limit: ClamdError carrying clamd text', async () => {
    const broken = await fake((socket) => socket.end('stream: Can\'t allocate memory ERROR\0'));
    const c = new ClamdClient({ addresses: [broken], scanTimeoutMs: 2000 });
    await assert.rejects(c.scan(bufferSource(EICAR)), (err: unknown) => {
      isClamdError()(err);
      assert.match((err as Error).message, /Can't allocate memory/);
      return true;
    });
  });

  it('an early size-limit reply while we still write is a verdict, not an error', async () => {
    const early = await fake((socket) => {
      socket.once('data', () => socket.end('INSTREAM size limit exceeded. ERROR\0'));
    });
    const c = new ClamdClient({ addresses: [early], scanTimeoutMs: 5000 });
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) yield Buffer.alloc(64 * 1024);
    }
    const r = await c.scan(async () => Readable.from(endless()));
    assert.equal(r.kind, 'unscannable');
    assert.equal(r.kind === 'unscannable' && r.reason, 'limits');
  });

  it('failover: a refused first address, then the real clamd (stream opened again)', async () => {
    const refused = await closedPort();
    let opens = 0;
    const c = new ClamdClient({ addresses: [refused, clamd.get().tcp], connectTimeoutMs: 1000 });
    const r = await c.scan(async () => {
      opens++;
      return Readable.from([EICAR]);
    });
    assert.equal(r.kind, 'infected');
    assert.equal(r.address, clamd.get().address);
    assert.equal(r.engine, projectEngine((await c.version()).raw));
    assert.equal(opens, 1, 'open() is only called once connected');
  });

  it('failover: a hung first engine times out, the stream is re-opened for the second', async () => {
    const hung = await fake(() => {});
    let opens = 0;
    const c = new ClamdClient({ addresses: [hung, clamd.get().tcp], scanTimeoutMs: 300 });
    const r = await c.scan(async () => {
      opens++;
      return Readable.from([EICAR]);
    });
    assert.equal(r.kind, 'infected');
    assert.equal(r.address, clamd.get().address);
    assert.equal(opens, 2);
  });

  it('all engines down: ClamdError naming every address', async () => {
    const a = await closedPort();
    const b = await closedPort();
    const c = new ClamdClient({ addresses: [a, b], connectTimeoutMs: 500 });
    let opens = 0;
    await assert.rejects(
      c.scan(async () => {
        opens++;
        return Readable.from([EICAR]);
      }),
      (err: unknown) => {
        isClamdError()(err);
        const e = err as ClamdError;
        assert.equal(e.address, `127.0.0.1:${(a as { port: number }).port},127.0.0.1:${(b as { port: number }).port}`);
        assert.ok(e.cause instanceof AggregateError);
        return true;
      },
    );
    assert.equal(opens, 0);
    assert.equal(await c.ping(), false);
    await assert.rejects(c.version(), isClamdError());
  });

  it('ping and version fail over too, and time out on a hung engine', async () => {
    const hung = await raw(() => {});
    const c = new ClamdClient({ addresses: [hung, clamd.get().tcp], commandTimeoutMs: 200 });
    assert.equal(await c.ping(), true);
    assert.match((await c.version()).engine, /^ClamAV /);
    const alone = new ClamdClient({ addresses: [hung], commandTimeoutMs: 200 });
    const t0 = Date.now();
    assert.equal(await alone.ping(), false);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('parses a VERSION with an official database version', async () => {
    const official = await raw((socket) => {
      socket.once('data', () => socket.end('ClamAV 1.4.6/27471/Tue Nov 26 09:35:03 2024\0'));
    });
    const v = await new ClamdClient({ addresses: [official] }).version();
    assert.deepEqual(v, {
      engine: 'ClamAV 1.4.6',
      signatures: '27471',
      raw: 'ClamAV 1.4.6/27471/Tue Nov 26 09:35:03 2024',
    });
  });

  it('an engine that cannot tell its identity (VERSION unanswered) counts as failed: failover', async () => {
    const mute = await raw(() => {});
    let opens = 0;
    const c = new ClamdClient({ addresses: [mute, clamd.get().tcp], commandTimeoutMs: 200 });
    const t0 = Date.now();
    const r = await c.scan(async () => {
      opens++;
      return Readable.from([EICAR]);
    });
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(r.address, clamd.get().address);
    assert.equal(opens, 1, 'nothing streamed to the engine that could not identify itself');
    const alone = new ClamdClient({ addresses: [mute], commandTimeoutMs: 200 });
    await assert.rejects(alone.scan(bufferSource(EICAR)), isClamdError());
    await assert.rejects(alone.engineIdentity(mute), /did not answer VERSION within 200 ms/);
    assert.equal(await alone.preferredEngine(), undefined);
  });

  it('an ERROR answer to the database probe counts as failed too', async () => {
    const s = await fakeEngine(() => {}, { probeReply: "Can't allocate memory ERROR" });
    servers.push(s);
    const c = new ClamdClient({ addresses: [s.address, clamd.get().tcp] });
    assert.equal((await c.scan(bufferSource(EICAR))).address, clamd.get().address);
    await assert.rejects(c.engineIdentity(s.address), /Can't allocate memory/);
  });
});
