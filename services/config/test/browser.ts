import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { TOKEN } from './harness.js';

export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots of the UI tests. */
export const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Real Chromium on the admin UI at `base`, signed in with the test token; closed after the test. Console errors are collected. */
export async function signedInPage(t: TestContext, base: string, opts: { acceptDownloads?: boolean } = {}): Promise<{ page: Page; consoleErrors: string[] }> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (scripts/bootstrap.mjs installs it)`);
  await mkdir(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.after(() => browser.close());
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 }, ...opts })).newPage();
  page.setDefaultTimeout(10_000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(base);
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.keyboard.press('Enter');
  await page.getByRole('tab', { name: 'Antivirus engine', selected: true }).waitFor();
  return { page, consoleErrors };
}
