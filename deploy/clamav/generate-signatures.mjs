#!/usr/bin/env node
// Regenerates Mailwarden's own ClamAV test signature database in this folder:
//
//   mailwarden.ndb  body signature for the EICAR test string (found at any offset, so also
//                   inside archives, mail attachments, nested containers)
//   mailwarden.hdb  md5:size:Name    for EICAR and every file of the test-files folder
//   mailwarden.hsb  sha256:size:Name for the same files
//   mailwarden.probe.ndb
//                   the database probe: a body signature for the fixed string
//                   MAILWARDEN-SIGNATURE-DB-PROBE named Mailwarden.DbVersion.<12 hex>, where the hex
//                   is a hash of every other database file in the folder. Scanning the probe string
//                   tells which database a clamd has loaded (its VERSION reply does not, for a
//                   custom database): libs/clamd keys the scan cache by it.
//
// Usage: node deploy/clamav/generate-signatures.mjs [testfiles-dir]
//        (default /usr/share/clamav-testfiles, from apt's clamav-testfiles package)
//        node deploy/clamav/generate-signatures.mjs --probe <database-dir>
//        (only (re)writes mailwarden.probe.ndb for the databases in that folder: run it after
//        any change to a custom database)
//
// The output is deterministic (sorted), so re-running it on the same inputs gives no diff.
// These signatures are for local and test runs only; production uses the official
// database kept fresh by freshclam.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The string the probe signature matches (kept in step with DATABASE_PROBE in libs/clamd). */
export const PROBE_STRING = 'MAILWARDEN-SIGNATURE-DB-PROBE';
export const PROBE_FILE = 'mailwarden.probe.ndb';

/** File extensions clamd loads as signature databases (as in libs/clamd/src/clamd-daemon.ts). */
const DATABASE_EXTENSIONS = new Set([
  '.cvd', '.cld', '.cud', '.db', '.hdb', '.hsb', '.hdu', '.hsu', '.mdb', '.msb', '.mdu', '.msu', '.ndb',
  '.ndu', '.ldb', '.ldu', '.idb', '.cdb', '.crb', '.fp', '.sfp', '.ign', '.ign2', '.ftm', '.pdb', '.gdb',
  '.wdb', '.cbc', '.cat', '.info', '.yar', '.yara', '.pwdb',
]);

/**
 * Writes `<dir>/mailwarden.probe.ndb`: `Mailwarden.DbVersion.<first 12 hex of a sha256 over the
 * name and content of every other database file in dir, sorted by name>`. Returns the name.
 */
export function writeProbe(dir) {
  const h = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const dot = name.lastIndexOf('.');
    if (name === PROBE_FILE || dot <= 0 || !DATABASE_EXTENSIONS.has(name.slice(dot))) continue;
    const p = join(dir, name);
    if (!statSync(p).isFile()) continue;
    const data = readFileSync(p);
    h.update(`${name}\0${data.length}\0`).update(data);
  }
  const name = `Mailwarden.DbVersion.${h.digest('hex').slice(0, 12)}`;
  writeFileSync(join(dir, PROBE_FILE), `${name}:0:*:${Buffer.from(PROBE_STRING, 'latin1').toString('hex')}\n`);
  return name;
}

if (process.argv[1] !== fileURLToPath(import.meta.url)) {
  // imported (for writeProbe): no command-line run
} else if (process.argv[2] === '--probe') {
  const dir = process.argv[3];
  if (!dir) {
    console.error('usage: generate-signatures.mjs --probe <database-dir>');
    process.exit(2);
  }
  console.log(`wrote ${join(dir, PROBE_FILE)}: ${writeProbe(dir)}`);
} else {
  generate(process.argv[2] ?? '/usr/share/clamav-testfiles');
}

function generate(testFilesDir) {
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
  const probe = writeProbe(here);
  console.log(`wrote ${entries.length} hash signatures (+1 body signature) and the probe ${probe} to ${here}`);
}
