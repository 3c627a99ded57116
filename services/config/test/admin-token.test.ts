import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveAdminToken } from '../src/index.js';

test('resolveAdminToken: ADMIN_TOKEN wins; else generated once into <stateDir>/admin-token (0600) and reused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mw-token-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const stateDir = join(dir, '.local');

  assert.deepEqual(await resolveAdminToken(stateDir, { ADMIN_TOKEN: ' from-env ' }), { token: 'from-env', source: 'env' });

  const first = await resolveAdminToken(stateDir, {});
  assert.equal(first.source, 'generated');
  assert.equal(first.file, join(stateDir, 'admin-token'));
  assert.match(first.token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal((await readFile(first.file!, 'utf8')).trim(), first.token);
  assert.equal((await stat(first.file!)).mode & 0o777, 0o600);

  const again = await resolveAdminToken(stateDir, { ADMIN_TOKEN: '' });
  assert.deepEqual(again, { token: first.token, source: 'file', file: first.file });

  // Two processes starting together agree on one token.
  const dir2 = join(dir, 'race');
  const both = await Promise.all([resolveAdminToken(dir2, {}), resolveAdminToken(dir2, {})]);
  assert.equal(both[0].token, both[1].token);
  assert.deepEqual(both.map((b) => b.source).sort(), ['file', 'generated']);
});
