import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { startClamd, parseClamdAddresses } from '@mailwarden/clamd';
import { ClamdEngineProbe } from '../src/index.js';
import { auth, build } from './harness.js';

/** A port nobody listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

test('GET /api/v1/engine reports each clamd: a real one with its version, a dead one unreachable', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mw-config-clamd-'));
  const clamd = await startClamd({ stateDir: dir });
  t.after(async () => {
    await clamd.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const dead = `127.0.0.1:${await deadPort()}`;
  const engine = new ClamdEngineProbe(parseClamdAddresses(`${dead},${clamd.address}`), { timeoutMs: 2000 });
  const { app } = await build(t, { engine });

  const res = await app.inject({ method: 'GET', url: '/api/v1/engine', headers: auth });
  assert.equal(res.statusCode, 200);
  const body = res.json<{ reachable: boolean; engines: { address: string; reachable: boolean; engine?: string; raw?: string; error?: string }[] }>();
  assert.equal(body.reachable, true);
  assert.equal(body.engines.length, 2);
  assert.deepEqual(
    body.engines.map((e) => [e.address, e.reachable]),
    [
      [dead, false],
      [clamd.address, true],
    ],
  );
  assert.ok(body.engines[0]!.error);
  assert.match(body.engines[1]!.engine!, /^ClamAV \d+\.\d+/);
  assert.match(body.engines[1]!.raw!, /^ClamAV /);
});

test('every engine down: reachable false, within the deadline', async () => {
  const engine = new ClamdEngineProbe(parseClamdAddresses(`127.0.0.1:${await deadPort()}`), { timeoutMs: 1000, cacheMs: 0 });
  const started = Date.now();
  const status = await engine.status();
  assert.equal(status.reachable, false);
  assert.equal(status.engines[0]!.reachable, false);
  assert.ok(Date.now() - started < 1500);
});

test('a clamd that accepts but never answers is reported unreachable at the deadline', async (t) => {
  // Reads the command, keeps the connection open, never answers: a hung engine.
  const sockets = new Set<Socket>();
  const silent = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.resume();
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });
  const { port } = silent.address() as AddressInfo;
  const engine = new ClamdEngineProbe(parseClamdAddresses(`127.0.0.1:${port}`), { timeoutMs: 500, cacheMs: 0 });
  const started = Date.now();
  const status = await engine.status();
  assert.equal(status.reachable, false);
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
});
