import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium, type Page } from 'playwright-core';
import { DEFAULT_POLICY, Subjects } from '@mailwarden/contracts';
import { parseClamdAddresses, startClamd } from '@mailwarden/clamd';
import { createLogger } from '@mailwarden/log';
import { ClamdEngineProbe, EventFeed } from '../src/index.js';
import { TOKEN, build } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url));
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The whole page at once: the viewport grows to the page, so the sticky save bar sits at the end, not over the form. */
async function shot(page: Page, name: string): Promise<void> {
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.setViewportSize({ width: 1280, height: Math.max(860, height) });
  await page.screenshot({ path: join(ARTIFACTS, `config-ui-${name}.png`) });
  await page.setViewportSize({ width: 1280, height: 860 });
}

test('admin UI in real Chromium: sign in, every tab, change the subject prefix, field errors, a concurrent change', async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (scripts/bootstrap.mjs installs it)`);
  await mkdir(ARTIFACTS, { recursive: true });

  const clamdDir = await mkdtemp(join(tmpdir(), 'mw-config-ui-clamd-'));
  const clamd = await startClamd({ stateDir: clamdDir });
  t.after(async () => {
    await clamd.stop();
    await rm(clamdDir, { recursive: true, force: true });
  });
  const { app, store, bus, activity } = await build(t, { engine: new ClamdEngineProbe(parseClamdAddresses(clamd.address)) });

  // Some activity to look at, through the real stream.
  const time = (s: number) => new Date(Date.now() - s * 1000).toISOString();
  const msg = (ref: string, s: number, subject: string) => ({ ref, time: time(s), protocol: 'smtp', direction: 'inbound', sender: 'billing@supplier.example', recipients: ['anna@example.test'], subject });
  for (const [kind, payload] of [
    ['scanned', { kind: 'scanned', ...msg('ref0000001', 300, 'Invoice 2026-11'), parts: 2, outcome: 'deliver' }],
    ['infected', { kind: 'infected', ...msg('ref0000001', 300, 'Invoice 2026-11'), file: 'invoice.pdf.exe', verdict: 'infected', detail: 'Eicar-Signature', action: 'removed' }],
    ['scanned', { kind: 'scanned', ...msg('ref0000002', 120, 'Contract (password in next mail)'), protocol: 'pop3', parts: 2, outcome: 'deliver' }],
    ['unscannable', { kind: 'unscannable', ...msg('ref0000002', 120, 'Contract (password in next mail)'), protocol: 'pop3', file: 'contract.zip', verdict: 'unscannable', detail: 'Heuristics.Encrypted.Zip', reason: 'encrypted', action: 'removed' }],
    ['scanned', { kind: 'scanned', ...msg('ref0000003', 30, 'Weekly report'), parts: 1, outcome: 'deliver' }],
  ] as const) {
    await bus.js.publish(Subjects.event(kind), JSON.stringify(payload));
  }
  const stop = new AbortController();
  t.after(() => stop.abort());
  const feed = await EventFeed.start({ js: bus.js, jsm: bus.jsm, activity, log: createLogger('ui-test', 'silent'), signal: stop.signal });
  await feed.caughtUp;

  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(5000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(e.message));

  // Sign in: a wrong token is refused, the right one opens the Antivirus engine tab.
  await page.goto(base);
  await page.getByLabel('Admin token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('This token was not accepted').waitFor();
  await shot(page, 'login');
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.keyboard.press('Enter');
  await page.getByRole('tab', { name: 'Antivirus engine', selected: true }).waitFor();
  assert.equal(await page.getByLabel('Enable antivirus control').isChecked(), true);
  assert.equal(await page.getByLabel('Enable SMTP scanning').isChecked(), true);
  assert.equal(await page.getByLabel('Enable POP3 scanning').isChecked(), true);
  assert.equal(await page.getByLabel('Scan outbound SMTP too').isChecked(), false);
  await page.getByText('Engine reachable: 1 of 1').waitFor();
  await page.locator('#engine-table').getByText(clamd.address).waitFor();
  await page.locator('#engine-table').getByText(/^ClamAV \d/).waitFor();
  await shot(page, 'engine');

  // Keyboard: arrow keys move between tabs.
  await page.getByRole('tab', { name: 'Antivirus engine' }).focus();
  await page.keyboard.press('ArrowRight');
  await page.getByRole('tab', { name: 'Email scanning', selected: true }).waitFor();
  assert.equal(await page.getByLabel('Notice text').inputValue(), DEFAULT_POLICY.notice.template);
  for (const p of ['{filename}', '{reason}', '{date}', '{ref}']) await page.locator('#placeholders').getByText(p).waitFor();

  // Change the subject prefix and apply: the API serves the new policy.
  await page.getByLabel('Prepend the subject with text').check();
  await page.getByLabel('Text', { exact: true }).fill('[INFECTED]');
  await page.getByText('You have unsaved changes.').waitFor();
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText(/^Saved\. Version \d+ is in force/).waitFor();
  const saved = await store.get();
  assert.deepEqual(saved.policy.subjectPrefix, { enabled: true, text: '[INFECTED]' });
  const viaApi = await fetch(`${base}/api/v1/policy`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json() as Promise<{ policy: { subjectPrefix: unknown } }>);
  assert.deepEqual(viaApi.policy.subjectPrefix, { enabled: true, text: '[INFECTED]' });
  await shot(page, 'scanning');

  // The server's validation, shown at the field.
  await page.getByLabel('Text', { exact: true }).fill('');
  await page.getByLabel('Largest message accepted (bytes)').fill('12');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('#err-subjectPrefix\\.text').getByText(/./).waitFor();
  assert.equal(await page.getByLabel('Text', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#err-limits\\.maxMessageBytes').innerText(), /^Must be at least 1024\.$/);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'f-subjectPrefix.text', 'focus moves to the first invalid field');
  await shot(page, 'scanning-errors');
  assert.equal((await store.get()).version, saved.version, 'nothing saved');

  // Someone else saves meanwhile: 412 is explained, reloading shows their version.
  await page.getByRole('button', { name: 'Discard changes' }).click();
  // (The local edit comes first: with edits pending, the page never takes over the other version by itself.)
  await page.getByLabel('Allow delivery of the attachment').check();
  await store.put({ ...saved.policy, tls: { smtp: 'passthrough', pop3: 'strip' } }, { changedBy: 'someone else' });
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText(/changed by someone else/).waitFor();
  await shot(page, 'conflict');
  await page.getByRole('button', { name: 'Reload the policy' }).click();
  await page.getByText(/^Reloaded version/).waitFor();
  assert.equal(await page.getByLabel('SMTP', { exact: true }).inputValue(), 'passthrough');
  assert.equal(await page.getByLabel('Remove the attachment from the message').isChecked(), true);

  // Activity: counters and detections, refreshed live.
  await page.getByRole('tab', { name: 'Activity' }).click();
  await page.locator('#detections').getByText('invoice.pdf.exe').waitFor();
  assert.equal(await page.locator('[data-stat="messages.scanned"]').innerText(), '3');
  assert.equal(await page.locator('[data-stat="infected"]').innerText(), '1');
  assert.equal(await page.locator('[data-stat="unscannable.encrypted"]').innerText(), '1');
  assert.equal(await page.locator('#detections tbody tr').count(), 2);
  await bus.js.publish(
    Subjects.event('infected'),
    JSON.stringify({ kind: 'infected', ...msg('ref0000004', 0, 'Your parcel'), file: 'label.doc', verdict: 'infected', detail: 'Doc.Dropper.Agent', action: 'removed' }),
  );
  await page.locator('#detections').getByText('label.doc').waitFor({ timeout: 8000 });
  assert.equal(await page.locator('[data-stat="infected"]').innerText(), '2');
  await shot(page, 'activity');

  // The API documentation renders in the browser too.
  const docs = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await docs.goto(`${base}/docs`);
  await docs.getByText('Mailwarden config API').first().waitFor();
  await docs.getByText('/api/v1/policy/history').first().waitFor();
  await shot(docs, 'api-docs');
  await docs.close();

  // The token lives in sessionStorage; signing out forgets it.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin token').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  // Expected 401/400/412 replies show up as "Failed to load resource"; anything else is a bug in the page.
  assert.deepEqual(consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (400|401|412)/.test(e)), []);
});
