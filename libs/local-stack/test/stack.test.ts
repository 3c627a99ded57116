import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isListening, readGreeting } from '../src/daemon.js';
import { startService } from '../src/service.js';
import { startStack, type LocalStack } from '../src/stack.js';
import { superviseService } from '../src/supervisor.js';
import { hostPort, needBinaries, needRoot, tempStateDir } from './helpers.js';

/** A stand-in service: logs `"event":"ready"` like the real ones (FAKE_MODE changes that). */
const FAKE_SERVICE = `
import { existsSync, writeFileSync } from 'node:fs';
const mode = process.env.FAKE_MODE ?? 'ok';
// Like a real service: signal handlers in place before it says ready.
process.on('SIGTERM', () => { console.log('bye'); process.exit(0); });
if (mode === 'crash-early') { console.error('boom: cannot start'); process.exit(7); }
if (mode === 'silent') { setInterval(() => {}, 1000); }
else {
  console.log('not json');
  console.log(JSON.stringify({ level: 30, service: 'fake', event: 'ready', nats: process.env.NATS_URL }));
  if (mode === 'crash-once' && !existsSync(process.env.FAKE_MARKER)) {
    writeFileSync(process.env.FAKE_MARKER, 'x');
    setTimeout(() => process.exit(3), 50);
  }
  setInterval(() => {}, 1000);
}
`;

function clamdPing(address: string): Promise<string> {
  return import('node:net').then(
    ({ connect }) =>
      new Promise((resolve, reject) => {
        const [host, port] = hostPort(address);
        const s = connect({ host, port: Number(port) }, () => s.write('zPING\0'));
        let buf = '';
        s.setTimeout(5000, () => s.destroy(new Error('clamd PING timed out')));
        s.on('data', (d) => (buf += d.toString()));
        s.on('end', () => resolve(buf.replace(/\0$/, '')));
        s.on('error', reject);
      }),
  );
}

describe('startService (with a stand-in service)', () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let entry: string;
  before(async () => {
    state = await tempStateDir();
    entry = join(state.dir, 'fake-service.mjs');
    await writeFile(entry, FAKE_SERVICE);
  });
  after(() => state.cleanup());

  it('waits for the ready line, passes the env, logs to <stateDir>/logs/<name>.log, stops on SIGTERM', async () => {
    const svc = await startService('fake', { NATS_URL: 'nats://127.0.0.1:1' }, { stateDir: state.dir, entry });
    assert.equal(svc.ready.event, 'ready');
    assert.equal(svc.ready.nats, 'nats://127.0.0.1:1');
    assert.equal(svc.logFile, join(state.dir, 'logs', 'fake.log'));
    await svc.stop();
    assert.equal(await svc.exited, 0);
    const log = await readFile(svc.logFile, 'utf8');
    assert.match(log, /"event":"ready"/);
    assert.match(log, /bye/);
  });

  it('kill() is a SIGKILL', async () => {
    const svc = await startService('fake', {}, { stateDir: state.dir, entry });
    await svc.kill();
    assert.equal(await svc.exited, null);
  });

  it('rejects with the output when the service exits before it is ready', async () => {
    await assert.rejects(
      startService('fake', { FAKE_MODE: 'crash-early' }, { stateDir: state.dir, entry }),
      /did not become ready.*exited \(code 7\).*boom: cannot start/s,
    );
  });

  it('rejects at the deadline when the service never logs ready', async () => {
    await assert.rejects(
      startService('fake', { FAKE_MODE: 'silent' }, { stateDir: state.dir, entry, readyTimeoutMs: 300 }),
      /did not become ready.*within 300 ms/s,
    );
  });

  it('rejects clearly when the service is not built', async () => {
    await assert.rejects(startService('no-such-service', {}, { stateDir: state.dir }), /does not exist/);
  });

  it('superviseService restarts a crashed service', async () => {
    const lines: string[] = [];
    const sup = superviseService(
      'fake',
      { FAKE_MODE: 'crash-once', FAKE_MARKER: join(state.dir, 'crashed-once') },
      { stateDir: state.dir, entry, minBackoffMs: 50, report: (l) => lines.push(l) },
    );
    const first = await sup.firstStart;
    assert.ok(first);
    const deadline = Date.now() + 10_000;
    while (!lines.some((l) => l.includes('restarted')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(lines.some((l) => /exited with code 3/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /restarted \(pid \d+\)/.test(l)), lines.join('\n'));
    const second = sup.current();
    assert.ok(second && second.pid !== first.pid);
    await sup.stop();
    assert.equal(await second.exited, 0);
  });
});

describe('startStack', () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let stack: LocalStack | undefined;
  before(async () => {
    state = await tempStateDir();
  });
  after(async () => {
    await stack?.stop();
    await state.cleanup();
  });

  it('brings up NATS, S3, clamd, the dev mailbox and Dovecot on free ports and returns the env', async (t) => {
    if (!needRoot(t)) return;
    if (!needBinaries(t, '/usr/sbin/nats-server', '/usr/sbin/clamd', '/usr/sbin/dovecot')) return;
    stack = await startStack({ stateDir: state.dir });
    const env = stack.env;
    for (const name of [
      'NATS_URL', 'S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'S3_BUCKET', 'S3_REGION', 'CLAMD_ADDRESSES',
      'SMTP_UPSTREAM', 'POP3_UPSTREAM', 'SMTP_LISTEN', 'POP3_LISTEN', 'CONFIG_LISTEN', 'ADMIN_TOKEN',
      'MAILWARDEN_STATE_DIR', 'DEV_MAILBOX_DIR', 'POP3S_UPSTREAM', 'POP3_UPSTREAM_CA',
    ]) {
      assert.ok(env[name], `${name} is set`);
    }
    assert.equal(env.S3_ACCESS_KEY, 'mailwarden');
    assert.equal(env.S3_SECRET_KEY, 'mailwarden-secret');
    assert.equal(env.S3_BUCKET, 'mailwarden');

    const [nh, np] = hostPort(env.NATS_URL.replace('nats://', ''));
    assert.match((await readGreeting(nh, Number(np))) ?? '', /^INFO /);
    assert.equal(await clamdPing(env.CLAMD_ADDRESSES), 'PONG');
    const [sh, sp] = hostPort(env.SMTP_UPSTREAM);
    assert.match((await readGreeting(sh, Number(sp))) ?? '', /^220 /);
    const [ph, pp] = hostPort(env.POP3_UPSTREAM);
    assert.match((await readGreeting(ph, Number(pp))) ?? '', /^\+OK/);
    const res = await fetch(`${env.S3_ENDPOINT}/${env.S3_BUCKET}?uploads`);
    assert.equal(res.status, 200, 'bucket created at start');
    // Listen addresses for the gateways are free.
    for (const a of [env.SMTP_LISTEN, env.POP3_LISTEN, env.CONFIG_LISTEN]) {
      const [h, p] = hostPort(a);
      assert.equal(await isListening(h, Number(p), 300), false, `${a} is free`);
    }
  });

  it('stack.startService runs a service with the stack env; stop() ends everything', async (t) => {
    if (!stack) return t.skip('stack did not start');
    const entry = join(state.dir, 'fake-service.mjs');
    await writeFile(entry, FAKE_SERVICE);
    const svc = await stack.startService('fake', {}, { entry });
    assert.equal(svc.ready.nats, stack.env.NATS_URL);
    assert.deepEqual(stack.services, [svc]);

    const env = stack.env;
    await stack.stop();
    assert.equal(await svc.exited, 0);
    for (const a of [env.NATS_URL.replace('nats://', ''), env.CLAMD_ADDRESSES, env.SMTP_UPSTREAM, env.POP3_UPSTREAM, env.S3_ENDPOINT.replace('http://', '')]) {
      const [h, p] = hostPort(a);
      assert.equal(await isListening(h, Number(p), 300), false, `${a} is closed`);
    }
    stack = undefined;
  });
});
