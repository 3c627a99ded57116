/**
 * The Quarantine tab in real Chromium, over real S3 (s3rver), clamd, NATS and an SMTP sink:
 * search, detail, download, release with confirmation, rescan, delete; the actions show up in
 * the Activity tab; the retention is a field of the Email scanning tab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { startQuarantineFixture } from './quarantine-fixture.js';
import { ARTIFACTS, signedInPage } from './browser.js';

async function shot(page: Page, name: string): Promise<void> {
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: 1280, height: Math.max(860, height) });
  await page.screenshot({ path: join(ARTIFACTS, `config-ui-${name}.png`) });
  await page.setViewportSize({ width: 1280, height: 860 });
}

test('admin UI in real Chromium: the Quarantine tab finds, shows, downloads, releases, rescans and deletes', { timeout: 180_000 }, async (t) => {
  const { app, sink, eicarMail, store } = await startQuarantineFixture(t);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  const { page, consoleErrors } = await signedInPage(t, base, { acceptDownloads: true });

  // The retention is a policy field, in the Email scanning tab.
  await page.getByRole('tab', { name: 'Email scanning' }).click();
  assert.equal(await page.getByLabel('Keep removed originals for (days)').inputValue(), '30');
  for (const p of ['{retentionDays}', '{recovery}']) await page.locator('#placeholders').getByText(p).waitFor();

  // Search: everything, then by reason, recipient, reference.
  await page.getByRole('tab', { name: 'Quarantine' }).click();
  await page.getByRole('tab', { name: 'Quarantine', selected: true }).waitFor();
  await page.locator('#q-table tbody tr').nth(2).waitFor();
  assert.equal(await page.locator('#q-table tbody tr').count(), 3);
  await page.getByText('Originals are kept 30 days (policy).').waitFor();
  await shot(page, 'quarantine');
  await page.getByLabel('Reason').selectOption('encrypted');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.locator('#q-table').getByText('q2bbbbbbbbbb').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#q-table tbody tr').length === 1);
  await page.locator('#q-table').getByText(/contract\.zip: Encrypted/).waitFor();
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#q-table tbody tr').length === 3);
  await page.getByLabel('Recipient').fill('carol');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#q-table tbody tr').length === 1);
  await page.locator('#q-table').getByText('q3cccccccccc').waitFor();
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#q-table tbody tr').length === 3);

  // Detail.
  await page.getByRole('button', { name: 'Details of q1aaaaaaaaaa' }).click();
  await page.getByRole('heading', { name: 'Message q1aaaaaaaaaa' }).waitFor();
  await page.locator('#q-meta').getByText('billing@supplier.example').waitFor();
  await page.locator('#q-parts').getByText('eicar.com').waitFor();
  await page.locator('#q-parts').getByText('Eicar-Test-Signature').waitFor();

  // Download: the original bytes.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download original' }).click()]);
  assert.equal(download.suggestedFilename(), 'q1aaaaaaaaaa.eml');
  assert.ok((await readFile((await download.path())!)).equals(eicarMail), 'downloaded bytes are the original');

  // Release asks first; cancel sends nothing, confirm delivers.
  await page.getByRole('button', { name: 'Release…' }).click();
  await page.getByRole('group', { name: 'Release this message?' }).waitFor();
  assert.equal(await page.getByLabel('Deliver to').inputValue(), 'anna@example.test');
  await page.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(sink.received.length, 0);
  await page.getByRole('button', { name: 'Release…' }).click();
  await page.getByLabel('Add an X-Mailwarden-Released header').check();
  await shot(page, 'quarantine-release');
  await page.getByRole('button', { name: 'Release now' }).click();
  await page.getByText('Released to anna@example.test.').waitFor();
  assert.equal(sink.received.length, 1);
  assert.deepEqual(sink.received[0]!.to, ['anna@example.test']);
  assert.match(sink.received[0]!.data.toString('latin1'), /^X-Mailwarden-Released: admin /);
  await page.locator('#q-releases').getByText(/Released .* by admin \(127\.0\.0\.1\) to anna@example\.test \(with header\)/).waitFor();

  // Rescan shows today's verdict.
  await page.getByRole('button', { name: 'Rescan' }).click();
  await page.locator('#q-rescan-result').getByText(/Rescanned .*: Infected \(eicar\.com: .*Eicar/i).waitFor({ timeout: 30_000 });
  await shot(page, 'quarantine-detail');

  // Delete asks for confirmation (declined: nothing happens; accepted: gone).
  page.once('dialog', (d) => void d.dismiss());
  await page.getByRole('button', { name: 'Delete' }).click();
  assert.equal((await store.list('quarantine/q1aaaaaaaaaa/')).length, 2);
  page.once('dialog', (d) => void d.accept());
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByText(/^Deleted q1aaaaaaaaaa\./).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#q-table tbody tr').length === 2);
  assert.equal((await store.list('quarantine/q1aaaaaaaaaa/')).length, 0);

  // The actions are in the Activity tab.
  await page.getByRole('tab', { name: 'Activity' }).click();
  for (const kind of ['Downloaded', 'Released', 'Rescanned', 'Deleted']) await page.locator('#audit').getByText(kind, { exact: true }).waitFor();
  await shot(page, 'activity-audit');

  assert.deepEqual(consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (400|401|404)/.test(e)), []);
});
