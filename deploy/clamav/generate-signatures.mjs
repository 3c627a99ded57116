#!/usr/bin/env node
// Regenerates Mailwarden's own ClamAV test signature database in this folder:
//
//   mailwarden.ndb  body signature for the EICAR test string (found at any offset, so also
//                   inside archives, mail attachments, nested containers)
//   mailwarden.hdb  md5:size:Name    for EICAR and every file of the test-files folder
//   mailwarden.hsb  sha256:size:Name for the same files
//
// Usage: node deploy/clamav/generate-signatures.mjs [testfiles-dir]
//        (default /usr/share/clamav-testfiles, from apt's clamav-testfiles package)
//
// The output is deterministic (sorted), so re-running it on the same inputs gives no diff.
// These signatures are for local and test runs only; production uses the official
// database kept fresh by freshclam.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const testFilesDir = process.argv[2] ?? '/usr/share/clamav-testfiles';

// Built from parts so this script is not itself flagged as the EICAR test file.
const EICAR = Buffer.from(
  'X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*',
  'latin1',
);

/** ClamAV signature names: keep letters, digits, '-', '_' and '.'; everything else becomes '_'. */
function sigName(fileName) {
  return `Mailwarden.TestFile.${fileName.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

const entries = [{ name: 'Mailwarden.Test.EICAR', data: EICAR }];
let files;
try {
  files = readdirSync(testFilesDir).sort();
} catch (err) {
  // Refuse rather than overwrite the committed databases with an EICAR-only subset.
  console.error(`cannot read ${testFilesDir} (${err.code ?? err.message}): apt-get install clamav-testfiles`);
  process.exit(1);
}
for (const f of files) {
  const p = join(testFilesDir, f);
  if (!statSync(p).isFile()) continue;
  entries.push({ name: sigName(f), data: readFileSync(p) });
}

const hash = (alg, data) => createHash(alg).update(data).digest('hex');
// No comment lines in the databases: the format is documented in README.md instead.
const hdb = entries.map((e) => `${hash('md5', e.data)}:${e.data.length}:${e.name}\n`).join('');
const hsb = entries.map((e) => `${hash('sha256', e.data)}:${e.data.length}:${e.name}\n`).join('');
// .ndb: Name:TargetType:Offset:HexSignature — target 0 (any file), offset * (anywhere).
const ndb = `Mailwarden.Test.EICAR:0:*:${EICAR.toString('hex')}\n`;

writeFileSync(join(here, 'mailwarden.hdb'), hdb);
writeFileSync(join(here, 'mailwarden.hsb'), hsb);
writeFileSync(join(here, 'mailwarden.ndb'), ndb);
console.log(`wrote ${entries.length} hash signatures (+1 body signature) to ${here}`);
