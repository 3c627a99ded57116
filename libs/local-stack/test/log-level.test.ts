/**
 * `LOG_LEVEL=warn npm start` used to hang: the launcher waits for the services' `"event":"ready"`
 * line, which they log at info. The ready line is now printed at every level (libs/log).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { isListening } from '../src/daemon.js';
import { startService } from '../src/service.js';
import { startStack, type LocalStack } from '../src/stack.js';
import { hostPort, needBinaries, needRoot, tempStateDir } from './helpers.js';

describe('services start under LOG_LEVEL=warn', () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let stack: LocalStack | undefined;
  before(async () => {
    state = await tempStateDir();
  });
  after(async () => {
    await stack?.stop();
    await state.cleanup();
  });

  it('dev-mailbox: ready line printed, info lines are not', async () => {
    const svc = await startService(
      'dev-mailbox',
      { LOG_LEVEL: 'warn', DEV_MAILBOX_SMTP_LISTEN: '127.0.0.1:0', DEV_MAILBOX_DIR: `${state.dir}/mail` },
      { stateDir: state.dir, readyTimeoutMs: 15_000 },
    );
    try {
      assert.equal(typeof svc.ready.smtp, 'string');
      const [h, p] = hostPort(String(svc.ready.smtp));
      assert.ok(await isListening(h, Number(p), 1000), 'SMTP listener is up');
    } finally {
      await svc.stop();
    }
    const lines = (await readFile(svc.logFile, 'utf8')).split('\n').filter((l) => l.startsWith('{'));
    const events = lines.map((l) => (JSON.parse(l) as { event?: string; level: number }));
    assert.deepEqual(events.filter((e) => e.level < 40).map((e) => e.event), ['ready'], lines.join('\n'));
  });

  it('scanner (the one `npm start` waited for forever) is ready with LOG_LEVEL=warn', async (t) => {
    if (!needRoot(t)) return;
    if (!needBinaries(t, '/usr/sbin/nats-server', '/usr/sbin/clamd', '/usr/sbin/dovecot')) return;
    stack = await startStack({ stateDir: state.dir });
    const svc = await stack.startService('scanner', { LOG_LEVEL: 'warn', OPS_LISTEN: '127.0.0.1:0' }, { readyTimeoutMs: 30_000 });
    assert.equal(svc.ready.event, 'ready');
    const res = await fetch(`http://${String(svc.ready.ops)}/readyz`);
    assert.equal(res.status, 200, await res.text());
  });
});
