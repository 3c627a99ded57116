import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics, DEFAULT_CHECK_TIMEOUT_MS, SCAN_DURATION_BUCKETS, startOpsServer, type OpsServer, type ReadinessCheck } from '../src/index.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(ops: OpsServer, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: ops.port, path, method, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A server on a free loopback port with its own registry, closed after the test. */
async function start(t: { after(fn: () => Promise<void>): void }, readiness: Record<string, ReadinessCheck> = {}, checkTimeoutMs?: number) {
  const registry = new Registry();
  const metrics = createMetrics(registry);
  const ops = await startOpsServer({ listen: '127.0.0.1:0', service: 'test-service', readiness, registry, ...(checkTimeoutMs ? { checkTimeoutMs } : {}) });
  t.after(() => ops.close());
  return { ops, metrics, registry };
}

describe('ops server', () => {
  it('answers /healthz 200 while alive, 503 once shutting down', async (t) => {
    const { ops } = await start(t);
    assert.ok(ops.port && ops.port > 0);
    const ok = await get(ops, '/healthz');
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { status: 'ok', service: 'test-service' });
    assert.match(String(ok.headers['content-type']), /application\/json/);

    ops.setShuttingDown();
    assert.equal(ops.shuttingDown, true);
    const draining = await get(ops, '/healthz');
    assert.equal(draining.status, 503);
    assert.equal(JSON.parse(draining.body).status, 'shutting down');
    assert.equal((await get(ops, '/readyz')).status, 503);
  });

  it('answers /readyz 200 with every check when all pass', async (t) => {
    const { ops } = await start(t, { nats: async () => true, s3: async () => true });
    const r = await get(ops, '/readyz?verbose=1');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { ready: true, service: 'test-service', checks: { nats: 'ok', s3: 'ok' } });
  });

  it('answers /readyz 503 naming a check that fails, throws or passes its deadline', async (t) => {
    let aborted: unknown;
    const { ops } = await start(
      t,
      {
        nats: async () => true,
        s3: async () => false,
        clamd: async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:3310');
        },
        hangs: (signal) =>
          new Promise<boolean>((resolve) =>
            signal.addEventListener('abort', () => {
              aborted = signal.reason;
              // A probe that ignores its signal is cut by the deadline anyway; this one resolves late.
              setTimeout(() => resolve(true), 50);
            }),
          ),
      },
      300,
    );
    const started = Date.now();
    const r = await get(ops, '/readyz');
    const took = Date.now() - started;
    assert.equal(r.status, 503);
    const body = JSON.parse(r.body);
    assert.equal(body.ready, false);
    assert.deepEqual(body.checks, { nats: 'ok', s3: 'failed', clamd: 'error: connect ECONNREFUSED 127.0.0.1:3310', hangs: 'timeout' });
    assert.deepEqual(body.failing.sort(), ['clamd', 'hangs', 's3']);
    assert.ok(took >= 250 && took < 2000, `answered after ${took} ms, expected about the 300 ms deadline`);
    assert.ok(aborted instanceof Error, 'the timed-out check got its signal aborted');
  });

  it('gives each check a 2 s deadline by default', () => {
    assert.equal(DEFAULT_CHECK_TIMEOUT_MS, 2000);
  });

  it('runs the checks once for concurrent /readyz requests', async (t) => {
    let calls = 0;
    const { ops } = await start(t, {
      slow: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 100));
        return true;
      },
    });
    const replies = await Promise.all([get(ops, '/readyz'), get(ops, '/readyz'), get(ops, '/readyz')]);
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200, 200],
    );
    assert.equal(calls, 1);
    await get(ops, '/readyz');
    assert.equal(calls, 2, 'a later request runs the checks again');
  });

  it('serves default process metrics and the mailwarden metrics at /metrics', async (t) => {
    const { ops, metrics } = await start(t);
    metrics.messages.inc({ protocol: 'smtp', direction: 'inbound', outcome: 'delivered' });
    metrics.messages.inc({ protocol: 'smtp', direction: 'inbound', outcome: 'delivered' });
    metrics.verdicts.inc({ kind: 'infected' });
    metrics.removedAttachments.inc({ reason: 'encrypted' });
    metrics.parts.inc({ protocol: 'pop3' }, 3);
    metrics.errors.inc({ service: 'scanner', kind: 'clamd' });
    metrics.tlsUnscannedSessions.inc({ protocol: 'smtp' });
    metrics.scanDuration.observe(0.042);
    metrics.pendingJobs.set({ queue: 'verdicts' }, 7);

    const r = await get(ops, '/metrics');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = r.body;
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.match(text, new RegExp(`^${name} `, 'm'), `default metric ${name}`);
    }
    assert.match(text, /^mailwarden_messages_total\{protocol="smtp",direction="inbound",outcome="delivered"\} 2$/m);
    assert.match(text, /^mailwarden_verdicts_total\{kind="infected"\} 1$/m);
    assert.match(text, /^mailwarden_removed_attachments_total\{reason="encrypted"\} 1$/m);
    assert.match(text, /^mailwarden_parts_total\{protocol="pop3"\} 3$/m);
    assert.match(text, /^mailwarden_errors_total\{service="scanner",kind="clamd"\} 1$/m);
    assert.match(text, /^mailwarden_tls_unscanned_sessions_total\{protocol="smtp"\} 1$/m);
    assert.match(text, /^mailwarden_scan_duration_seconds_bucket\{le="0\.05"\} 1$/m);
    assert.match(text, /^mailwarden_scan_duration_seconds_count 1$/m);
    assert.match(text, /^mailwarden_pending_jobs\{queue="verdicts"\} 7$/m);
    assert.match(text, /^mailwarden_queue_messages 0$/m, 'no queue reader: the gauges stay at 0');
    assert.match(text, /^mailwarden_service_info\{service="test-service"\} 1$/m);
    // Every metric of ours is documented and prefixed.
    const ours = [...text.matchAll(/^# HELP (mailwarden_\w+) /gm)].map((m) => m[1]).sort();
    assert.deepEqual(ours, [
      'mailwarden_errors_total',
      'mailwarden_messages_total',
      'mailwarden_parts_total',
      'mailwarden_pending_jobs',
      'mailwarden_pop3_sizes_total',
      'mailwarden_quarantine_bytes',
      'mailwarden_quarantine_deletions_total',
      'mailwarden_quarantine_entries',
      'mailwarden_quarantine_releases_total',
      'mailwarden_quarantined_total',
      'mailwarden_queue_bounces_total',
      'mailwarden_queue_deliveries_total',
      'mailwarden_queue_messages',
      'mailwarden_queue_oldest_seconds',
      'mailwarden_queue_refusals_total',
      'mailwarden_removed_attachments_total',
      'mailwarden_scan_duration_seconds',
      'mailwarden_service_info',
      'mailwarden_tls_unscanned_sessions_total',
      'mailwarden_verdicts_total',
    ]);
  });

  it('reads a tracked backlog at scrape time and keeps the last value when the read fails', async (t) => {
    const { ops, metrics } = await start(t);
    let backlog = 12;
    let fail = false;
    const stop = metrics.trackPendingJobs('jobs', async () => {
      if (fail) throw new Error('nats down');
      return backlog;
    });
    assert.match((await get(ops, '/metrics')).body, /^mailwarden_pending_jobs\{queue="jobs"\} 12$/m);
    backlog = 3;
    assert.match((await get(ops, '/metrics')).body, /^mailwarden_pending_jobs\{queue="jobs"\} 3$/m);
    fail = true;
    const r = await get(ops, '/metrics');
    assert.equal(r.status, 200, 'a failing backlog read does not fail the scrape');
    assert.match(r.body, /^mailwarden_pending_jobs\{queue="jobs"\} 3$/m);
    stop();
  });

  it('has scan latency buckets from 5 ms to 60 s', () => {
    assert.equal(SCAN_DURATION_BUCKETS[0], 0.005);
    assert.equal(SCAN_DURATION_BUCKETS[SCAN_DURATION_BUCKETS.length - 1], 60);
    assert.deepEqual([...SCAN_DURATION_BUCKETS], [...SCAN_DURATION_BUCKETS].sort((a, b) => a - b));
  });

  it('answers 404 for other paths, 405 for other methods, and HEAD without a body', async (t) => {
    const { ops } = await start(t);
    assert.equal((await get(ops, '/')).status, 404);
    assert.equal((await get(ops, '/healthz/extra')).status, 404);
    const post = await get(ops, '/healthz', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const head = await get(ops, '/healthz', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('shares one registry between servers without registering the default metrics twice', async (t) => {
    const registry = new Registry();
    createMetrics(registry);
    const a = await startOpsServer({ listen: '127.0.0.1:0', service: 'a', registry });
    t.after(() => a.close());
    const b = await startOpsServer({ listen: '127.0.0.1:0', service: 'b', registry });
    t.after(() => b.close());
    assert.equal((await get(b, '/metrics')).status, 200);
  });

  it('stops listening on close()', async () => {
    const ops = await startOpsServer({ listen: '127.0.0.1:0', service: 'closing', registry: new Registry() });
    const port = ops.port!;
    // An idle keep-alive connection must not hold close() up.
    const idle = connect(port, '127.0.0.1');
    await new Promise((r) => idle.once('connect', r));
    await ops.close();
    assert.equal(ops.shuttingDown, true);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(undefined);
        });
        s.once('error', reject);
      }),
      /ECONNREFUSED/,
    );
    idle.destroy();
  });

  it('starts nothing when OPS_LISTEN is off or empty', async () => {
    for (const listen of ['off', '', ' OFF ']) {
      const ops = await startOpsServer({ listen, service: 'quiet', registry: new Registry() });
      assert.equal(ops.port, undefined);
      assert.equal(ops.address, undefined);
      ops.setShuttingDown();
      assert.equal((await ops.readiness()).shuttingDown, true);
      await ops.close();
    }
  });

  it('rejects a malformed OPS_LISTEN and a port in use', async (t) => {
    await assert.rejects(startOpsServer({ listen: 'nonsense', service: 'x', registry: new Registry() }), /OPS_LISTEN/);
    const { ops } = await start(t);
    await assert.rejects(startOpsServer({ listen: `127.0.0.1:${ops.port}`, service: 'x', registry: new Registry() }), /EADDRINUSE/);
  });
});
