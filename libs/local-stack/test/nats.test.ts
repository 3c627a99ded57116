import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { join } from 'node:path';
import { NATS_USERS, ensureNats, natsAnswers, natsPasswords, startNats, type RunningNats } from '../src/nats.js';
import { needBinaries, tempStateDir } from './helpers.js';

describe('startNats', () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let nats: RunningNats | undefined;

  before(async () => {
    state = await tempStateDir();
  });
  after(async () => {
    await nats?.stop();
    await state.cleanup();
  });

  it('starts nats-server with JetStream on a free port', async (t) => {
    if (!needBinaries(t, '/usr/sbin/nats-server')) return;
    nats = await startNats({ stateDir: state.dir });
    assert.match(nats.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(nats.reused, false);
    assert.ok(await natsAnswers(nats.host, nats.port));
    // The production users (deploy/nats/auth.conf): anonymous clients are refused.
    assert.deepEqual(Object.keys(nats.users ?? {}).sort(), Object.keys(NATS_USERS).sort());
    await assert.rejects(connect({ servers: nats.url, timeout: 5000 }), /authoriz/i);
    // Passwords kept in the state dir (a reused server is reached with the same ones).
    assert.equal((await natsPasswords(state.dir)).scanner, nats.users!.scanner.password);
  });

  it('startNats({ auth: false }) lets anyone do anything (unit tests of the bus)', async (t) => {
    if (!nats) return t.skip('no nats-server');
    const open = await startNats({ stateDir: join(state.dir, 'open'), auth: false });
    assert.equal(open.users, undefined);
    const nc = await connect({ servers: open.url, timeout: 5000 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      const info = await jsm.getAccountInfo();
      assert.ok(info.limits, 'JetStream answers');
      const sub = nc.subscribe('local-stack.test', { max: 1 });
      nc.publish('local-stack.test', 'hello');
      for await (const m of sub) assert.equal(m.string(), 'hello');
    } finally {
      await nc.close();
      await open.stop();
    }
  });

  it('ensureNats reuses a server already answering on NATS_URL', async (t) => {
    if (!nats) return t.skip('no nats-server');
    const again = await ensureNats(nats.url, { stateDir: state.dir });
    assert.equal(again.reused, true);
    assert.equal(again.pid, undefined);
    assert.equal(again.users?.config.password, nats.users?.config.password);
    await again.stop(); // a no-op for a reused server
    assert.ok(await natsAnswers(nats.host, nats.port));
  });

  it('stop() ends the server', async (t) => {
    if (!nats) return t.skip('no nats-server');
    await nats.stop();
    assert.equal(await natsAnswers(nats.host, nats.port, 300), false);
    nats = undefined;
  });
});
