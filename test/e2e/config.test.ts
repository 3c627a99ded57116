/**
 * The config service in the real stack: NATS, S3, clamd, the dev mailbox, and the smtp-gateway,
 * scanner, reassembler and config services as processes. A policy change made over HTTP changes
 * what the running gateway does within a second; activity survives a restart of the service.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type LocalStack, type RunningService } from '@mailwarden/local-stack';
import { parseHostPort } from '@mailwarden/config';
import type { Policy, PolicyDocument } from '@mailwarden/contracts';
import { EICAR, composeMessage, sendWithSmtplib, waitFor } from '@mailwarden/testkit';
import { uniqueUser, waitForDelivery } from '../support/mailbox.js';

interface Detection {
  time: string;
  ref: string;
  protocol: string;
  direction: string;
  sender: string;
  recipients: string[];
  subject?: string;
  file?: string;
  verdict: string;
  detail?: string;
  action: string;
}

const subjectOf = (message: Buffer) => /^Subject: (.*)$/im.exec(message.toString('latin1'))?.[1];

describe('config service end to end', { timeout: 300_000 }, () => {
  let dir: string;
  let stack: LocalStack;
  let config: RunningService;
  let base: string;
  let api: (method: string, path: string, init?: { body?: unknown; headers?: Record<string, string> }) => Promise<Response>;
  const services: RunningService[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-config-e2e-'));
    stack = await startStack({ stateDir: dir, env: { SCAN_TIMEOUT_MS: '20000' } });
    for (const name of ['scanner', 'reassembler', 'smtp-gateway']) services.push(await stack.startService(name));
    config = await stack.startService('config');
    base = `http://${stack.env.CONFIG_LISTEN}`;
    api = (method, path, init = {}) =>
      fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${stack.env.ADMIN_TOKEN}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
        ...(init.body ? { body: JSON.stringify(init.body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
  });

  after(async () => {
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function sendInfected(user: string, subject: string): Promise<Buffer> {
    const smtp = parseHostPort(stack.env.SMTP_LISTEN);
    const message = composeMessage({ to: `${user}@example.test`, subject, attachments: [{ filename: 'eicar.com', data: EICAR }] });
    const reply = await sendWithSmtplib({ ...smtp, to: [`${user}@example.test`], message, timeoutS: 30 });
    assert.equal(reply.data?.[0], 250, JSON.stringify(reply));
    const [delivered] = await waitForDelivery(stack.env.DEV_MAILBOX_DIR, user);
    return delivered!;
  }

  it('turning the subject prefix on with PUT /api/v1/policy applies to the next infected message within 1 s', async () => {
    const before = await sendInfected(uniqueUser('prefixoff'), 'Quarterly figures');
    assert.equal(subjectOf(before), 'Quarterly figures', 'prefix off by default');

    const current = await api('GET', '/api/v1/policy');
    assert.equal(current.status, 200);
    const doc = (await current.json()) as PolicyDocument;
    const policy: Policy = { ...doc.policy, subjectPrefix: { enabled: true, text: '[VIRUS REMOVED]' } };
    const put = await api('PUT', '/api/v1/policy', { body: policy, headers: { 'if-match': current.headers.get('etag')! } });
    assert.equal(put.status, 200, await put.clone().text());
    const saved = (await put.json()) as PolicyDocument;
    const savedAt = Date.now();

    // Every service that acts on the policy says it runs the new version, within a second.
    const applied = `"event":"policy.applied","version":${saved.version}`;
    const appliers = services.filter((s) => s.name !== 'scanner');
    await waitFor(() => appliers.every((s) => s.output().includes(applied)), `policy version ${saved.version} applied by ${appliers.map((s) => s.name).join(', ')}`, 1000, 10);
    assert.ok(Date.now() - savedAt <= 1000);

    const user = uniqueUser('prefixon');
    const delivered = await sendInfected(user, 'Quarterly figures');
    assert.equal(subjectOf(delivered), '[VIRUS REMOVED] Quarterly figures');
    assert.match(delivered.toString('latin1'), /Mailwarden removed the attachment/);
    assert.doesNotMatch(delivered.toString('latin1'), /EICAR-STANDARD-ANTIVIRUS-TEST-FILE/);

    // A stale writer is refused, not silently overwriting.
    const stale = await api('PUT', '/api/v1/policy', { body: doc.policy, headers: { 'if-match': `"${doc.version}"` } });
    assert.equal(stale.status, 412);

    const history = (await (await api('GET', '/api/v1/policy/history')).json()) as { entries: { version: number; changes: { path: string }[] }[] };
    assert.equal(history.entries[0]!.version, saved.version);
    assert.deepEqual(history.entries[0]!.changes.map((c) => c.path).sort(), ['subjectPrefix.enabled']);
  });

  it('stats and recent detections show the infected messages, and survive a restart of the config service', async () => {
    const read = async () => ({
      stats: (await (await api('GET', '/api/v1/stats')).json()) as { complete: boolean; infected: number; removedAttachments: number; messages: { scanned: number; smtp: number } },
      events: ((await (await api('GET', '/api/v1/events?limit=10')).json()) as { events: Detection[] }).events,
    });
    const first = await waitFor(async () => {
      const r = await read();
      return r.stats.infected >= 2 ? r : undefined;
    }, 'two infected attachments counted');
    assert.equal(first.stats.removedAttachments, 2, JSON.stringify(first, null, 1));
    assert.ok(first.stats.messages.smtp >= 2);
    const latest = first.events[0]!;
    assert.equal(latest.verdict, 'infected');
    assert.equal(latest.file, 'eicar.com');
    assert.equal(latest.action, 'removed');
    assert.equal(latest.protocol, 'smtp');
    assert.equal(latest.direction, 'inbound');
    assert.equal(latest.sender, 'sender@example.org');
    assert.match(latest.recipients[0]!, /^prefixon/);
    assert.equal(latest.subject, 'Quarterly figures');
    assert.match(latest.detail ?? '', /eicar/i);

    await config.stop();
    config = await stack.startService('config');
    const again = await read();
    assert.equal(again.stats.complete, true);
    assert.deepEqual(again.stats, { ...first.stats, complete: true });
    assert.deepEqual(again.events, first.events);
  });

  it('reports the engine, serves the UI and the OpenAPI document, and refuses a missing token', async () => {
    const engine = (await (await api('GET', '/api/v1/engine')).json()) as { reachable: boolean; engines: { address: string; reachable: boolean; engine?: string }[] };
    assert.equal(engine.reachable, true);
    assert.equal(engine.engines[0]!.address, stack.env.CLAMD_ADDRESSES);
    assert.match(engine.engines[0]!.engine ?? '', /^ClamAV /);

    const anonymous = await fetch(`${base}/api/v1/policy`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal(((await anonymous.json()) as { error: string }).error, 'unauthorized');

    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.match(await (await fetch(`${base}/`)).text(), /Mailwarden/);
    const spec = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, unknown> };
    assert.ok(spec.paths['/api/v1/policy']);
  });
});
