/**
 * The Queue tab (queue mode) in real Chromium over a real NATS: the queue with its per-upstream
 * failures, one message's attempts, retry now, delete with confirmation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { DeliveryRecords } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';
import { DeliveryQueue, buildApp } from '../src/index.js';
import { TOKEN, build, fixedEngine } from './harness.js';
import { ARTIFACTS, signedInPage } from './browser.js';

test('admin UI in real Chromium: the Queue tab shows the queue and a message\'s attempts, retries and deletes', { timeout: 120_000 }, async (t) => {
  const h = await build(t);
  const records = await DeliveryRecords.open(h.bus.kvm);
  const removed: string[][] = [];
  const store = { remove: async (keys: string[]) => void removed.push(keys) } as unknown as ObjectStore;
  const queue = new DeliveryQueue({ records, store, publish: (subject, data, msgID) => h.bus.js.publish(subject, data, { msgID }) });
  const app = await buildApp({ policyStore: h.store, activity: h.activity, engine: fixedEngine(), adminToken: TOKEN, queue });
  t.after(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  await records.create({
    ...DeliveryRecords.initialState({ ref: 'q1aaaaaaaaaa', route: 'inbound', mailFrom: 'alice@example.org', rcptTo: ['bob@example.test'], key: 'msg/q1aaaaaaaaaa/raw.eml', size: 2048, keys: ['msg/q1aaaaaaaaaa/raw.eml'], receivedAt: new Date(Date.now() - 3600_000).toISOString() }),
    attempts: [{ at: new Date().toISOString(), upstream: '10.0.0.5:25', outcomes: [{ recipient: 'bob@example.test', code: 0, reply: 'connection to 10.0.0.5:25 failed: ECONNREFUSED' }] }],
    attemptCount: 1,
    nextAttemptAt: new Date(Date.now() + 600_000).toISOString(),
  });

  const { page, consoleErrors } = await signedInPage(t, base);

  await page.getByRole('tab', { name: 'Queue' }).click();
  await page.getByRole('tab', { name: 'Queue', selected: true }).waitFor();
  await page.getByText(/^1 message queued; the oldest accepted /).waitFor();
  await page.locator('#qu-upstreams').getByText('10.0.0.5:25', { exact: true }).waitFor();
  await page.locator('#qu-upstreams').getByText(/ECONNREFUSED/).waitFor();
  await page.locator('#qu-table').getByText('q1aaaaaaaaaa').waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'config-ui-queue.png') });

  await page.getByRole('button', { name: 'Details of q1aaaaaaaaaa' }).click();
  await page.getByRole('heading', { name: 'Message q1aaaaaaaaaa' }).waitFor();
  await page.locator('#qu-attempts').getByText(/ECONNREFUSED/).waitFor();

  await page.getByRole('button', { name: 'Retry now' }).click();
  await page.getByText('Delivery of q1aaaaaaaaaa is being tried now.').waitFor();
  assert.ok((await records.load('q1aaaaaaaaaa'))?.state.copy, 'retry-now published a live copy');

  page.once('dialog', (d) => void d.dismiss());
  await page.getByRole('button', { name: 'Delete' }).click();
  assert.ok(await records.load('q1aaaaaaaaaa'), 'declined: still queued');
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByText(/^Deleted q1aaaaaaaaaa\./).waitFor();
  await page.getByText('The delivery queue is empty.').waitFor();
  assert.equal((await records.done('q1aaaaaaaaaa'))?.outcome, 'deleted');
  assert.deepEqual(removed, [['msg/q1aaaaaaaaaa/raw.eml']]);

  assert.deepEqual(consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (400|401|404)/.test(e)), []);
});
