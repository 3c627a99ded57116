import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClamdClient, freePort, renderClamdConfig, startClamd } from '../src/index.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mw-clamd-daemon-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('startClamd', () => {
  it('starts clamd on a chosen port with the project config and stops it', async () => {
    const port = await freePort();
    const clamd = await startClamd({ stateDir: join(dir, 'a'), port });
    try {
      assert.equal(clamd.address, `127.0.0.1:${port}`);
      assert.ok(alive(clamd.pid));
      assert.equal(await new ClamdClient({ addresses: [clamd.tcp] }).ping(), true);
      const conf = await readFile(join(dir, 'a', 'clamd.conf'), 'utf8');
      for (const line of ['Foreground yes', 'AlertEncrypted yes', 'AlertExceedsMax yes', 'ScanMail yes', `TCPSocket ${port}`]) {
        assert.match(conf, new RegExp(`^${line}$`, 'm'));
      }
    } finally {
      await clamd.stop();
    }
    assert.equal(alive(clamd.pid), false);
    await clamd.stop(); // idempotent
  });

  it('fails fast with clamd log lines when the database is empty', async () => {
    const empty = join(dir, 'empty-db');
    await mkdir(empty, { recursive: true });
    const t0 = Date.now();
    await assert.rejects(startClamd({ stateDir: join(dir, 'b'), databaseDir: empty }), /exited before it was ready[\s\S]*No supported database files found/);
    assert.ok(Date.now() - t0 < 10000);
  });

  it('fails clearly when the clamd binary does not exist', async () => {
    await assert.rejects(startClamd({ stateDir: join(dir, 'c'), clamdPath: '/nonexistent/clamd' }), /could not be started: .*ENOENT/);
  });
});

describe('renderClamdConfig', () => {
  const template = '# {{NOT_A_PLACEHOLDER}} in a comment\nDatabaseDirectory {{DATABASE_DIR}}\nLocalSocket {{LOCAL_SOCKET}}\nMaxRecursion 16\n';

  it('fills placeholders, drops directives whose value is undefined, applies overrides', () => {
    const text = renderClamdConfig(template, { DATABASE_DIR: '/db', LOCAL_SOCKET: undefined }, { MaxRecursion: 3, MaxFiles: 10 });
    assert.equal(text, '# {{NOT_A_PLACEHOLDER}} in a comment\nDatabaseDirectory /db\nMaxRecursion 3\nMaxFiles 10\n');
  });

  it('refuses a placeholder without a value', () => {
    assert.throws(() => renderClamdConfig(template, { LOCAL_SOCKET: '/s' }), /DATABASE_DIR/);
  });
});
