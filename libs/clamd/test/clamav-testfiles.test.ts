import assert from 'node:assert/strict';
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ClamdClient } from '../src/index.js';
import { bufferSource, EICAR, useClamd } from './helpers.js';

const TESTFILES = '/usr/share/clamav-testfiles';
const present = existsSync(TESTFILES);
const clamd = useClamd();

describe('the project signature database', () => {
  it('detects EICAR', async () => {
    const r = await new ClamdClient({ addresses: [clamd.get().tcp] }).scan(bufferSource(EICAR));
    assert.equal(r.kind, 'infected');
  });

  it('detects every file of apt clamav-testfiles', { skip: present ? false : `${TESTFILES} missing (apt-get install clamav-testfiles)` }, async () => {
    const files = readdirSync(TESTFILES).sort();
    assert.ok(files.length >= 44, `expected the 44 test files, found ${files.length}`);
    const client = new ClamdClient({ addresses: [clamd.get().tcp], scanTimeoutMs: 15000 });
    const missed: string[] = [];
    for (const f of files) {
      const r = await client.scan(async () => createReadStream(join(TESTFILES, f)));
      if (r.kind !== 'infected' || !r.signature.startsWith('Mailwarden.')) missed.push(`${f}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(missed, []);
  });
});
