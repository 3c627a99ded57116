import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { TlsMaterial, ensureSelfSigned } from '../src/index.js';

test('a self-signed certificate is generated once and reused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mw-tls-'));
  const m = await TlsMaterial.load({ stateDir: dir, hostname: 'gw.example.test' });
  try {
    const x = new X509Certificate(m.pair.cert);
    assert.match(x.subject, /CN=gw\.example\.test/);
    const again = await ensureSelfSigned(dir, 'gw.example.test');
    assert.equal(again.created, false);
  } finally {
    m.close();
  }
});

test('TLS_CERT/TLS_KEY are used as given and reloaded when they change', async () => {
  const a = await mkdtemp(join(tmpdir(), 'mw-tls-a-'));
  const b = await mkdtemp(join(tmpdir(), 'mw-tls-b-'));
  const first = await ensureSelfSigned(a, 'one.example.test');
  const second = await ensureSelfSigned(b, 'two.example.test');
  const dir = await mkdtemp(join(tmpdir(), 'mw-tls-live-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await copyFile(first.cert, cert);
  await copyFile(first.key, key);
  const m = await TlsMaterial.load({ cert, key, stateDir: dir, hostname: 'x', watchIntervalMs: 50 });
  // The file watch does not keep a process alive (a server does); this test has no server.
  const alive = setInterval(() => undefined, 1000);
  try {
    assert.match(new X509Certificate(m.pair.cert).subject, /one\.example\.test/);
    const changed = new Promise<void>((resolve) => m.onChange(() => resolve()));
    await copyFile(second.key, key);
    await copyFile(second.cert, cert);
    await changed;
    await new Promise((r) => setTimeout(r, 200));
    assert.match(new X509Certificate(m.pair.cert).subject, /two\.example\.test/);
  } finally {
    clearInterval(alive);
    m.close();
  }
});

test('only one of TLS_CERT and TLS_KEY is an error', async () => {
  await assert.rejects(TlsMaterial.load({ cert: '/x', stateDir: tmpdir(), hostname: 'x' }), /together/);
});
