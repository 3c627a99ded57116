import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SETTINGS, readSettings, parseHostPort, parseInteger } from '../src/index.js';

const readme = readFileSync(fileURLToPath(new URL('../../../../README.md', import.meta.url)), 'utf8');

test('every setting is documented in the README with its default', () => {
  for (const s of SETTINGS) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${s.env}\` |`));
    assert.ok(row, `${s.env} is missing from the README's settings table (npm run print-config -- --markdown)`);
    if (s.default) assert.ok(row.includes(`\`${s.default}\``), `${s.env}: README shows another default than ${s.default}`);
  }
});

test('environment overrides defaults; blank values fall back to the default', () => {
  const v = readSettings({ SMTP_LISTEN: '0.0.0.0:25', POP3_LISTEN: '  ' });
  assert.equal(v.SMTP_LISTEN, '0.0.0.0:25');
  assert.equal(v.POP3_LISTEN, '127.0.0.1:1110');
  assert.equal(v.CONFIG_LISTEN, '127.0.0.1:8025');
});

test('addresses and numbers are validated with a message naming the variable', () => {
  assert.deepEqual(parseHostPort('[::1]:2525'), { host: '::1', port: 2525 });
  assert.throws(() => parseHostPort('localhost', 'SMTP_LISTEN'), /SMTP_LISTEN/);
  assert.throws(() => parseHostPort('h:70000', 'X'), /out of range/);
  assert.throws(() => parseInteger('12ms', 'SCAN_TIMEOUT_MS'), /SCAN_TIMEOUT_MS/);
});
